package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind"
)

// CreateUser implements rescind.Store.
func (s *Store) CreateUser(ctx context.Context, u rescind.User) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
		u.ID, u.Username, u.PasswordHash, nanos(u.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: user %q: %w", u.Username, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: creating user: %w", err)
	}
	return nil
}

func (s *Store) getUser(ctx context.Context, col, arg string) (rescind.User, error) {
	var u rescind.User
	var created int64
	err := s.pool.QueryRow(ctx, `SELECT id, username, password_hash, created_at FROM users WHERE `+col+` = $1`, arg).
		Scan(&u.ID, &u.Username, &u.PasswordHash, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, fmt.Errorf("postgres: user %q: %w", arg, rescind.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("postgres: reading user: %w", err)
	}
	u.CreatedAt = fromNanos(created)
	return u, nil
}

// GetUser implements rescind.Store.
func (s *Store) GetUser(ctx context.Context, id string) (rescind.User, error) {
	return s.getUser(ctx, "id", id)
}

// GetUserByUsername implements rescind.Store.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (rescind.User, error) {
	return s.getUser(ctx, "username", username)
}

// ListUsers implements rescind.Store.
func (s *Store) ListUsers(ctx context.Context) ([]rescind.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, username, password_hash, created_at FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing users: %w", err)
	}
	defer rows.Close()
	out := []rescind.User{}
	for rows.Next() {
		var u rescind.User
		var created int64
		if err := rows.Scan(&u.ID, &u.Username, &u.PasswordHash, &created); err != nil {
			return nil, fmt.Errorf("postgres: listing users: %w", err)
		}
		u.CreatedAt = fromNanos(created)
		out = append(out, u)
	}
	return out, rows.Err()
}

// DeleteUser implements rescind.Store.
func (s *Store) DeleteUser(ctx context.Context, id string, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	var revs []rescind.Revocation
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("postgres: deleting user: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: user %q: %w", id, rescind.ErrNotFound)
		}
		revs, n, err = revokeGrants(ctx, tx, rescind.GrantFilter{UserID: id}, rev)
		return err
	})
	return revs, n, err
}

const grantColumns = `id, client_id, user_id, scopes, created_at, last_used_at, revoked_at, tokens_expire_at`

func scanGrant(row pgx.Row) (rescind.Grant, error) {
	var g rescind.Grant
	var created, used, revoked, bound int64
	if err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &g.Scopes, &created, &used, &revoked, &bound); err != nil {
		return g, err
	}
	if bound != 0 {
		g.TokensExpireAt = fromNanos(bound)
	}
	g.CreatedAt, g.LastUsedAt = fromNanos(created), fromNanos(used)
	if revoked != 0 {
		g.RevokedAt = fromNanos(revoked)
	}
	return g, nil
}

// SaveGrant implements rescind.Store.
func (s *Store) SaveGrant(ctx context.Context, g rescind.Grant) (rescind.Grant, error) {
	var out rescind.Grant
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Serialize consent for this (client, user) pair, so two concurrent consents make one grant.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`, g.ClientID, g.UserID); err != nil {
			return err
		}
		cur, err := scanGrant(tx.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants
			WHERE client_id = $1 AND user_id = $2 AND revoked_at = 0 ORDER BY created_at LIMIT 1`, g.ClientID, g.UserID))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			_, err := tx.Exec(ctx, `INSERT INTO grants (id, client_id, user_id, scopes, created_at, last_used_at)
				VALUES ($1, $2, $3, $4, $5, $6)`, g.ID, g.ClientID, g.UserID, list(g.Scopes), nanos(g.CreatedAt), nanos(g.LastUsedAt))
			out = g
			return err
		case err != nil:
			return err
		}
		for _, sc := range g.Scopes {
			if !slices.Contains(cur.Scopes, sc) {
				cur.Scopes = append(cur.Scopes, sc)
			}
		}
		out = cur
		_, err = tx.Exec(ctx, `UPDATE grants SET scopes = $1 WHERE id = $2`, list(cur.Scopes), cur.ID)
		return err
	})
	if err != nil {
		return g, fmt.Errorf("postgres: saving grant: %w", err)
	}
	return out, nil
}

