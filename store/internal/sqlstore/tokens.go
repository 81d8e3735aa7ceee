package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rescind/rescind"
)

const refreshColumns = `hash, grant_id, client_id, scope, created_at, expires_at, used_at, jkt, resources, session_id, auth_time`

func scanRefresh(row Row) (rescind.RefreshToken, error) {
	var rt rescind.RefreshToken
	var created, expires, used, auth int64
	var res string
	if err := row.Scan(&rt.Hash, &rt.GrantID, &rt.ClientID, &rt.Scope, &created, &expires, &used, &rt.JKT, &res, &rt.SessionID, &auth); err != nil {
		return rt, err
	}
	rt.CreatedAt, rt.ExpiresAt, rt.UsedAt, rt.AuthTime = FromNanos(created), FromNanos(expires), OptionalTime(used), OptionalTime(auth)
	var err error
	if rt.Resources, err = ParseList(res); err != nil {
		return rt, fmt.Errorf("resources: %w", err)
	}
	return rt, nil
}

func insertRefresh(ctx context.Context, q Querier, rt rescind.RefreshToken) error {
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (hash, grant_id, client_id, scope, created_at, expires_at, jkt, resources, session_id, auth_time)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, rt.Hash, rt.GrantID, rt.ClientID, rt.Scope, Nanos(rt.CreatedAt), Nanos(rt.ExpiresAt), rt.JKT,
		JSONList(rt.Resources), rt.SessionID, OptionalNanos(rt.AuthTime))
	return err
}

// CreateRefreshToken implements rescind.Store.
func (s *Store) CreateRefreshToken(ctx context.Context, rt rescind.RefreshToken) error {
	err := insertRefresh(ctx, s.db, rt)
	if s.d.IsUniqueViolation(err) {
		return s.errorf("refresh token: %w", rescind.ErrAlreadyExists)
	}
	if err != nil {
		return s.errorf("storing refresh token: %w", err)
	}
	return nil
}

// GetRefreshToken implements rescind.Store.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (rescind.RefreshToken, error) {
	rt, err := scanRefresh(s.db.QueryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, hash))
	if isNoRows(err) {
		return rt, s.errorf("refresh token: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return rt, s.errorf("reading refresh token: %w", err)
	}
	return rt, nil
}

// UsableRefreshToken reads, in tx, the refresh token with the given hash, with lock appended to
// the read, and checks that it may be rotated at now: a token already used is returned with
// rescind.ErrReused; a missing or expired one is rescind.ErrNotFound.
func UsableRefreshToken(ctx context.Context, tx Querier, hash string, now time.Time, lock string) (rescind.RefreshToken, error) {
	rt, err := scanRefresh(tx.QueryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`+lock, hash))
	switch {
	case isNoRows(err):
		return rt, fmt.Errorf("refresh token: %w", rescind.ErrNotFound)
	case err != nil:
		return rt, fmt.Errorf("reading refresh token: %w", err)
	case !rt.UsedAt.IsZero():
		return rt, fmt.Errorf("refresh token: %w", rescind.ErrReused)
	case !now.Before(rt.ExpiresAt):
		return rt, fmt.Errorf("refresh token expired: %w", rescind.ErrNotFound)
	}
	return rt, nil
}

// ReplaceRefreshToken marks the refresh token oldHash used at now and stores next, in tx.
func ReplaceRefreshToken(ctx context.Context, tx Querier, oldHash string, next rescind.RefreshToken, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2`, Nanos(now), oldHash); err != nil {
		return fmt.Errorf("marking the refresh token used: %w", err)
	}
	if err := insertRefresh(ctx, tx, next); err != nil {
		return fmt.Errorf("storing the next refresh token: %w", err)
	}
	return nil
}

