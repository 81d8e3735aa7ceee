package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/rescind/rescind"
)

const sessionColumns = `id, hash, user_id, created_at, last_seen_at, idle_expires_at, expires_at, user_agent, address, auth_time`

func scanSession(row Row) (rescind.Session, error) {
	var s rescind.Session
	var created, seen, idle, exp, auth int64
	if err := row.Scan(&s.ID, &s.Hash, &s.UserID, &created, &seen, &idle, &exp, &s.UserAgent, &s.Address, &auth); err != nil {
		return s, err
	}
	s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt = FromNanos(created), FromNanos(seen), FromNanos(idle), FromNanos(exp)
	s.AuthTime = OptionalTime(auth)
	return s, nil
}

// SessionCreation stores the session sess in tx, as rescind.Store's CreateSession says. The
// user's row is read with lock appended: the caller's transaction must hold it until it
// commits, so that an end of every session of the user (which moves the epoch while holding
// that row) either commits first, and the epoch read here has moved, or comes after and finds
// this session.
func (s *Store) SessionCreation(ctx context.Context, tx Querier, sess rescind.Session, lock string) error {
	var epoch int64
	err := tx.QueryRow(ctx, `SELECT epoch FROM users WHERE id = $1`+lock, sess.UserID).Scan(&epoch)
	switch {
	case isNoRows(err):
		return fmt.Errorf("user %q: %w", sess.UserID, rescind.ErrNotFound)
	case err != nil:
		return fmt.Errorf("reading the user: %w", err)
	case epoch != sess.UserEpoch:
		return rescind.ErrUserChanged
	}
	_, err = tx.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		sess.ID, sess.Hash, sess.UserID, Nanos(sess.CreatedAt), Nanos(sess.LastSeenAt), Nanos(sess.IdleExpiresAt),
		Nanos(sess.ExpiresAt), sess.UserAgent, sess.Address, OptionalNanos(sess.AuthTime))
	if s.d.IsUniqueViolation(err) {
		return fmt.Errorf("session: %w", rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("storing the session: %w", err)
	}
	return nil
}

// GetSession implements rescind.Store.
func (s *Store) GetSession(ctx context.Context, hash string) (rescind.Session, error) {
	sess, err := scanSession(s.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE hash = $1`, hash))
	if isNoRows(err) {
		return sess, s.errorf("session: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return sess, s.errorf("reading session: %w", err)
	}
	return sess, nil
}

// GetSessionByID implements rescind.Store.
func (s *Store) GetSessionByID(ctx context.Context, id string) (rescind.Session, error) {
	sess, err := scanSession(s.db.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1`, id))
	if isNoRows(err) {
		return sess, s.errorf("session: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return sess, s.errorf("reading session: %w", err)
	}
	return sess, nil
}

// ReauthenticateSession implements rescind.Store: one statement, which finds nothing if the
// session ended (or its secret changed) meanwhile.
func (s *Store) ReauthenticateSession(ctx context.Context, id, oldHash, newHash string, authTime, idleExpiresAt time.Time) error {
	n, err := s.db.Exec(ctx, `UPDATE sessions SET hash = $3, auth_time = $4,
		last_seen_at = CASE WHEN last_seen_at < $4 THEN $4 ELSE last_seen_at END,
		idle_expires_at = CASE WHEN idle_expires_at < $5 THEN $5 ELSE idle_expires_at END
		WHERE id = $1 AND hash = $2`, id, oldHash, newHash, Nanos(authTime), Nanos(idleExpiresAt))
	switch {
	case s.d.IsUniqueViolation(err):
		return s.errorf("session: %w", rescind.ErrAlreadyExists)
	case err != nil:
		return s.errorf("re-authenticating session: %w", err)
	case n == 0:
		return s.errorf("session: %w", rescind.ErrNotFound)
	}
	return nil
}

// ListSessions implements rescind.Store.
func (s *Store) ListSessions(ctx context.Context, userID string, now time.Time) ([]rescind.Session, error) {
	out, err := All(ctx, s.db, scanSession, `SELECT `+sessionColumns+` FROM sessions
		WHERE user_id = $1 AND expires_at > $2 AND idle_expires_at > $2 ORDER BY created_at, id`, userID, Nanos(now))
	if err != nil {
		return nil, s.errorf("listing sessions: %w", err)
	}
	return out, nil
}

