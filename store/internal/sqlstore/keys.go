package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/rescind/rescind"
)

// CreateKey implements rescind.Store. Other instances learn of the key at commit
// (Dialect.Notify).
func (s *Store) CreateKey(ctx context.Context, k rescind.Key) error {
	act := k.ActivatesAt
	if act.IsZero() {
		act = k.CreatedAt
	}
	err := s.db.InTx(ctx, func(tx Querier) error {
		if _, err := tx.Exec(ctx, `INSERT INTO keys (id, use, algorithm, sealed, created_at, activates_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.ID, k.Use, k.Algorithm, k.Sealed, Nanos(k.CreatedAt), Nanos(act)); err != nil {
			return err
		}
		return s.notify(ctx, tx, KeysChanged, k.ID)
	})
	if s.d.IsUniqueViolation(err) {
		return s.errorf("key %q: %w", k.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return s.errorf("creating key: %w", err)
	}
	return nil
}

// ListKeys implements rescind.Store.
func (s *Store) ListKeys(ctx context.Context, use string) ([]rescind.Key, error) {
	keys, err := listKeys(ctx, s.db, use, "")
	if err != nil {
		return nil, s.errorf("%w", err)
	}
	return keys, nil
}

// listKeys reads the keys of use in SortKeys order, with lock appended to the read.
func listKeys(ctx context.Context, q Querier, use, lock string) ([]rescind.Key, error) {
	keys, err := All(ctx, q, func(row Row) (rescind.Key, error) {
		var k rescind.Key
		var created, activates, retired int64
		err := row.Scan(&k.ID, &k.Use, &k.Algorithm, &k.Sealed, &created, &activates, &retired)
		k.CreatedAt, k.ActivatesAt, k.RetiredAt = FromNanos(created), FromNanos(activates), OptionalTime(retired)
		return k, err
	}, `SELECT id, use, algorithm, sealed, created_at, activates_at, retired_at FROM keys WHERE use = $1`+lock, use)
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	rescind.SortKeys(keys)
	return keys, nil
}

// KeyRetirement retires the key id at the given moment, in tx, as rescind.Store's RetireKey
// says, reading the keys of its use with lock appended (the caller's transaction must keep
// concurrent retirements from interleaving). It returns the id of the key whose activation it
// brought forward (if any) and whether it retired the key: false, with no error, for a key
// already retired, and then it changed nothing. The caller writes the retirement's record.
func KeyRetirement(ctx context.Context, tx Querier, id string, at time.Time, lock string) (activated string, retired bool, err error) {
	var use string
	if err := tx.QueryRow(ctx, `SELECT use FROM keys WHERE id = $1`, id).Scan(&use); isNoRows(err) {
		return "", false, fmt.Errorf("key %q: %w", id, rescind.ErrNotFound)
	} else if err != nil {
		return "", false, fmt.Errorf("reading key %q: %w", id, err)
	}
	keys, err := listKeys(ctx, tx, use, lock)
	if err != nil {
		return "", false, err
	}
	i, j, err := rescind.PlanRetirement(keys, id, at)
	if err != nil {
		return "", false, err
	}
	if !keys[i].RetiredAt.IsZero() {
		return "", false, nil
	}
	if _, err := tx.Exec(ctx, `UPDATE keys SET retired_at = $1 WHERE id = $2`, Nanos(at), id); err != nil {
		return "", false, fmt.Errorf("retiring key: %w", err)
	}
	if j >= 0 {
		activated = keys[j].ID
		if _, err := tx.Exec(ctx, `UPDATE keys SET activates_at = CASE WHEN activates_at > $1 THEN $1 ELSE activates_at END WHERE id = $2`,
			Nanos(at), activated); err != nil {
			return "", false, fmt.Errorf("activating key: %w", err)
		}
	}
	return activated, true, nil
}

// CreateStatusList implements rescind.Store.
func (s *Store) CreateStatusList(ctx context.Context, l rescind.StatusList) error {
	_, err := s.db.Exec(ctx, `INSERT INTO status_lists (id, created_at, expires_at) VALUES ($1, $2, $3)`,
		l.ID, Nanos(l.CreatedAt), Nanos(l.ExpiresAt))
	if s.d.IsUniqueViolation(err) {
		return s.errorf("status list %q: %w", l.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return s.errorf("recording status list: %w", err)
	}
	return nil
}

// GetStatusList implements rescind.Store.
func (s *Store) GetStatusList(ctx context.Context, id string) (rescind.StatusList, error) {
	l := rescind.StatusList{ID: id}
	var created, expires int64
	err := s.db.QueryRow(ctx, `SELECT created_at, expires_at FROM status_lists WHERE id = $1`, id).Scan(&created, &expires)
	if isNoRows(err) {
		return l, s.errorf("status list %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return l, s.errorf("reading status list: %w", err)
	}
	l.CreatedAt, l.ExpiresAt = FromNanos(created), FromNanos(expires)
	return l, nil
}
