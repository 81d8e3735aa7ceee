package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rescind/rescind"
)

// CreateUser implements rescind.Store.
func (s *Store) CreateUser(ctx context.Context, u rescind.User) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO users (id, username, password_hash, created_at) VALUES (?, ?, ?, ?)`,
		u.ID, u.Username, u.PasswordHash, nanos(u.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: user %q: %w", u.Username, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: creating user: %w", err)
	}
	return nil
}

func (s *Store) getUser(ctx context.Context, where string, arg string) (rescind.User, error) {
	var u rescind.User
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT id, username, password_hash, created_at FROM users WHERE `+where+` = ?`, arg).
		Scan(&u.ID, &u.Username, &u.PasswordHash, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("sqlite: user %q: %w", arg, rescind.ErrNotFound)
	}
	if err != nil {
		return u, fmt.Errorf("sqlite: reading user: %w", err)
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
	rows, err := s.db.QueryContext(ctx, `SELECT id, username, password_hash, created_at FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing users: %w", err)
	}
	defer rows.Close()
	out := []rescind.User{}
	for rows.Next() {
		var u rescind.User
		var created int64
		if err := rows.Scan(&u.ID, &u.Username, &u.PasswordHash, &created); err != nil {
			return nil, fmt.Errorf("sqlite: listing users: %w", err)
		}
		u.CreatedAt = fromNanos(created)
		out = append(out, u)
	}
	return out, rows.Err()
}

// DeleteUser implements rescind.Store.
func (s *Store) DeleteUser(ctx context.Context, id string, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: deleting user: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: deleting user: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, 0, fmt.Errorf("sqlite: user %q: %w", id, rescind.ErrNotFound)
	}
	revs, n, err := revokeGrants(ctx, tx, rescind.GrantFilter{UserID: id}, rev)
	if err != nil {
		return nil, 0, err
	}
	if err := tx.Commit(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: deleting user: commit: %w", err)
	}
	return revs, n, nil
}

const grantColumns = `id, client_id, user_id, scopes, created_at, last_used_at, revoked_at, tokens_expire_at`

func scanGrant(row interface{ Scan(...any) error }) (rescind.Grant, error) {
	var g rescind.Grant
	var scopes string
	var created, used, revoked, bound int64
	if err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &scopes, &created, &used, &revoked, &bound); err != nil {
		return g, err
	}
	if bound != 0 {
		g.TokensExpireAt = fromNanos(bound)
	}
	var err error
	if g.Scopes, err = parseList(scopes); err != nil {
		return g, err
	}
	g.CreatedAt, g.LastUsedAt = fromNanos(created), fromNanos(used)
	if revoked != 0 {
		g.RevokedAt = fromNanos(revoked)
	}
	return g, nil
}

// SaveGrant implements rescind.Store.
func (s *Store) SaveGrant(ctx context.Context, g rescind.Grant) (rescind.Grant, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return g, fmt.Errorf("sqlite: saving grant: %w", err)
	}
	defer tx.Rollback()
	cur, err := scanGrant(tx.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE client_id = ? AND user_id = ? AND revoked_at = 0 ORDER BY created_at LIMIT 1`, g.ClientID, g.UserID))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO grants (id, client_id, user_id, scopes, created_at, last_used_at)
			VALUES (?, ?, ?, ?, ?, ?)`, g.ID, g.ClientID, g.UserID, jsonList(g.Scopes), nanos(g.CreatedAt), nanos(g.LastUsedAt)); err != nil {
			return g, fmt.Errorf("sqlite: saving grant: %w", err)
		}
		cur = g
	case err != nil:
		return g, fmt.Errorf("sqlite: saving grant: %w", err)
	default:
		cur.Scopes = unionScopes(cur.Scopes, g.Scopes)
		if _, err := tx.ExecContext(ctx, `UPDATE grants SET scopes = ? WHERE id = ?`, jsonList(cur.Scopes), cur.ID); err != nil {
			return g, fmt.Errorf("sqlite: saving grant: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return g, fmt.Errorf("sqlite: saving grant: commit: %w", err)
	}
	return cur, nil
}

func unionScopes(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// GetGrant implements rescind.Store.
func (s *Store) GetGrant(ctx context.Context, id string) (rescind.Grant, error) {
	g, err := scanGrant(s.db.QueryRowContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return g, fmt.Errorf("sqlite: grant %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return g, fmt.Errorf("sqlite: reading grant: %w", err)
	}
	return g, nil
}

// grantWhere renders f as a WHERE clause over active grants.
func grantWhere(f rescind.GrantFilter) (string, []any) {
	return grantWhereAnd(f, "", "revoked_at = 0")
}

// grantWhereAnd renders f, on the grants table named by prefix ("" or "g."), and the conditions
// conds as a WHERE clause (conds come first, for their own arguments).
func grantWhereAnd(f rescind.GrantFilter, prefix string, conds ...string) (string, []any) {
	var args []any
	for _, c := range []struct{ col, v string }{{"id", f.GrantID}, {"client_id", f.ClientID}, {"user_id", f.UserID}} {
		if c.v != "" {
			conds = append(conds, prefix+c.col+" = ?")
			args = append(args, c.v)
		}
	}
	return strings.Join(conds, " AND "), args
}

// ListGrants implements rescind.Store.
func (s *Store) ListGrants(ctx context.Context, f rescind.GrantFilter) ([]rescind.Grant, error) {
	where, args := grantWhere(f)
	rows, err := s.db.QueryContext(ctx, `SELECT `+grantColumns+` FROM grants WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing grants: %w", err)
	}
	defer rows.Close()
	out := []rescind.Grant{}
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listing grants: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// TouchGrant implements rescind.Store.
func (s *Store) TouchGrant(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE grants SET last_used_at = ? WHERE id = ?`, nanos(at), id); err != nil {
		return fmt.Errorf("sqlite: touching grant: %w", err)
	}
	return nil
}

// RevokeGrants implements rescind.Store.
func (s *Store) RevokeGrants(ctx context.Context, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	if f.IsZero() {
		return nil, 0, errors.New("sqlite: RevokeGrants needs a filter")
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: revoking grants: %w", err)
	}
	defer tx.Rollback()
	revs, n, err := revokeGrants(ctx, tx, f, rev)
	if err != nil {
		return nil, 0, err
	}
	if err := tx.Commit(); err != nil {
		return nil, 0, fmt.Errorf("sqlite: revoking grants: commit: %w", err)
	}
	return revs, n, nil
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

func revokeGrants(ctx context.Context, tx *sql.Tx, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	where, args := grantWhere(f)
	rows, err := tx.QueryContext(ctx, `SELECT id, client_id, tokens_expire_at FROM grants WHERE `+where, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: revoking grants: %w", err)
	}
	var revs []rescind.Revocation
	for rows.Next() {
		var id, clientID string
		var bound int64
		if err := rows.Scan(&id, &clientID, &bound); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("sqlite: revoking grants: %w", err)
		}
		revs = append(revs, grantRecord(rev, id, clientID, rev.RevokedAt, bound))
	}
	rows.Close()
	// Grants revoked before whose tokens may still be alive: revoking again extends a record
	// that is missing or ends before the tokens do (one written by an older version, say).
	again, err := extendRevokedGrants(ctx, tx, f, rev)
	if err != nil {
		return nil, 0, err
	}
	var tokens int64
	for _, r := range revs {
		if _, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = ? WHERE id = ?`, nanos(r.RevokedAt), r.Key); err != nil {
			return nil, 0, fmt.Errorf("sqlite: revoking grant: %w", err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE grant_id = ? AND used_at = 0`, r.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: revoking grant: %w", err)
		}
		n, _ := res.RowsAffected()
		tokens += n
		if _, err := tx.ExecContext(ctx, `DELETE FROM refresh_tokens WHERE grant_id = ?`, r.Key); err != nil {
			return nil, 0, fmt.Errorf("sqlite: revoking grant: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM auth_codes WHERE grant_id = ?`, r.Key); err != nil {
			return nil, 0, fmt.Errorf("sqlite: revoking grant: %w", err)
		}
		if err := upsertRevocation(ctx, tx, r); err != nil {
			return nil, 0, err
		}
	}
	for _, r := range again {
		if err := upsertRevocation(ctx, tx, r); err != nil {
			return nil, 0, err
		}
	}
	revs = append(revs, again...)
	// Flip the status list entries of the grants' access tokens (each kept until its token's
	// exp plus the janitor's grace).
	var statuses []rescind.Revocation
	for _, r := range revs {
		rows, err := tx.QueryContext(ctx, `SELECT status_list, status_idx, expires_at FROM grant_token_status
			WHERE grant_id = ?`, r.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("sqlite: revoking grant: %w", err)
		}
		for rows.Next() {
			st := rescind.Revocation{Kind: rescind.RevokeStatus, ClientID: r.ClientID, RevokedAt: r.RevokedAt, Subject: r.Subject,
				Audience: r.Audience} // a grant's status records belong to the grant's tokens
			var exp int64
			if err := rows.Scan(&st.StatusList, &st.StatusIdx, &exp); err != nil {
				rows.Close()
				return nil, 0, fmt.Errorf("sqlite: revoking grant: %w", err)
			}
			st.ExpiresAt = fromNanos(exp)
			st.Key = fmt.Sprintf("%s:%d", st.StatusList, st.StatusIdx)
			statuses = append(statuses, st)
		}
		rows.Close()
	}
	for _, st := range statuses {
		if err := upsertRevocation(ctx, tx, st); err != nil {
			return nil, 0, err
		}
	}
	return append(revs, statuses...), tokens, nil
}