// TouchSession implements rescind.Store.
func (s *Store) TouchSession(ctx context.Context, id string, lastSeen, idleExpiresAt time.Time) error {
	n, err := s.db.Exec(ctx, `UPDATE sessions SET
		last_seen_at = CASE WHEN last_seen_at < $2 THEN $2 ELSE last_seen_at END,
		idle_expires_at = CASE WHEN idle_expires_at < $3 THEN $3 ELSE idle_expires_at END
		WHERE id = $1`, id, Nanos(lastSeen), Nanos(idleExpiresAt))
	if err != nil {
		return s.errorf("touching session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("session %q: %w", id, rescind.ErrNotFound)
	}
	return nil
}

// sessionRecord is the RevokeSession record of a session of userID ending at expiresAt: a copy
// of the template rev that lives until the session could no longer be used anyway, whoever
// ends it (SessionEnding gives the earlier of its absolute and its stored idle expiry).
func sessionRecord(rev rescind.Revocation, id, userID string, expiresAt time.Time) rescind.Revocation {
	r := rev
	r.Kind, r.Key, r.ClientID, r.Subject, r.ExpiresAt = rescind.RevokeSession, id, "", userID, expiresAt
	r.StatusList, r.StatusIdx, r.Audience = "", -1, nil
	return r
}

// SessionEnding ends, in tx, the sessions matching f, as rescind.Store's EndSessions says: a
// filter without ID first moves the user's epoch (taking the user's row, as SessionCreation
// does, so a sign-in under way either committed and is ended here, or fails) and, if rev.Actor
// is set, writes one audit entry "end_sessions" for the user (so an end that found no session
// is on record too); then the sessions are read with lock appended and ended as sessionEnds
// says, with end. A filter with SignedInBy moves no epoch (the sessions it may end were all
// created before it runs) and is audited only if it ended one: a loop of it by someone holding
// a copied cookie neither blocks sign-ins nor fills the audit table. It returns the records
// the caller must write in the same transaction: the sessions' RevokeSession records, then
// those of the grants end revoked.
func SessionEnding(ctx context.Context, tx Querier, f rescind.SessionFilter, rev rescind.Revocation, end rescind.SessionEnd, lock string) ([]rescind.Revocation, error) {
	if f.UserID == "" {
		return nil, errors.New("ending sessions needs a user")
	}
	bounded := !f.SignedInBy.IsZero()
	if f.ID == "" && !bounded {
		forget := 0
		if f.ForgetDevices {
			forget = 1
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET epoch = epoch + 1, device_epoch = device_epoch + $2 WHERE id = $1`, f.UserID, forget); err != nil {
			return nil, fmt.Errorf("moving the user's epoch: %w", err)
		}
		if err := endAudit(ctx, tx, f, rev); err != nil {
			return nil, err
		}
	}
	where, args := `user_id = $1`, []any{f.UserID}
	if f.ID != "" {
		args = append(args, f.ID)
		where += fmt.Sprintf(" AND id = $%d", len(args))
	}
	if f.ExceptID != "" {
		args = append(args, f.ExceptID)
		where += fmt.Sprintf(" AND id <> $%d", len(args))
	}
	if bounded {
		args = append(args, Nanos(f.SignedInBy))
		where += fmt.Sprintf(" AND created_at <= $%d", len(args))
	}
	sessions, err := All(ctx, tx, scanSession, `SELECT `+sessionColumns+` FROM sessions WHERE `+where+` ORDER BY created_at, id`+lock, args...)
	if err != nil {
		return nil, fmt.Errorf("reading sessions: %w", err)
	}
	if f.ID == "" && bounded && len(sessions) > 0 {
		if err := endAudit(ctx, tx, f, rev); err != nil {
			return nil, err
		}
	}
	// A record lives until the session's absolute expiry or its idle expiry as stored now,
	// whichever is earlier: no copy of the session anywhere is active past the stored idle
	// expiry (an instance extends its copy only after TouchSession moved the stored one, and a
	// touch after this transaction finds no session), so the record covers every use of it.
	revs := make([]rescind.Revocation, 0, len(sessions))
	for _, sess := range sessions {
		exp := sess.ExpiresAt
		if sess.IdleExpiresAt.Before(exp) {
			exp = sess.IdleExpiresAt
		}
		revs = append(revs, sessionRecord(rev, sess.ID, sess.UserID, exp))
	}
	// Shared Signals: CAEP session-revoked for each session ended, in this transaction.
	sigs := make([]rescind.Signal, 0, len(sessions))
	for _, sess := range sessions {
		sigs = append(sigs, rescind.Signal{Kind: rescind.SignalSessionEnded, At: rev.RevokedAt, UserID: f.UserID, SessionID: sess.ID,
			Actor: rev.Actor, Reason: rev.Reason})
	}
	if err := EnqueueSignals(ctx, tx, sigs...); err != nil {
		return nil, err
	}
	grants, err := sessionEnds(ctx, tx, sessions, rev, end, lock)
	if err != nil {
		return nil, err
	}
	return append(revs, grants...), nil
}

// SessionExpiry ends, in tx, up to limit sessions that expired before now, as rescind.Store's
// ExpireSessions says: they are read with lock appended and ended as sessionEnds says, with
// end, and no RevokeSession record. It returns how many it ended and the records of the grants
// end revoked, for the caller to write in the same transaction.
func SessionExpiry(ctx context.Context, tx Querier, now time.Time, limit int, end rescind.SessionEnd, lock string) (int, []rescind.Revocation, error) {
	if limit <= 0 {
		return 0, nil, nil
	}
	sessions, err := All(ctx, tx, scanSession, `SELECT `+sessionColumns+` FROM sessions WHERE expires_at < $1 OR idle_expires_at < $1
		ORDER BY id LIMIT $2`+lock, Nanos(now), limit)
	if err != nil {
		return 0, nil, fmt.Errorf("reading expired sessions: %w", err)
	}
	// Shared Signals: CAEP session-revoked for each session that expired, in this transaction.
	sigs := make([]rescind.Signal, 0, len(sessions))
	for _, sess := range sessions {
		sigs = append(sigs, rescind.Signal{Kind: rescind.SignalSessionEnded, At: now, UserID: sess.UserID, SessionID: sess.ID,
			Actor: "system", Reason: "session expired"})
	}
	if err := EnqueueSignals(ctx, tx, sigs...); err != nil {
		return 0, nil, err
	}
	revs, err := sessionEnds(ctx, tx, sessions, rescind.Revocation{RevokedAt: now, Actor: "janitor", Reason: "session expired"}, end, lock)
	if err != nil {
		return 0, nil, err
	}
	return len(sessions), revs, nil
}

// sessionClient is a rescind.SessionClient read with the client's columns, then the grant id.
func scanSessionClient(row Row) (rescind.SessionClient, error) {
	var sc rescind.SessionClient
	c, err := scanClient(withExtra{row, []any{&sc.GrantID}})
	sc.Client = c
	return sc, err
}

// withExtra is a row whose Scan also fills extra, from the columns after the others.
type withExtra struct {
	Row
	extra []any
}

func (r withExtra) Scan(dest ...any) error { return r.Row.Scan(append(dest, r.extra...)...) }

// sessionEnds ends, in tx, the sessions (read by the caller with its lock, whose rows it holds):
// it reads the clients given codes in each, revokes (with end.RevokeGrants) their grants as
// GrantRevocations does, deletes the sessions' unused codes, their clients' rows and the
// sessions themselves, and enqueues the messages end's Notices make of them (rev is the
// template of the records and what the Notices are told). The grants' rows are taken before
// any code's, the order of a code's redemption. It returns the grants' records.
func sessionEnds(ctx context.Context, tx Querier, sessions []rescind.Session, rev rescind.Revocation, end rescind.SessionEnd, lock string) ([]rescind.Revocation, error) {
	ended := make([]rescind.EndedSession, 0, len(sessions))
	var grantIDs []string
	for _, sess := range sessions {
		clients, err := All(ctx, tx, scanSessionClient, `SELECT `+prefixed("c", clientColumns)+`, sc.grant_id
			FROM session_clients sc JOIN clients c ON c.id = sc.client_id WHERE sc.session_id = $1 ORDER BY sc.client_id`, sess.ID)
		if err != nil {
			return nil, fmt.Errorf("reading the session's clients: %w", err)
		}
		for _, c := range clients {
			if !slices.Contains(grantIDs, c.GrantID) {
				grantIDs = append(grantIDs, c.GrantID)
			}
		}
		ended = append(ended, rescind.EndedSession{Session: sess, Clients: clients})
	}
	var revs []rescind.Revocation
	if end.RevokeGrants {
		slices.Sort(grantIDs)
		for _, id := range grantIDs {
			r, _, err := GrantRevocations(ctx, tx, rescind.GrantFilter{GrantID: id}, rev, lock)
			if err != nil {
				return nil, err
			}
			revs = append(revs, r...)
		}
	}
	for _, sess := range sessions {
		for _, q := range []string{
			`DELETE FROM auth_codes WHERE session_id = $1 AND used_at = 0`,
			`DELETE FROM session_clients WHERE session_id = $1`,
			`DELETE FROM sessions WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, sess.ID); err != nil {
				return nil, fmt.Errorf("ending session: %w", err)
			}
		}
	}
	msgs, err := end.Messages(ended, rev)
	if err != nil {
		return nil, fmt.Errorf("the messages of the sessions' end: %w", err)
	}
	if _, err := EnqueueOutbox(ctx, tx, msgs...); err != nil {
		return nil, err
	}
	return revs, nil
}