// GetGrant implements rescind.Store.
func (s *Store) GetGrant(ctx context.Context, id string) (rescind.Grant, error) {
	g, err := scanGrant(s.pool.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return g, fmt.Errorf("postgres: grant %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("postgres: reading grant: %w", err)
	}
	return g, nil
}

// grantWhere renders f as a WHERE clause over active grants.
func grantWhere(f rescind.GrantFilter) (string, []any) {
	return grantWhereAnd(f, "", nil, "revoked_at = 0")
}

// grantWhereAnd renders the conditions conds (whose arguments are args, numbered from $1) and
// f, on the grants table named by prefix ("" or "g."), as a WHERE clause.
func grantWhereAnd(f rescind.GrantFilter, prefix string, args []any, conds ...string) (string, []any) {
	for _, c := range []struct{ col, v string }{{"id", f.GrantID}, {"client_id", f.ClientID}, {"user_id", f.UserID}} {
		if c.v != "" {
			args = append(args, c.v)
			conds = append(conds, prefix+c.col+" = $"+strconv.Itoa(len(args)))
		}
	}
	return strings.Join(conds, " AND "), args
}

// ListGrants implements rescind.Store.
func (s *Store) ListGrants(ctx context.Context, f rescind.GrantFilter) ([]rescind.Grant, error) {
	where, args := grantWhere(f)
	rows, err := s.pool.Query(ctx, `SELECT `+grantColumns+` FROM grants WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing grants: %w", err)
	}
	defer rows.Close()
	out := []rescind.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: listing grants: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// TouchGrant implements rescind.Store.
func (s *Store) TouchGrant(ctx context.Context, id string, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `UPDATE grants SET last_used_at = $1 WHERE id = $2`, nanos(at), id); err != nil {
		return fmt.Errorf("postgres: touching grant: %w", err)
	}
	return nil
}

// RevokeGrants implements rescind.Store.
func (s *Store) RevokeGrants(ctx context.Context, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	if f.IsZero() {
		return nil, 0, errors.New("postgres: RevokeGrants needs a filter")
	}
	var revs []rescind.Revocation
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		revs, n, err = revokeGrants(ctx, tx, f, rev)
		return err
	})
	return revs, n, err
}

// grantRecord is the RevokeGrant record of grant id of clientID revoked at revokedAt: a copy of
// the template rev that lives until the latest expiry of the tokens issued under the grant
// (bound, Unix ns), and at least until revokedAt.
func grantRecord(rev rescind.Revocation, id, clientID string, revokedAt time.Time, bound int64) rescind.Revocation {
	r := rev
	r.Kind, r.Key, r.ClientID, r.RevokedAt = rescind.RevokeGrant, id, clientID, revokedAt
	r.ExpiresAt = revokedAt
	if bound > nanos(revokedAt) {
		r.ExpiresAt = fromNanos(bound)
	}
	return r
}

func revokeGrants(ctx context.Context, tx pgx.Tx, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	where, args := grantWhere(f)
	// FOR UPDATE: a concurrent code redemption or refresh raises the grant's bound while
	// holding its row, so the bound read here, after that commits, includes its token; one that
	// comes after this commits finds the grant revoked and issues nothing.
	rows, err := tx.Query(ctx, `SELECT id, client_id, tokens_expire_at FROM grants WHERE `+where+` FOR UPDATE`, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: revoking grants: %w", err)
	}
	var revs []rescind.Revocation
	for rows.Next() {
		var id, clientID string
		var bound int64
		if err := rows.Scan(&id, &clientID, &bound); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("postgres: revoking grants: %w", err)
		}
		revs = append(revs, grantRecord(rev, id, clientID, rev.RevokedAt, bound))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("postgres: revoking grants: %w", err)
	}
	// Grants revoked before whose tokens may still be alive: revoking again extends a record
	// that is missing or ends before the tokens do (one written by an older version, say).
	again, err := extendRevokedGrants(ctx, tx, f, rev)
	if err != nil {
		return nil, 0, err
	}
	var tokens int64
	for _, r := range revs {
		if _, err := tx.Exec(ctx, `UPDATE grants SET revoked_at = $1 WHERE id = $2`, nanos(r.RevokedAt), r.Key); err != nil {
			return nil, 0, fmt.Errorf("postgres: revoking grant: %w", err)
		}
		var live int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE grant_id = $1 AND used_at = 0`, r.Key).Scan(&live); err != nil {
			return nil, 0, fmt.Errorf("postgres: revoking grant: %w", err)
		}
		tokens += live
		if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE grant_id = $1`, r.Key); err != nil {
			return nil, 0, fmt.Errorf("postgres: revoking grant: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM auth_codes WHERE grant_id = $1`, r.Key); err != nil {
			return nil, 0, fmt.Errorf("postgres: revoking grant: %w", err)
		}
	}
	revs = append(revs, again...)
	// Flip the status list entries of the grants' access tokens (each kept until its token's
	// exp plus the janitor's grace).
	var statuses []rescind.Revocation
	for _, r := range revs {
		rows, err := tx.Query(ctx, `SELECT status_list, status_idx, expires_at FROM grant_token_status
			WHERE grant_id = $1`, r.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("postgres: revoking grant: %w", err)
		}
		for rows.Next() {
			st := rescind.Revocation{Kind: rescind.RevokeStatus, ClientID: r.ClientID, RevokedAt: r.RevokedAt, Subject: r.Subject,
				Audience: r.Audience} // a grant's status records belong to the grant's tokens
			var exp int64
			if err := rows.Scan(&st.StatusList, &st.StatusIdx, &exp); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("postgres: revoking grant: %w", err)
			}
			st.ExpiresAt = fromNanos(exp)
			st.Key = fmt.Sprintf("%s:%d", st.StatusList, st.StatusIdx)
			statuses = append(statuses, st)
		}
		rows.Close()
	}
	revs = append(revs, statuses...)
	if len(revs) > 0 {
		if err := writeRevocations(ctx, tx, revs); err != nil {
			return nil, 0, err
		}
	}
	return revs, tokens, nil
}

