package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/internal/sqlstore"
)

// The methods whose transactions matter. Each transaction takes the database's write lock when
// it begins (_txlock=immediate), so what it reads cannot change before it commits: the shared
// steps of sqlstore run with no lock clause.

// Revoke implements rescind.Store.
func (s *Store) Revoke(ctx context.Context, revs []rescind.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	if err := inTx(ctx, s.db, func(tx *sql.Tx) error { return writeRevocations(ctx, tx, revs) }); err != nil {
		return fmt.Errorf("sqlite: revoking: %w", err)
	}
	return nil
}

// writeRevocations writes revs in tx, with statements prepared once (see revWriter.write).
func writeRevocations(ctx context.Context, tx *sql.Tx, revs []rescind.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	w, err := newRevWriter(ctx, tx)
	if err != nil {
		return err
	}
	defer w.Close()
	for _, r := range revs {
		if err := w.write(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// revWriter writes revocation records in one transaction with statements prepared once.
type revWriter struct {
	tx            *sql.Tx
	insert, audit *sql.Stmt
}

func newRevWriter(ctx context.Context, tx *sql.Tx) (*revWriter, error) {
	ins, err := tx.PrepareContext(ctx, `INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`)
	if err != nil {
		return nil, fmt.Errorf("preparing revocation insert: %w", err)
	}
	aud, err := tx.PrepareContext(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		ins.Close()
		return nil, fmt.Errorf("preparing audit insert: %w", err)
	}
	return &revWriter{tx: tx, insert: ins, audit: aud}, nil
}

func (w *revWriter) Close() {
	w.insert.Close()
	w.audit.Close()
}

// write stores r, merging it with an existing record of the same kind and key: the merged
// record keeps the later RevokedAt and ExpiresAt and, if either moved, gets a new Seq so that
// readers of RevocationsSince see the change. A new record (the common case) is one statement.
func (w *revWriter) write(ctx context.Context, r rescind.Revocation) error {
	nanos := sqlstore.Nanos
	if r.Actor != "" {
		if _, err := w.audit.ExecContext(ctx, nanos(r.RevokedAt), r.Actor, sqlstore.AuditAction(r.Kind), r.Key, r.Reason); err != nil {
			return fmt.Errorf("writing audit entry: %w", err)
		}
	}
	if r.StatusList == "" {
		r.StatusIdx = -1
	}
	aud := sqlstore.JSONList(r.Audience)
	res, err := w.insert.ExecContext(ctx, string(r.Kind), r.Key, r.ClientID, nanos(r.RevokedAt), nanos(r.ExpiresAt), r.Subject, r.StatusList, r.StatusIdx, aud)
	if err != nil {
		return fmt.Errorf("writing revocation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var revokedAt, expiresAt int64
	var oldAud string
	if err := w.tx.QueryRowContext(ctx, `SELECT revoked_at, expires_at, audience FROM revocations WHERE kind = ? AND key = ?`,
		string(r.Kind), r.Key).Scan(&revokedAt, &expiresAt, &oldAud); err != nil {
		return fmt.Errorf("reading revocation: %w", err)
	}
	if nanos(r.RevokedAt) <= revokedAt && nanos(r.ExpiresAt) <= expiresAt {
		return nil // already covered
	}
	if _, err := w.tx.ExecContext(ctx, `DELETE FROM revocations WHERE kind = ? AND key = ?`, string(r.Kind), r.Key); err != nil {
		return fmt.Errorf("replacing revocation: %w", err)
	}
	// The record keeps the audience it was first written with: a merge moves times, never who
	// may receive the record.
	_, err = w.insert.ExecContext(ctx, string(r.Kind), r.Key, r.ClientID, max(revokedAt, nanos(r.RevokedAt)),
		max(expiresAt, nanos(r.ExpiresAt)), r.Subject, r.StatusList, r.StatusIdx, oldAud)
	if err != nil {
		return fmt.Errorf("writing revocation: %w", err)
	}
	return nil
}

// RevokeGrants implements rescind.Store.
func (s *Store) RevokeGrants(ctx context.Context, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	if f.IsZero() {
		return nil, 0, errors.New("sqlite: RevokeGrants needs a filter")
	}
	var revs []rescind.Revocation
	var n int64
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		if revs, n, err = sqlstore.GrantRevocations(ctx, s.q(tx), f, rev, ""); err != nil {
			return err
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: revoking grants: %w", err)
	}
	return revs, n, nil
}

// DeleteUser implements rescind.Store.
func (s *Store) DeleteUser(ctx context.Context, id string, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, int64, error) {
	var revs []rescind.Revocation
	var n int64
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		if revs, n, err = sqlstore.UserDeletion(ctx, s.q(tx), id, rev, end, ""); err != nil {
			return err
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: deleting user %q: %w", id, err)
	}
	return revs, n, nil
}

// DeleteClient implements rescind.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time, rev rescind.Revocation) ([]rescind.Revocation, error) {
	var revs []rescind.Revocation
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		if revs, err = sqlstore.ClientDeletion(ctx, s.q(tx), id, now, rev, ""); err != nil {
			return err
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: deleting client %q: %w", id, err)
	}
	return revs, nil
}

// SaveGrant implements rescind.Store.
func (s *Store) SaveGrant(ctx context.Context, g rescind.Grant) (rescind.Grant, error) {
	out := g
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		out, err = sqlstore.UpsertGrant(ctx, s.q(tx), g, "")
		return err
	})
	if err != nil {
		return g, fmt.Errorf("sqlite: saving grant: %w", err)
	}
	return out, nil
}

// RotateRefreshToken implements rescind.Store.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next rescind.RefreshToken, now, tokensExpireAt time.Time, audience []string) (rescind.RefreshToken, error) {
	var old rescind.RefreshToken
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		q := s.q(tx)
		if old, err = sqlstore.UsableRefreshToken(ctx, q, oldHash, now, ""); err != nil {
			return err
		}
		if err := sqlstore.RaiseGrantBound(ctx, q, old.GrantID, tokensExpireAt, audience); err != nil {
			return err
		}
		return sqlstore.ReplaceRefreshToken(ctx, q, oldHash, next, now)
	})
	if err != nil {
		return old, fmt.Errorf("sqlite: rotating refresh token: %w", err)
	}
	old.UsedAt = now
	return old, nil
}