// extendRevokedGrants returns the records to write again for the revoked grants matching f whose
// tokens may be alive at rev.RevokedAt and whose stored record is missing or ends earlier.
func extendRevokedGrants(ctx context.Context, tx *sql.Tx, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, error) {
	where, args := grantWhereAnd(f, "g.", "g.revoked_at <> 0", "g.tokens_expire_at >= ?")
	args = append([]any{nanos(rev.RevokedAt)}, args...)
	rows, err := tx.QueryContext(ctx, `SELECT g.id, g.client_id, g.revoked_at, g.tokens_expire_at, coalesce(r.expires_at, 0)
		FROM grants g LEFT JOIN revocations r ON r.kind = 'grant' AND r.key = g.id WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: revoking grants again: %w", err)
	}
	defer rows.Close()
	var out []rescind.Revocation
	for rows.Next() {
		var id, clientID string
		var revokedAt, bound, recorded int64
		if err := rows.Scan(&id, &clientID, &revokedAt, &bound, &recorded); err != nil {
			return nil, fmt.Errorf("sqlite: revoking grants again: %w", err)
		}
		if recorded < bound {
			r := grantRecord(rev, id, clientID, fromNanos(revokedAt), bound)
			r.Actor = "" // not a new revocation
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

// CreateRefreshToken implements rescind.Store.
func (s *Store) CreateRefreshToken(ctx context.Context, rt rescind.RefreshToken) error {
	return insertRefresh(ctx, s.db, rt)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertRefresh(ctx context.Context, db execer, rt rescind.RefreshToken) error {
	_, err := db.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, grant_id, client_id, scope, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, rt.Hash, rt.GrantID, rt.ClientID, rt.Scope, nanos(rt.CreatedAt), nanos(rt.ExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: refresh token: %w", rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: storing refresh token: %w", err)
	}
	return nil
}

func scanRefresh(row interface{ Scan(...any) error }) (rescind.RefreshToken, error) {
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

const refreshColumns = `hash, grant_id, client_id, scope, created_at, expires_at, used_at`

// GetRefreshToken implements rescind.Store.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (rescind.RefreshToken, error) {
	rt, err := scanRefresh(s.db.QueryRowContext(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return rt, fmt.Errorf("sqlite: refresh token: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return rt, fmt.Errorf("sqlite: reading refresh token: %w", err)
	}
	return rt, nil
}

// RotateRefreshToken implements rescind.Store.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next rescind.RefreshToken, now, tokensExpireAt time.Time) (rescind.RefreshToken, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return rescind.RefreshToken{}, fmt.Errorf("sqlite: rotating refresh token: %w", err)
	}
	defer tx.Rollback()
	old, err := scanRefresh(tx.QueryRowContext(ctx, `SELECT `+refreshColumns+` FROM refresh_tokens WHERE hash = ?`, oldHash))
	if errors.Is(err, sql.ErrNoRows) {
		return old, fmt.Errorf("sqlite: refresh token: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return old, fmt.Errorf("sqlite: rotating refresh token: %w", err)
	}
	if !old.UsedAt.IsZero() {
		return old, fmt.Errorf("sqlite: refresh token: %w", rescind.ErrReused)
	}
	if !now.Before(old.ExpiresAt) {
		return old, fmt.Errorf("sqlite: refresh token expired: %w", rescind.ErrNotFound)
	}
	if err := raiseGrantBound(ctx, tx, old.GrantID, tokensExpireAt); err != nil {
		return old, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = ? WHERE hash = ?`, nanos(now), oldHash); err != nil {
		return old, fmt.Errorf("sqlite: rotating refresh token: %w", err)
	}
	if err := insertRefresh(ctx, tx, next); err != nil {
		return old, err
	}
	if err := tx.Commit(); err != nil {
		return old, fmt.Errorf("sqlite: rotating refresh token: commit: %w", err)
	}
	old.UsedAt = now
	return old, nil
}

