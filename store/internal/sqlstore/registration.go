package sqlstore

import (
	"context"
	"fmt"

	"github.com/rescind/rescind"
)

const registrationTokenColumns = `id, hash, created_at, expires_at, scopes, allowed_resources`

func scanRegistrationToken(row Row) (rescind.RegistrationToken, error) {
	var t rescind.RegistrationToken
	var created, expires int64
	var scopes, allowed string
	if err := row.Scan(&t.ID, &t.Hash, &created, &expires, &scopes, &allowed); err != nil {
		return t, err
	}
	t.CreatedAt, t.ExpiresAt = FromNanos(created), FromNanos(expires)
	var err error
	if t.Scopes, err = ParseList(scopes); err != nil { // JSON null: none given
		return t, fmt.Errorf("scopes: %w", err)
	}
	if t.AllowedResources, err = ParseList(allowed); err != nil {
		return t, fmt.Errorf("allowed_resources: %w", err)
	}
	return t, nil
}

// CreateRegistrationToken implements rescind.Store.
func (s *Store) CreateRegistrationToken(ctx context.Context, t rescind.RegistrationToken) error {
	_, err := s.db.Exec(ctx, `INSERT INTO registration_tokens (`+registrationTokenColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		t.ID, t.Hash, Nanos(t.CreatedAt), Nanos(t.ExpiresAt), OptionalJSONList(t.Scopes), JSONList(t.AllowedResources))
	if s.d.IsUniqueViolation(err) {
		return s.errorf("registration token %q: %w", t.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return s.errorf("storing registration token: %w", err)
	}
	return nil
}

// GetRegistrationToken implements rescind.Store.
func (s *Store) GetRegistrationToken(ctx context.Context, hash string) (rescind.RegistrationToken, error) {
	t, err := scanRegistrationToken(s.db.QueryRow(ctx, `SELECT `+registrationTokenColumns+` FROM registration_tokens WHERE hash = $1`, hash))
	if isNoRows(err) {
		return t, s.errorf("registration token: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return t, s.errorf("reading registration token: %w", err)
	}
	return t, nil
}

// ListRegistrationTokens implements rescind.Store.
func (s *Store) ListRegistrationTokens(ctx context.Context) ([]rescind.RegistrationToken, error) {
	out, err := All(ctx, s.db, scanRegistrationToken, `SELECT `+registrationTokenColumns+` FROM registration_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, s.errorf("listing registration tokens: %w", err)
	}
	return out, nil
}

// DeleteRegistrationToken implements rescind.Store.
func (s *Store) DeleteRegistrationToken(ctx context.Context, id string) error {
	n, err := s.db.Exec(ctx, `DELETE FROM registration_tokens WHERE id = $1`, id)
	if err != nil {
		return s.errorf("deleting registration token: %w", err)
	}
	if n == 0 {
		return s.errorf("registration token %q: %w", id, rescind.ErrNotFound)
	}
	return nil
}
