package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/internal/sqlstore"
)

// The methods whose transactions matter. PostgreSQL runs them concurrently, on any instance,
// at READ COMMITTED: each takes the locks that make it safe (FOR UPDATE on the rows it must
// hold, advisory locks for what has no row yet), in one order: a grant's row before its
// tokens' or codes', and the revocation writers' lock last.

// forUpdate is the lock clause of the shared steps' reads whose rows a transaction must hold.
const forUpdate = " FOR UPDATE"

// RevokeGrants implements rescind.Store. The grants are read FOR UPDATE: a concurrent code
// redemption or refresh raises the grant's bound while holding its row, so the bound read here,
// after that commits, includes its token; one that comes after this commits finds the grant
// revoked and issues nothing.
func (s *Store) RevokeGrants(ctx context.Context, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	if f.IsZero() {
		return nil, 0, errors.New("postgres: RevokeGrants needs a filter")
	}
	var revs []rescind.Revocation
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if revs, n, err = sqlstore.GrantRevocations(ctx, s.q(tx), f, rev, forUpdate); err != nil || len(revs) == 0 {
			return err // writeRevocations would notify a reload of nothing
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: revoking grants: %w", err)
	}
	return revs, n, nil
}

// DeleteUser implements rescind.Store; the user's grants are revoked as RevokeGrants does.
func (s *Store) DeleteUser(ctx context.Context, id string, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, int64, error) {
	var revs []rescind.Revocation
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if revs, n, err = sqlstore.UserDeletion(ctx, s.q(tx), id, rev, end, forUpdate); err != nil || len(revs) == 0 {
			return err // writeRevocations would notify a reload of nothing
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: deleting user %q: %w", id, err)
	}
	return revs, n, nil
}

// DeleteClient implements rescind.Store; the client's grants are revoked as RevokeGrants does,
// and every instance drops the client at commit.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time, rev rescind.Revocation) ([]rescind.Revocation, error) {
	var revs []rescind.Revocation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if revs, err = sqlstore.ClientDeletion(ctx, s.q(tx), id, now, rev, forUpdate); err != nil {
			return err
		}
		if err := writeRevocations(ctx, tx, revs); err != nil {
			return err
		}
		return notify(ctx, s.q(tx), sqlstore.ClientChanged, id)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: deleting client %q: %w", id, err)
	}
	return revs, nil
}