// CreateCode implements rescind.Store.
func (s *Store) CreateCode(ctx context.Context, c rescind.AuthCode) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO auth_codes (hash, client_id, user_id, grant_id, redirect_uri, redirect_uri_given,
		scope, challenge, challenge_method, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.ClientID, c.UserID, c.GrantID, c.RedirectURI, c.RedirectURIGiven, c.Scope, c.Challenge, c.ChallengeMethod,
		nanos(c.CreatedAt), nanos(c.ExpiresAt))
	if err != nil {
		return fmt.Errorf("sqlite: storing code: %w", err)
	}
	return nil
}

// raiseGrantBound raises the TokensExpireAt of grant id to exp, in tx. A revoked (or missing)
// grant gives ErrNotFound: nothing may be issued under it.
func raiseGrantBound(ctx context.Context, tx *sql.Tx, id string, exp time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE grants SET tokens_expire_at = max(tokens_expire_at, ?) WHERE id = ? AND revoked_at = 0`,
		nanos(exp), id)
	if err != nil {
		return fmt.Errorf("sqlite: recording the grant's token expiry: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: recording the grant's token expiry: %w", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: grant %q is revoked: %w", id, rescind.ErrNotFound)
	}
	return nil
}

func getCode(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, hash string) (rescind.AuthCode, error) {
	var c rescind.AuthCode
	var created, expires, used int64
	err := q.QueryRowContext(ctx, `SELECT hash, client_id, user_id, grant_id, redirect_uri, redirect_uri_given, scope,
		challenge, challenge_method, created_at, expires_at, used_at FROM auth_codes WHERE hash = ?`, hash).
		Scan(&c.Hash, &c.ClientID, &c.UserID, &c.GrantID, &c.RedirectURI, &c.RedirectURIGiven, &c.Scope, &c.Challenge,
			&c.ChallengeMethod, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("sqlite: code: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: reading code: %w", err)
	}
	c.CreatedAt, c.ExpiresAt = fromNanos(created), fromNanos(expires)
	if used != 0 {
		c.UsedAt = fromNanos(used)
	}
	return c, nil
}

// GetCode implements rescind.Store.
func (s *Store) GetCode(ctx context.Context, hash string) (rescind.AuthCode, error) {
	return getCode(ctx, s.db, hash)
}

// RedeemCode implements rescind.Store.
func (s *Store) RedeemCode(ctx context.Context, hash string, now, tokensExpireAt time.Time) (rescind.AuthCode, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return rescind.AuthCode{}, fmt.Errorf("sqlite: redeeming code: %w", err)
	}
	defer tx.Rollback()
	c, err := getCode(ctx, tx, hash)
	if err != nil {
		return c, err
	}
	if !c.UsedAt.IsZero() {
		return c, fmt.Errorf("sqlite: code: %w", rescind.ErrReused)
	}
	if !now.Before(c.ExpiresAt) {
		return c, fmt.Errorf("sqlite: code expired: %w", rescind.ErrNotFound)
	}
	if err := raiseGrantBound(ctx, tx, c.GrantID, tokensExpireAt); err != nil {
		return c, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE auth_codes SET used_at = ? WHERE hash = ?`, nanos(now), hash); err != nil {
		return c, fmt.Errorf("sqlite: redeeming code: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return c, fmt.Errorf("sqlite: redeeming code: commit: %w", err)
	}
	c.UsedAt = now
	return c, nil
}