// extendRevokedGrants returns the records to write again for the revoked grants matching f whose
// tokens may be alive at rev.RevokedAt and whose stored record is missing or ends earlier.
func extendRevokedGrants(ctx context.Context, tx pgx.Tx, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, error) {
	where, args := grantWhereAnd(f, "g.", []any{nanos(rev.RevokedAt)}, "g.revoked_at <> 0", "g.tokens_expire_at >= $1")
	rows, err := tx.Query(ctx, `SELECT g.id, g.client_id, g.revoked_at, g.tokens_expire_at, coalesce(r.expires_at, 0)
		FROM grants g LEFT JOIN revocations r ON r.kind = 'grant' AND r.key = g.id WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: revoking grants again: %w", err)
	}
	defer rows.Close()
	var out []rescind.Revocation
	for rows.Next() {
		var id, clientID string
		var revokedAt, bound, recorded int64
		if err := rows.Scan(&id, &clientID, &revokedAt, &bound, &recorded); err != nil {
			return nil, fmt.Errorf("postgres: revoking grants again: %w", err)
		}
		if recorded < bound {
			r := grantRecord(rev, id, clientID, fromNanos(revokedAt), bound)
			r.Actor = "" // not a new revocation
			out = append(out, r)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: revoking grants again: %w", err)
	}
	return out, nil
}

// raiseGrantBound raises the TokensExpireAt of grant id to exp, in tx, holding the grant's row
// until tx ends (see revokeGrants). A revoked (or missing) grant gives ErrNotFound: nothing may
// be issued under it.
func raiseGrantBound(ctx context.Context, tx pgx.Tx, id string, exp time.Time) error {
	tag, err := tx.Exec(ctx, `UPDATE grants SET tokens_expire_at = GREATEST(tokens_expire_at, $1) WHERE id = $2 AND revoked_at = 0`,
		nanos(exp), id)
	if err != nil {
		return fmt.Errorf("recording the grant's token expiry: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("grant %q is revoked: %w", id, rescind.ErrNotFound)
	}
	return nil
}

// CreateRefreshToken implements rescind.Store.
func (s *Store) CreateRefreshToken(ctx context.Context, rt rescind.RefreshToken) error {
	_, err := s.pool.Exec(ctx, insertRefreshSQL, rt.Hash, rt.GrantID, rt.ClientID, rt.Scope, nanos(rt.CreatedAt), nanos(rt.ExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: refresh token: %w", rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: storing refresh token: %w", err)
	}
	return nil
}

const insertRefreshSQL = `INSERT INTO refresh_tokens (hash, grant_id, client_id, scope, created_at, expires_at)
	VALUES ($1, $2, $3, $4, $5, $6)`

const refreshColumns = `hash, grant_id, client_id, scope, created_at, expires_at, used_at`

func scanRefresh(row pgx.Row) (rescind.RefreshToken, error) {
	var rt rescind.RefreshToken
	var created, expires, used int64
	if err := row.Scan(&rt.Hash, &rt.GrantID, &rt.ClientID, &rt.Scope, &created, &expires, &used); err != nil {
		return rt, err
	}
	rt.CreatedAt, rt.ExpiresAt = fromNanos(created), fromNanos(expires)
	if used != 0 {
		rt.UsedAt = fromNanos(used)
	}
	return rt, nil
}

// GetRefreshToken implements rescind.Store.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (rescind.RefreshToken, error) {
	rt, err := scanRefresh(s.pool.QueryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return rt, fmt.Errorf("postgres: refresh token: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return rt, fmt.Errorf("postgres: reading refresh token: %w", err)
	}
	return rt, nil
}

// RotateRefreshToken implements rescind.Store.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next rescind.RefreshToken, now, tokensExpireAt time.Time) (rescind.RefreshToken, error) {
	var old rescind.RefreshToken
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		check := func(lock string) error {
			var err error
			old, err = scanRefresh(tx.QueryRow(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = $1`+lock, oldHash))
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return rescind.ErrNotFound
			case err != nil:
				return err
			case !old.UsedAt.IsZero():
				return rescind.ErrReused
			case !now.Before(old.ExpiresAt):
				return rescind.ErrNotFound
			}
			return nil
		}
		// The grant's row is locked before the token's, in the order revokeGrants takes them.
		if err := check(""); err != nil {
			return err
		}
		if err := raiseGrantBound(ctx, tx, old.GrantID, tokensExpireAt); err != nil {
			return err
		}
		// FOR UPDATE: of two concurrent rotations, the second waits and then sees used_at set.
		if err := check(" FOR UPDATE"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET used_at = $1 WHERE hash = $2`, nanos(now), oldHash); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, insertRefreshSQL, next.Hash, next.GrantID, next.ClientID, next.Scope, nanos(next.CreatedAt), nanos(next.ExpiresAt))
		return err
	})
	if err != nil {
		return old, fmt.Errorf("postgres: rotating refresh token: %w", err)
	}
	old.UsedAt = now
	return old, nil
}

// CreateCode implements rescind.Store.
func (s *Store) CreateCode(ctx context.Context, c rescind.AuthCode) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO auth_codes (hash, client_id, user_id, grant_id, redirect_uri, redirect_uri_given,
		scope, challenge, challenge_method, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		c.Hash, c.ClientID, c.UserID, c.GrantID, c.RedirectURI, c.RedirectURIGiven, c.Scope, c.Challenge, c.ChallengeMethod,
		nanos(c.CreatedAt), nanos(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("postgres: storing code: %w", err)
	}
	return nil
}

func getCode(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, hash, lock string) (rescind.AuthCode, error) {
	var c rescind.AuthCode
	var created, expires, used int64
	err := q.QueryRow(ctx, `SELECT hash, client_id, user_id, grant_id, redirect_uri, redirect_uri_given, scope,
		challenge, challenge_method, created_at, expires_at, used_at FROM auth_codes WHERE hash = $1`+lock, hash).
		Scan(&c.Hash, &c.ClientID, &c.UserID, &c.GrantID, &c.RedirectURI, &c.RedirectURIGiven, &c.Scope, &c.Challenge,
			&c.ChallengeMethod, &created, &expires, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, rescind.ErrNotFound
	}
	if err != nil {
		return c, err
	}
	c.CreatedAt, c.ExpiresAt = fromNanos(created), fromNanos(expires)
	if used != 0 {
		c.UsedAt = fromNanos(used)
	}
	return c, nil
}

// GetCode implements rescind.Store.
func (s *Store) GetCode(ctx context.Context, hash string) (rescind.AuthCode, error) {
	c, err := getCode(ctx, s.pool, hash, "")
	if err != nil {
		return c, fmt.Errorf("postgres: reading code: %w", err)
	}
	return c, nil
}

// RedeemCode implements rescind.Store.
func (s *Store) RedeemCode(ctx context.Context, hash string, now, tokensExpireAt time.Time) (rescind.AuthCode, error) {
	var c rescind.AuthCode
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		check := func(lock string) error {
			var err error
			switch c, err = getCode(ctx, tx, hash, lock); {
			case err != nil:
				return err
			case !c.UsedAt.IsZero():
				return rescind.ErrReused
			case !now.Before(c.ExpiresAt):
				return rescind.ErrNotFound
			}
			return nil
		}
		// The grant's row is locked before the code's, in the order revokeGrants takes them.
		if err := check(""); err != nil {
			return err
		}
		if err := raiseGrantBound(ctx, tx, c.GrantID, tokensExpireAt); err != nil {
			return err
		}
		// FOR UPDATE: of two concurrent redemptions, the second waits and then sees used_at set.
		if err := check(" FOR UPDATE"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE auth_codes SET used_at = $1 WHERE hash = $2`, nanos(now), hash)
		return err
	})
	if err != nil {
		return c, fmt.Errorf("postgres: redeeming code: %w", err)
	}
	c.UsedAt = now
	return c, nil
}