// SaveGrant implements rescind.Store. An advisory lock on the (client, user) pair serializes
// consents, so two concurrent ones make one grant.
func (s *Store) SaveGrant(ctx context.Context, g rescind.Grant) (rescind.Grant, error) {
	out := g
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`, g.ClientID, g.UserID); err != nil {
			return err
		}
		out, err = sqlstore.UpsertGrant(ctx, s.q(tx), g, forUpdate)
		return err
	})
	if err != nil {
		return g, fmt.Errorf("postgres: saving grant: %w", err)
	}
	return out, nil
}

// RotateRefreshToken implements rescind.Store. The grant's row is locked (by raising its
// bound) before the token's, in the order RevokeGrants takes them; then the token is read
// again FOR UPDATE: of two concurrent rotations, the second waits and then sees it used.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next rescind.RefreshToken, now, tokensExpireAt time.Time, audience []string) (rescind.RefreshToken, error) {
	var old rescind.RefreshToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		q := s.q(tx)
		if old, err = sqlstore.UsableRefreshToken(ctx, q, oldHash, now, ""); err != nil {
			return err
		}
		if err := sqlstore.RaiseGrantBound(ctx, q, old.GrantID, tokensExpireAt, audience); err != nil {
			return err
		}
		if old, err = sqlstore.UsableRefreshToken(ctx, q, oldHash, now, forUpdate); err != nil {
			return err
		}
		return sqlstore.ReplaceRefreshToken(ctx, q, oldHash, next, now)
	})
	if err != nil {
		return old, fmt.Errorf("postgres: rotating refresh token: %w", err)
	}
	old.UsedAt = now
	return old, nil
}

// RedeemCode implements rescind.Store, locking as RotateRefreshToken does: the grant's row,
// then the code's, read again FOR UPDATE so that of two concurrent redemptions the second sees
// the code used.
func (s *Store) RedeemCode(ctx context.Context, hash string, now, tokensExpireAt time.Time, audience []string) (rescind.AuthCode, error) {
	var c rescind.AuthCode
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		q := s.q(tx)
		if c, err = sqlstore.UsableCode(ctx, q, hash, now, ""); err != nil {
			return err
		}
		if err := sqlstore.RaiseGrantBound(ctx, q, c.GrantID, tokensExpireAt, audience); err != nil {
			return err
		}
		if c, err = sqlstore.UsableCode(ctx, q, hash, now, forUpdate); err != nil {
			return err
		}
		return sqlstore.MarkCodeUsed(ctx, q, hash, now)
	})
	if err != nil {
		return c, fmt.Errorf("postgres: redeeming code: %w", err)
	}
	c.UsedAt = now
	return c, nil
}

// RetireKey implements rescind.Store. The keys of the use are read FOR UPDATE, so concurrent
// retirements on any instances are serialized; the change is notified on the keys channel, and
// the record on the revocations channel.
func (s *Store) RetireKey(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
	var activated string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		a, retired, err := sqlstore.KeyRetirement(ctx, s.q(tx), id, rev.RevokedAt, forUpdate)
		if err != nil || !retired {
			return err
		}
		activated = a
		if err := notify(ctx, s.q(tx), sqlstore.KeysChanged, id); err != nil {
			return err
		}
		return writeRevocations(ctx, tx, []rescind.Revocation{rev})
	})
	if err != nil {
		return "", fmt.Errorf("postgres: retiring key %q: %w", id, err)
	}
	return activated, nil
}

// CreateSession implements rescind.Store. The user's row is read FOR UPDATE: an end of all the
// user's sessions (which moves the epoch holding that row) either commits first, and the epoch
// read here has moved, or waits for this session and then ends it.
func (s *Store) CreateSession(ctx context.Context, sess rescind.Session) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return s.SessionCreation(ctx, s.q(tx), sess, forUpdate) })
	if err != nil {
		return fmt.Errorf("postgres: creating session: %w", err)
	}
	return nil
}

// EndSessions implements rescind.Store: the user's row (for a filter without ID or
// SignedInBy), then the sessions, are held until commit; every instance applies the records at
// commit.
func (s *Store) EndSessions(ctx context.Context, f rescind.SessionFilter, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, error) {
	var revs []rescind.Revocation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if revs, err = sqlstore.SessionEnding(ctx, s.q(tx), f, rev, end, forUpdate); err != nil || len(revs) == 0 {
			return err // writeRevocations would notify a reload of nothing
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: ending sessions: %w", err)
	}
	return revs, nil
}

// ExpireSessions implements rescind.Store: the expired sessions are read FOR UPDATE, so a
// janitor on another instance waits, then finds them gone; a code being issued in one of them
// either committed first (its client is found here) or finds the session gone.
func (s *Store) ExpireSessions(ctx context.Context, now time.Time, limit int, end rescind.SessionEnd) (int, []rescind.Revocation, error) {
	var revs []rescind.Revocation
	var n int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if n, revs, err = sqlstore.SessionExpiry(ctx, s.q(tx), now, limit, end, forUpdate); err != nil || len(revs) == 0 {
			return err // writeRevocations would notify a reload of nothing
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return 0, nil, fmt.Errorf("postgres: ending expired sessions: %w", err)
	}
	return n, revs, nil
}

// CreateCode implements rescind.Store. The code's session is read FOR UPDATE: an end of the
// session (which holds its row from its first read) either commits first, and the session is
// gone, or waits for this code and then finds its client.
func (s *Store) CreateCode(ctx context.Context, c rescind.AuthCode) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return sqlstore.CodeCreation(ctx, s.q(tx), c, forUpdate) })
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// SetPassword implements rescind.Store, holding the user's row, then the sessions' and grants'
// rows, as EndSessions and RevokeGrants do.
func (s *Store) SetPassword(ctx context.Context, id, hash string, revokeGrants bool, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, int64, error) {
	var revs []rescind.Revocation
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) (err error) {
		if revs, n, err = sqlstore.PasswordChange(ctx, s.q(tx), id, hash, revokeGrants, rev, end, forUpdate); err != nil || len(revs) == 0 {
			return err
		}
		return writeRevocations(ctx, tx, revs)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: setting the password of user %q: %w", id, err)
	}
	return revs, n, nil
}
