package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rescind/rescind"
)

const userColumns = `id, username, password_hash, created_at, epoch, device_epoch, name, email`

func scanUser(row Row) (rescind.User, error) {
	var u rescind.User
	var created int64
	if err := row.Scan(&u.ID, &u.Username, &u.PasswordHash, &created, &u.Epoch, &u.DeviceEpoch, &u.Name, &u.Email); err != nil {
		return u, err
	}
	u.CreatedAt = FromNanos(created)
	return u, nil
}

// CreateUser implements rescind.Store.
func (s *Store) CreateUser(ctx context.Context, u rescind.User) error {
	_, err := s.db.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Username, u.PasswordHash, Nanos(u.CreatedAt), u.Epoch, u.DeviceEpoch, u.Name, u.Email)
	if s.d.IsUniqueViolation(err) {
		return s.errorf("user %q: %w", u.Username, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return s.errorf("creating user: %w", err)
	}
	return nil
}

// getUser reads the user whose column col (a constant: id or username) is v.
func (s *Store) getUser(ctx context.Context, col, v string) (rescind.User, error) {
	u, err := scanUser(s.db.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+col+` = $1`, v))
	if isNoRows(err) {
		return u, s.errorf("user %q: %w", v, rescind.ErrNotFound)
	}
	if err != nil {
		return u, s.errorf("reading user: %w", err)
	}
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

// SetUserProfile implements rescind.Store.
func (s *Store) SetUserProfile(ctx context.Context, id, name, email string) error {
	n, err := s.db.Exec(ctx, `UPDATE users SET name = $1, email = $2 WHERE id = $3`, name, email, id)
	if err != nil {
		return s.errorf("setting the profile of user %q: %w", id, err)
	}
	if n == 0 {
		return s.errorf("user %q: %w", id, rescind.ErrNotFound)
	}
	return nil
}

// ListUsers implements rescind.Store.
func (s *Store) ListUsers(ctx context.Context) ([]rescind.User, error) {
	out, err := All(ctx, s.db, scanUser, `SELECT `+userColumns+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, s.errorf("listing users: %w", err)
	}
	return out, nil
}

// UserDeletion deletes the user id in tx, ends their sessions as SessionEnding does (with end)
// and revokes their grants as GrantRevocations does (rev is the template of each record, lock
// the clause for the reads). Deleting the user's row first holds it, as SessionCreation's read
// does: a sign-in under way either committed its session, which is ended here, or finds no
// user. It returns the records to write and how many refresh tokens were deleted. A missing
// user is rescind.ErrNotFound.
func UserDeletion(ctx context.Context, tx Querier, id string, rev rescind.Revocation, end rescind.SessionEnd, lock string) ([]rescind.Revocation, int64, error) {
	n, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
	if err != nil {
		return nil, 0, err
	}
	if n == 0 {
		return nil, 0, rescind.ErrNotFound
	}
	// Shared Signals: RISC account-disabled and account-purged, in this transaction.
	if err := EnqueueSignals(ctx, tx, rescind.Signal{Kind: rescind.SignalUserDeleted, At: rev.RevokedAt, UserID: id,
		Actor: rev.Actor, Reason: rev.Reason}); err != nil {
		return nil, 0, err
	}
	// The grants' rows before the sessions' codes: the order of a code's redemption.
	grants, tokens, err := GrantRevocations(ctx, tx, rescind.GrantFilter{UserID: id}, rev, lock)
	if err != nil {
		return nil, 0, err
	}
	end.RevokeGrants = false // every one is revoked already
	sessions, err := SessionEnding(ctx, tx, rescind.SessionFilter{UserID: id}, rev, end, lock)
	if err != nil {
		return nil, 0, err
	}
	return append(sessions, grants...), tokens, nil
}

const grantColumns = `id, client_id, user_id, scopes, created_at, last_used_at, revoked_at, tokens_expire_at, session_id, audience, consented_audience`

func scanGrant(row Row) (rescind.Grant, error) {
	var g rescind.Grant
	var scopes, aud, consented string
	var created, used, revoked, bound int64
	if err := row.Scan(&g.ID, &g.ClientID, &g.UserID, &scopes, &created, &used, &revoked, &bound, &g.SessionID, &aud, &consented); err != nil {
		return g, err
	}
	var err error
	if g.Scopes, err = ParseList(scopes); err != nil {
		return g, fmt.Errorf("scopes: %w", err)
	}
	if g.Audience, err = ParseList(aud); err != nil {
		return g, fmt.Errorf("audience: %w", err)
	}
	if g.ConsentedAudience, err = ParseList(consented); err != nil {
		return g, fmt.Errorf("consented audience: %w", err)
	}
	g.CreatedAt, g.LastUsedAt = FromNanos(created), FromNanos(used)
	g.RevokedAt, g.TokensExpireAt = OptionalTime(revoked), OptionalTime(bound)
	return g, nil
}