// DeleteExpired implements rescind.Store.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{`DELETE FROM auth_codes WHERE expires_at < $1`, `DELETE FROM refresh_tokens WHERE expires_at < $1`,
		`DELETE FROM grant_token_status WHERE expires_at < $1`, `DELETE FROM status_lists WHERE expires_at < $1`} {
		tag, err := s.pool.Exec(ctx, q, nanos(now))
		if err != nil {
			return total, fmt.Errorf("postgres: deleting expired: %w", err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}

// ListAudit implements rescind.Store.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]rescind.AuditEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, at, actor, action, target, reason FROM audit ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing audit: %w", err)
	}
	defer rows.Close()
	out := []rescind.AuditEntry{}
	for rows.Next() {
		var e rescind.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Reason); err != nil {
			return nil, fmt.Errorf("postgres: listing audit: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// RecordGrantTokenStatus implements rescind.Store.
func (s *Store) RecordGrantTokenStatus(ctx context.Context, grantID, list string, idx int64, exp time.Time) error {
	// Under a share lock on the grant's row: a revocation holding the row (RevokeGrants takes it
	// FOR UPDATE) commits first, and then the grant is found revoked and nothing is recorded; or
	// it waits for this insert to commit, and its later read of the entries finds this one.
	tag, err := s.pool.Exec(ctx, `INSERT INTO grant_token_status (grant_id, status_list, status_idx, expires_at)
		SELECT id, $2, $3, $4 FROM grants WHERE id = $1 AND revoked_at = 0 FOR SHARE`,
		grantID, list, idx, nanos(exp))
	if err != nil {
		return fmt.Errorf("postgres: recording token status: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: grant %q is revoked: %w", grantID, rescind.ErrNotFound)
	}
	return nil
}

// DeleteAuditBefore implements rescind.Store.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM audit WHERE at < $1`, nanos(t))
	if err != nil {
		return 0, fmt.Errorf("postgres: deleting old audit entries: %w", err)
	}
	return tag.RowsAffected(), nil
}
