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

const grantColumns = `id, client_id, user_id, scopes, created_at, last_used_at, revoked_at`

func scanGrant(row interface{ Scan(...any) error }) (rescind.Grant, error) {
	var g rescind.Grant
	var scopes string
	var created, used, revoked int64
	if err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &scopes, &created, &used, &revoked); err != nil {
		return g, err
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
	conds := []string{"revoked_at = 0"}
	var args []any
	for _, c := range []struct{ col, v string }{{"id", f.GrantID}, {"client_id", f.ClientID}, {"user_id", f.UserID}} {
		if c.v != "" {
			conds = append(conds, c.col+" = ?")
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

func revokeGrants(ctx context.Context, tx *sql.Tx, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	where, args := grantWhere(f)
	rows, err := tx.QueryContext(ctx, `SELECT id, client_id FROM grants WHERE `+where, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: revoking grants: %w", err)
	}
	var revs []rescind.Revocation
	for rows.Next() {
		r := rev
		r.Kind = rescind.RevokeGrant
		if err := rows.Scan(&r.Key, &r.ClientID); err != nil {
			rows.Close()
			return nil, 0, fmt.Errorf("sqlite: revoking grants: %w", err)
		}
		revs = append(revs, r)
	}
	rows.Close()
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
	// Flip the status list entries of the grants' unexpired access tokens.
	var statuses []rescind.Revocation
	for _, r := range revs {
		rows, err := tx.QueryContext(ctx, `SELECT status_list, status_idx, expires_at FROM grant_token_status
			WHERE grant_id = ? AND expires_at >= ?`, r.Key, nanos(r.RevokedAt))
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

// CreateRefreshToken implements rescind.Store.
func (s *Store) CreateRefreshToken(ctx context.Context, rt rescind.RefreshToken) error {
	return insertRefresh(ctx, s.db, rt)
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertRefresh(ctx context.Context, db execer, rt rescind.RefreshToken) error {
	_, err := db.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, grant_id, client_id, scope, created_at, expires_at, jkt)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, rt.Hash, rt.GrantID, rt.ClientID, rt.Scope, nanos(rt.CreatedAt), nanos(rt.ExpiresAt), rt.JKT)
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
	if err := row.Scan(&rt.Hash, &rt.GrantID, &rt.ClientID, &rt.Scope, &created, &expires, &used, &rt.JKT); err != nil {
		return rt, err
	}
	rt.CreatedAt, rt.ExpiresAt = fromNanos(created), fromNanos(expires)
	if used != 0 {
		rt.UsedAt = fromNanos(used)
	}
	return rt, nil
}

const refreshColumns = `hash, grant_id, client_id, scope, created_at, expires_at, used_at, jkt`

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
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next rescind.RefreshToken, now time.Time) (rescind.RefreshToken, error) {
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
		scope, challenge, challenge_method, created_at, expires_at, dpop_jkt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.Hash, c.ClientID, c.UserID, c.GrantID, c.RedirectURI, c.RedirectURIGiven, c.Scope, c.Challenge, c.ChallengeMethod,
		nanos(c.CreatedAt), nanos(c.ExpiresAt), c.DPoPJKT)
	if err != nil {
		return fmt.Errorf("sqlite: storing code: %w", err)
	}
	return nil
}

// RedeemCode implements rescind.Store.
func (s *Store) RedeemCode(ctx context.Context, hash string, now time.Time) (rescind.AuthCode, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return rescind.AuthCode{}, fmt.Errorf("sqlite: redeeming code: %w", err)
	}
	defer tx.Rollback()
	var c rescind.AuthCode
	var created, expires, used int64
	err = tx.QueryRowContext(ctx, `SELECT hash, client_id, user_id, grant_id, redirect_uri, redirect_uri_given, scope,
		challenge, challenge_method, created_at, expires_at, used_at, dpop_jkt FROM auth_codes WHERE hash = ?`, hash).
		Scan(&c.Hash, &c.ClientID, &c.UserID, &c.GrantID, &c.RedirectURI, &c.RedirectURIGiven, &c.Scope, &c.Challenge,
			&c.ChallengeMethod, &created, &expires, &used, &c.DPoPJKT)
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("sqlite: code: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: redeeming code: %w", err)
	}
	c.CreatedAt, c.ExpiresAt = fromNanos(created), fromNanos(expires)
	if used != 0 {
		c.UsedAt = fromNanos(used)
		return c, fmt.Errorf("sqlite: code: %w", rescind.ErrReused)
	}
	if !now.Before(c.ExpiresAt) {
		return c, fmt.Errorf("sqlite: code expired: %w", rescind.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE auth_codes SET used_at = ? WHERE hash = ?`, nanos(now), hash); err != nil {
		return c, fmt.Errorf("sqlite: redeeming code: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return c, fmt.Errorf("sqlite: redeeming code: commit: %w", err)
	}
	return c, nil
}

// DeleteExpired implements rescind.Store.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	for _, q := range []string{`DELETE FROM auth_codes WHERE expires_at < ?`, `DELETE FROM refresh_tokens WHERE expires_at < ?`,
		`DELETE FROM grant_token_status WHERE expires_at < ?`, `DELETE FROM status_lists WHERE expires_at < ?`,
		`DELETE FROM used_once WHERE expires_at < ?`} {
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
	_, err := s.db.ExecContext(ctx, `INSERT INTO grant_token_status (grant_id, status_list, status_idx, expires_at) VALUES (?, ?, ?, ?)`,
		grantID, list, idx, nanos(exp))
	if err != nil {
		return fmt.Errorf("sqlite: recording token status: %w", err)
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

// MarkUsed implements rescind.Store: one upsert that replaces only an expired record, so the
// rows it changes say whether id was fresh.
func (s *Store) MarkUsed(ctx context.Context, id [32]byte, expiresAt, now time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO used_once (id, expires_at) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at WHERE used_once.expires_at < ?`,
		id[:], nanos(expiresAt), nanos(now))
	if err != nil {
		return false, fmt.Errorf("sqlite: recording a used value: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("sqlite: recording a used value: %w", err)
	}
	return n == 1, nil
}