// UpsertGrant records consent in tx, as rescind.Store's SaveGrant says: it widens the active
// grant of g's client and user (its audience and its consented audience by g.Audience), or
// stores g with g.Audience as both if there is none. Two concurrent calls for one client and
// user must be serialized by the caller's transaction.
func UpsertGrant(ctx context.Context, tx Querier, g rescind.Grant, lock string) (rescind.Grant, error) {
	// The grant's row is held (lock) from this read to the commit: an issuance that adds to its
	// audience meanwhile (RaiseGrantBound) commits first and is read, never overwritten.
	cur, err := scanGrant(tx.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants
		WHERE client_id = $1 AND user_id = $2 AND revoked_at = 0 ORDER BY created_at LIMIT 1`+lock, g.ClientID, g.UserID))
	if isNoRows(err) {
		g.ConsentedAudience = slices.Clone(g.Audience)
		_, err := tx.Exec(ctx, `INSERT INTO grants (id, client_id, user_id, scopes, created_at, last_used_at, session_id, audience, consented_audience)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, g.ID, g.ClientID, g.UserID, JSONList(g.Scopes), Nanos(g.CreatedAt), Nanos(g.LastUsedAt),
			g.SessionID, JSONList(g.Audience), JSONList(g.ConsentedAudience))
		return g, err
	}
	if err != nil {
		return g, err
	}
	cur.Scopes = union(cur.Scopes, g.Scopes)
	cur.Audience = union(cur.Audience, g.Audience)
	cur.ConsentedAudience = union(cur.ConsentedAudience, g.Audience)
	cur.SessionID = g.SessionID
	_, err = tx.Exec(ctx, `UPDATE grants SET scopes = $1, audience = $2, consented_audience = $3, session_id = $4 WHERE id = $5`,
		JSONList(cur.Scopes), JSONList(cur.Audience), JSONList(cur.ConsentedAudience), cur.SessionID, cur.ID)
	return cur, err
}

// union returns a followed by the values of b it lacks.
func union(a, b []string) []string {
	for _, v := range b {
		if !slices.Contains(a, v) {
			a = append(a, v)
		}
	}
	return a
}