// endAudit writes, in tx, the audit entry "end_sessions" of an end of every (or every other)
// session of f's user, if rev.Actor is set.
func endAudit(ctx context.Context, tx Querier, f rescind.SessionFilter, rev rescind.Revocation) error {
	if rev.Actor == "" {
		return nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)`,
		Nanos(rev.RevokedAt), rev.Actor, "end_sessions", f.UserID, rev.Reason); err != nil {
		return fmt.Errorf("writing audit entry: %w", err)
	}
	return nil
}

// PasswordChange replaces, in tx, the password hash of the user id and, with revokeGrants,
// revokes their grants (GrantRevocations), then ends every session of theirs (SessionEnding,
// with end, which moves the epoch), as rescind.Store's SetPassword says; lock is the clause of
// the reads that must hold their rows. It writes the audit entry of the change if rev.Actor is
// set. It returns the records to write and how many refresh tokens were deleted. A missing
// user is rescind.ErrNotFound.
func PasswordChange(ctx context.Context, tx Querier, id, hash string, revokeGrants bool, rev rescind.Revocation, end rescind.SessionEnd, lock string) ([]rescind.Revocation, int64, error) {
	n, err := tx.Exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, id)
	if err != nil {
		return nil, 0, fmt.Errorf("setting the password: %w", err)
	}
	if n == 0 {
		return nil, 0, fmt.Errorf("user %q: %w", id, rescind.ErrNotFound)
	}
	if rev.Actor != "" {
		if _, err := tx.Exec(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)`,
			Nanos(rev.RevokedAt), rev.Actor, "set_password", id, rev.Reason); err != nil {
			return nil, 0, fmt.Errorf("writing audit entry: %w", err)
		}
	}
	// Shared Signals: CAEP credential-change, in this transaction.
	if err := EnqueueSignals(ctx, tx, rescind.Signal{Kind: rescind.SignalPasswordSet, At: rev.RevokedAt, UserID: id,
		Actor: rev.Actor, Reason: rev.Reason}); err != nil {
		return nil, 0, err
	}
	// The grants' rows before the sessions' codes: the order of a code's redemption.
	var grants []rescind.Revocation
	var tokens int64
	if revokeGrants {
		if grants, tokens, err = GrantRevocations(ctx, tx, rescind.GrantFilter{UserID: id}, rev, lock); err != nil {
			return nil, 0, err
		}
		end.RevokeGrants = false // every one is revoked already
	}
	revs, err := SessionEnding(ctx, tx, rescind.SessionFilter{UserID: id}, rev, end, lock)
	if err != nil {
		return nil, 0, err
	}
	return append(revs, grants...), tokens, nil
}