// RaiseGrantBound raises the TokensExpireAt of grant id to exp, and adds to its Audience the
// values of audience it lacks, in tx; on PostgreSQL the update holds the grant's row until tx
// ends (see GrantRevocations), so a revocation of the grant either commits first or reads the
// audience written here. A revoked (or missing) grant is rescind.ErrNotFound: nothing may be
// issued under it.
func RaiseGrantBound(ctx context.Context, tx Querier, id string, exp time.Time, audience []string) error {
	n, err := tx.Exec(ctx, `UPDATE grants SET tokens_expire_at = CASE WHEN tokens_expire_at < $1 THEN $1 ELSE tokens_expire_at END
		WHERE id = $2 AND revoked_at = 0`, Nanos(exp), id)
	if err != nil {
		return fmt.Errorf("recording the grant's token expiry: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("grant %q is revoked: %w", id, rescind.ErrNotFound)
	}
	if len(audience) == 0 {
		return nil
	}
	var raw string
	if err := tx.QueryRow(ctx, `SELECT audience FROM grants WHERE id = $1`, id).Scan(&raw); err != nil {
		return fmt.Errorf("reading the grant's audience: %w", err)
	}
	cur, err := ParseList(raw)
	if err != nil {
		return fmt.Errorf("the grant's audience: %w", err)
	}
	wider := union(slices.Clone(cur), audience)
	if len(wider) == len(cur) {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE grants SET audience = $1 WHERE id = $2`, JSONList(wider), id); err != nil {
		return fmt.Errorf("recording the grant's audience: %w", err)
	}
	return nil
}

// CodeCreation stores the code c in tx, as rescind.Store's CreateCode says. The session of a
// code is read with lock appended: the caller's transaction must hold its row until it
// commits, so that an end of the session (which reads the sessions it ends with their lock
// before it reads their clients) either commits first, and the session is gone here, or comes
// after and finds the client recorded here.
func CodeCreation(ctx context.Context, tx Querier, c rescind.AuthCode, lock string) error {
	if c.SessionID != "" {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM sessions WHERE id = $1`+lock, c.SessionID).Scan(&one)
		if isNoRows(err) {
			return fmt.Errorf("session %q: %w", c.SessionID, rescind.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("reading the code's session: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO session_clients (session_id, client_id, grant_id, user_id, created_at)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id, client_id) DO UPDATE SET grant_id = excluded.grant_id`,
			c.SessionID, c.ClientID, c.GrantID, c.UserID, Nanos(c.CreatedAt)); err != nil {
			return fmt.Errorf("recording the session's client: %w", err)
		}
	}
	_, err := tx.Exec(ctx, `INSERT INTO auth_codes (hash, client_id, user_id, grant_id, redirect_uri, redirect_uri_given,
		scope, challenge, challenge_method, created_at, expires_at, dpop_jkt, session_id, nonce, auth_time, resources)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		c.Hash, c.ClientID, c.UserID, c.GrantID, c.RedirectURI, c.RedirectURIGiven, c.Scope, c.Challenge, c.ChallengeMethod,
		Nanos(c.CreatedAt), Nanos(c.ExpiresAt), c.DPoPJKT, c.SessionID, c.Nonce, OptionalNanos(c.AuthTime), JSONList(c.Resources))
	if err != nil {
		return fmt.Errorf("storing code: %w", err)
	}
	return nil
}

const codeColumns = `hash, client_id, user_id, grant_id, redirect_uri, redirect_uri_given, scope,
	challenge, challenge_method, created_at, expires_at, used_at, dpop_jkt, session_id, nonce, auth_time, resources`

func scanCode(row Row) (rescind.AuthCode, error) {
	var c rescind.AuthCode
	var created, expires, used, auth int64
	var res string
	if err := row.Scan(&c.Hash, &c.ClientID, &c.UserID, &c.GrantID, &c.RedirectURI, &c.RedirectURIGiven, &c.Scope, &c.Challenge,
		&c.ChallengeMethod, &created, &expires, &used, &c.DPoPJKT, &c.SessionID, &c.Nonce, &auth, &res); err != nil {
		return c, err
	}
	c.CreatedAt, c.ExpiresAt, c.UsedAt, c.AuthTime = FromNanos(created), FromNanos(expires), OptionalTime(used), OptionalTime(auth)
	var err error
	if c.Resources, err = ParseList(res); err != nil {
		return c, fmt.Errorf("resources: %w", err)
	}
	return c, nil
}

// GetCode implements rescind.Store.
func (s *Store) GetCode(ctx context.Context, hash string) (rescind.AuthCode, error) {
	c, err := scanCode(s.db.QueryRow(ctx, `SELECT `+codeColumns+` FROM auth_codes WHERE hash = $1`, hash))
	if isNoRows(err) {
		return c, s.errorf("code: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return c, s.errorf("reading code: %w", err)
	}
	return c, nil
}

// UsableCode reads, in tx, the authorization code with the given hash, with lock appended to
// the read, and checks that it may be redeemed at now: a code already used is returned with
// rescind.ErrReused; a missing or expired one is rescind.ErrNotFound.
func UsableCode(ctx context.Context, tx Querier, hash string, now time.Time, lock string) (rescind.AuthCode, error) {
	c, err := scanCode(tx.QueryRow(ctx, `SELECT `+codeColumns+` FROM auth_codes WHERE hash = $1`+lock, hash))
	switch {
	case isNoRows(err):
		return c, fmt.Errorf("code: %w", rescind.ErrNotFound)
	case err != nil:
		return c, fmt.Errorf("reading code: %w", err)
	case !c.UsedAt.IsZero():
		return c, fmt.Errorf("code: %w", rescind.ErrReused)
	case !now.Before(c.ExpiresAt):
		return c, fmt.Errorf("code expired: %w", rescind.ErrNotFound)
	}
	return c, nil
}

// MarkCodeUsed marks the code with the given hash used at now, in tx.
func MarkCodeUsed(ctx context.Context, tx Querier, hash string, now time.Time) error {
	if _, err := tx.Exec(ctx, `UPDATE auth_codes SET used_at = $1 WHERE hash = $2`, Nanos(now), hash); err != nil {
		return fmt.Errorf("marking the code used: %w", err)
	}
	return nil
}

// RecordGrantTokenStatus implements rescind.Store: one statement that inserts the entry only if
// the grant is active. On SQLite it is one write transaction, so a revocation of the grant
// commits wholly before it (nothing is recorded) or after it (and flips the entry). On
// PostgreSQL the grant's row is read under a share lock (Dialect.ShareLock): a revocation that
// holds the row (RevokeGrants reads it FOR UPDATE) commits first, and the row re-read then is
// revoked, so nothing is recorded; or the revocation waits for this insert to commit, and its
// later read of the entries finds this one.
func (s *Store) RecordGrantTokenStatus(ctx context.Context, grantID, list string, idx int64, exp time.Time) error {
	n, err := s.db.Exec(ctx, `INSERT INTO grant_token_status (grant_id, status_list, status_idx, expires_at)
		SELECT id, $2, $3, $4 FROM grants WHERE id = $1 AND revoked_at = 0`+s.d.ShareLock,
		grantID, list, idx, Nanos(exp))
	if err != nil {
		return s.errorf("recording token status: %w", err)
	}
	if n == 0 {
		return s.errorf("grant %q is revoked or missing: %w", grantID, rescind.ErrNotFound)
	}
	return nil
}

// DeleteExpired implements rescind.Store.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, table := range []string{"auth_codes", "refresh_tokens", "grant_token_status", "status_lists", "used_once", "registration_tokens"} {
		n, err := s.db.Exec(ctx, `DELETE FROM `+table+` WHERE expires_at < $1`, Nanos(now))
		if err != nil {
			return total, s.errorf("deleting expired %s: %w", table, err)
		}
		total += n
	}
	// Expired sessions are ExpireSessions's: their end may have to be told (SessionEnd).
	return total, nil
}

// MarkUsed implements rescind.Store: one upsert that replaces only an expired record, so the
// rows it changes say whether id was fresh. The primary key makes concurrent upserts of one id
// (from several instances) serialise: the second sees the first's live record and changes
// nothing.
func (s *Store) MarkUsed(ctx context.Context, id [32]byte, expiresAt, now time.Time) (bool, error) {
	n, err := s.db.Exec(ctx, `INSERT INTO used_once (id, expires_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_once.expires_at < $3`,
		id[:], Nanos(expiresAt), Nanos(now))
	if err != nil {
		return false, s.errorf("recording a used value: %w", err)
	}
	return n == 1, nil
}