// GetGrant implements rescind.Store.
func (s *Store) GetGrant(ctx context.Context, id string) (rescind.Grant, error) {
	g, err := scanGrant(s.db.QueryRow(ctx, `SELECT `+grantColumns+` FROM grants WHERE id = $1`, id))
	if isNoRows(err) {
		return g, s.errorf("grant %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return g, s.errorf("reading grant: %w", err)
	}
	return g, nil
}

// grantWhere renders the conditions conds (whose arguments are args, numbered from $1) and
// f, on the grants table named by prefix ("" or "g."), as a WHERE clause.
func grantWhere(f rescind.GrantFilter, prefix string, args []any, conds ...string) (string, []any) {
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
	where, args := grantWhere(f, "", nil, "revoked_at = 0")
	out, err := All(ctx, s.db, scanGrant, `SELECT `+grantColumns+` FROM grants WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, s.errorf("listing grants: %w", err)
	}
	return out, nil
}

// TouchGrant implements rescind.Store.
func (s *Store) TouchGrant(ctx context.Context, id string, at time.Time) error {
	if _, err := s.db.Exec(ctx, `UPDATE grants SET last_used_at = $1 WHERE id = $2`, Nanos(at), id); err != nil {
		return s.errorf("touching grant: %w", err)
	}
	return nil
}

// grantRecord is the RevokeGrant record of grant id of clientID revoked at revokedAt: a copy of
// the template rev, for the grant's audience (aud, a stored list), that lives until the latest
// expiry of the tokens issued under the grant (bound, Unix ns), and at least until revokedAt.
func grantRecord(rev rescind.Revocation, id, clientID, aud string, revokedAt time.Time, bound int64) (rescind.Revocation, error) {
	r := rev
	r.Kind, r.Key, r.ClientID, r.RevokedAt = rescind.RevokeGrant, id, clientID, revokedAt
	var err error
	if r.Audience, err = ParseList(aud); err != nil {
		return r, fmt.Errorf("grant %q audience: %w", id, err)
	}
	r.ExpiresAt = revokedAt
	if bound > Nanos(revokedAt) {
		r.ExpiresAt = FromNanos(bound)
	}
	return r, nil
}

// GrantRevocations revokes, in tx, the active grants matching f, as rescind.Store's
// RevokeGrants says: each is marked revoked and its refresh tokens and codes are deleted. It
// returns the records the caller must write in the same transaction (each grant's, those of
// revoked grants whose record is missing or ends before their tokens do, and one RevokeStatus
// record per status list entry of them) and how many unused refresh tokens were deleted.
//
// lock is appended to the read of the active grants: the caller's transaction must hold them
// until it commits, so that a concurrent code redemption or refresh, which raises a grant's
// TokensExpireAt while holding its row, either commits first (and the bound read here includes
// its token) or finds the grant revoked.
func GrantRevocations(ctx context.Context, tx Querier, f rescind.GrantFilter, rev rescind.Revocation, lock string) ([]rescind.Revocation, int64, error) {
	where, args := grantWhere(f, "", nil, "revoked_at = 0")
	var sigs []rescind.Signal
	revs, err := All(ctx, tx, func(row Row) (rescind.Revocation, error) {
		var id, clientID, aud, userID string
		var bound int64
		if err := row.Scan(&id, &clientID, &bound, &aud, &userID); err != nil {
			return rescind.Revocation{}, err
		}
		sigs = append(sigs, rescind.Signal{Kind: rescind.SignalGrantRevoked, At: rev.RevokedAt, UserID: userID, ClientID: clientID,
			GrantID: id, Actor: rev.Actor, Reason: rev.Reason})
		return grantRecord(rev, id, clientID, aud, rev.RevokedAt, bound)
	}, `SELECT id, client_id, tokens_expire_at, audience, user_id FROM grants WHERE `+where+lock, args...)
	if err != nil {
		return nil, 0, fmt.Errorf("reading grants: %w", err)
	}
	// Shared Signals: CAEP session-revoked for each (user, client) whose grant this revokes.
	if err := EnqueueSignals(ctx, tx, sigs...); err != nil {
		return nil, 0, err
	}
	// Grants revoked before whose tokens may still be alive: revoking again extends a record
	// that is missing or ends before the tokens do (one written by an older version, say).
	again, err := extendRevokedGrants(ctx, tx, f, rev)
	if err != nil {
		return nil, 0, err
	}
	var tokens int64
	for _, r := range revs {
		if _, err := tx.Exec(ctx, `UPDATE grants SET revoked_at = $1 WHERE id = $2`, Nanos(r.RevokedAt), r.Key); err != nil {
			return nil, 0, fmt.Errorf("revoking grant: %w", err)
		}
		n, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE grant_id = $1 AND used_at = 0`, r.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("revoking grant: %w", err)
		}
		tokens += n
		if _, err := tx.Exec(ctx, `DELETE FROM refresh_tokens WHERE grant_id = $1`, r.Key); err != nil {
			return nil, 0, fmt.Errorf("revoking grant: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM auth_codes WHERE grant_id = $1`, r.Key); err != nil {
			return nil, 0, fmt.Errorf("revoking grant: %w", err)
		}
	}
	revs = append(revs, again...)
	// Flip the status list entries of the grants' access tokens (each kept until its token's
	// exp plus the janitor's grace).
	var statuses []rescind.Revocation
	for _, r := range revs {
		entries, err := All(ctx, tx, func(row Row) (rescind.Revocation, error) {
			st := rescind.Revocation{Kind: rescind.RevokeStatus, ClientID: r.ClientID, RevokedAt: r.RevokedAt, Subject: r.Subject,
				Audience: r.Audience} // a grant's status records belong to the grant's tokens
			var exp int64
			err := row.Scan(&st.StatusList, &st.StatusIdx, &exp)
			st.ExpiresAt = FromNanos(exp)
			st.Key = fmt.Sprintf("%s:%d", st.StatusList, st.StatusIdx)
			return st, err
		}, `SELECT status_list, status_idx, expires_at FROM grant_token_status WHERE grant_id = $1`, r.Key)
		if err != nil {
			return nil, 0, fmt.Errorf("reading the grant's status list entries: %w", err)
		}
		statuses = append(statuses, entries...)
	}
	return append(revs, statuses...), tokens, nil
}

// extendRevokedGrants returns the records to write again for the revoked grants matching f whose
// tokens may be alive at rev.RevokedAt and whose stored record is missing or ends earlier.
func extendRevokedGrants(ctx context.Context, tx Querier, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, error) {
	where, args := grantWhere(f, "g.", []any{Nanos(rev.RevokedAt)}, "g.revoked_at <> 0", "g.tokens_expire_at >= $1")
	type grant struct {
		id, clientID, aud          string
		revokedAt, bound, recorded int64
	}
	grants, err := All(ctx, tx, func(row Row) (g grant, err error) {
		return g, row.Scan(&g.id, &g.clientID, &g.revokedAt, &g.bound, &g.recorded, &g.aud)
	}, `SELECT g.id, g.client_id, g.revoked_at, g.tokens_expire_at, coalesce(r.expires_at, 0), g.audience
		FROM grants g LEFT JOIN revocations r ON r.kind = 'grant' AND r.key = g.id WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reading revoked grants: %w", err)
	}
	var out []rescind.Revocation
	for _, g := range grants {
		if g.recorded < g.bound {
			r, err := grantRecord(rev, g.id, g.clientID, g.aud, FromNanos(g.revokedAt), g.bound)
			if err != nil {
				return nil, err
			}
			r.Actor = "" // not a new revocation
			out = append(out, r)
		}
	}
	return out, nil
}