// RedeemCode implements rescind.Store.
func (s *Store) RedeemCode(ctx context.Context, hash string, now, tokensExpireAt time.Time, audience []string) (rescind.AuthCode, error) {
	var c rescind.AuthCode
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		q := s.q(tx)
		if c, err = sqlstore.UsableCode(ctx, q, hash, now, ""); err != nil {
			return err
		}
		if err := sqlstore.RaiseGrantBound(ctx, q, c.GrantID, tokensExpireAt, audience); err != nil {
			return err
		}
		return sqlstore.MarkCodeUsed(ctx, q, hash, now)
	})
	if err != nil {
		return c, fmt.Errorf("sqlite: redeeming code: %w", err)
	}
	c.UsedAt = now
	return c, nil
}

// RetireKey implements rescind.Store: concurrent retirements are serialized by the write lock.
func (s *Store) RetireKey(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
	var activated string
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		a, retired, err := sqlstore.KeyRetirement(ctx, s.q(tx), id, rev.RevokedAt, "")
		if err != nil || !retired {
			return err
		}
		activated = a
		return writeRevocations(ctx, tx, []rescind.Revocation{rev})
	})
	if err != nil {
		return "", fmt.Errorf("sqlite: retiring key %q: %w", id, err)
	}
	return activated, nil
}

// CreateSession implements rescind.Store: the write lock keeps the user's epoch from moving
// before the session is stored.
func (s *Store) CreateSession(ctx context.Context, sess rescind.Session) error {
	if err := inTx(ctx, s.db, func(tx *sql.Tx) error { return s.SessionCreation(ctx, s.q(tx), sess, "") }); err != nil {
		return fmt.Errorf("sqlite: creating session: %w", err)
	}
	return nil
}

// EndSessions implements rescind.Store.
func (s *Store) EndSessions(ctx context.Context, f rescind.SessionFilter, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, error) {
	var revs []rescind.Revocation
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		if revs, err = sqlstore.SessionEnding(ctx, s.q(tx), f, rev, end, ""); err != nil {
			return err
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: ending sessions: %w", err)
	}
	return revs, nil
}

// ExpireSessions implements rescind.Store.
func (s *Store) ExpireSessions(ctx context.Context, now time.Time, limit int, end rescind.SessionEnd) (int, []rescind.Revocation, error) {
	var revs []rescind.Revocation
	var n int
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		if n, revs, err = sqlstore.SessionExpiry(ctx, s.q(tx), now, limit, end, ""); err != nil {
			return err
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("sqlite: ending expired sessions: %w", err)
	}
	return n, revs, nil
}

// CreateCode implements rescind.Store: the write lock keeps the code's session from ending
// before the code and its client are stored.
func (s *Store) CreateCode(ctx context.Context, c rescind.AuthCode) error {
	if err := inTx(ctx, s.db, func(tx *sql.Tx) error { return sqlstore.CodeCreation(ctx, s.q(tx), c, "") }); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// SetPassword implements rescind.Store.
func (s *Store) SetPassword(ctx context.Context, id, hash string, revokeGrants bool, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, int64, error) {
	var revs []rescind.Revocation
	var n int64
	err := inTx(ctx, s.db, func(tx *sql.Tx) (err error) {
		if revs, n, err = sqlstore.PasswordChange(ctx, s.q(tx), id, hash, revokeGrants, rev, end, ""); err != nil {
			return err
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: setting the password of user %q: %w", id, err)
	}
	return revs, n, nil
}