// DeleteExpired implements rescind.Store.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{`DELETE FROM auth_codes WHERE expires_at < ?`, `DELETE FROM refresh_tokens WHERE expires_at < ?`,
		`DELETE FROM grant_token_status WHERE expires_at < ?`, `DELETE FROM status_lists WHERE expires_at < ?`} {
		res, err := s.db.ExecContext(ctx, q, nanos(now))
		if err != nil {
			return total, fmt.Errorf("sqlite: deleting expired: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// ListAudit implements rescind.Store.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]rescind.AuditEntry, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, at, actor, action, target, reason FROM audit ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing audit: %w", err)
	}
	defer rows.Close()
	out := []rescind.AuditEntry{}
	for rows.Next() {
		var e rescind.AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Reason); err != nil {
			return nil, fmt.Errorf("sqlite: listing audit: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// auditAction names the audit action of a revocation record.
func auditAction(k rescind.RevocationKind) string { return "revoke_" + string(k) }

// RecordGrantTokenStatus implements rescind.Store.
func (s *Store) RecordGrantTokenStatus(ctx context.Context, grantID, list string, idx int64, exp time.Time) error {
	// One statement, so one write transaction: a revocation of the grant commits wholly before
	// it (nothing is recorded) or after it (and flips the entry).
	res, err := s.db.ExecContext(ctx, `INSERT INTO grant_token_status (grant_id, status_list, status_idx, expires_at)
		SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM grants WHERE id = ? AND revoked_at = 0)`,
		grantID, list, idx, nanos(exp), grantID)
	if err != nil {
		return fmt.Errorf("sqlite: recording token status: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: recording token status: %w", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: grant %q is revoked: %w", grantID, rescind.ErrNotFound)
	}
	return nil
}

// DeleteAuditBefore implements rescind.Store.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM audit WHERE at < ?`, nanos(t))
	if err != nil {
		return 0, fmt.Errorf("sqlite: deleting old audit entries: %w", err)
	}
	return res.RowsAffected()
}
