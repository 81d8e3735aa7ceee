package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rescind/rescind"
)

const sessionColumns = `id, hash, user_id, created_at, last_seen_at, idle_expires_at, expires_at, user_agent, address`

func scanSession(row Row) (rescind.Session, error) {
	var s rescind.Session
	var created, seen, idle, exp int64
	if err := row.Scan(&s.ID, &s.Hash, &s.UserID, &created, &seen, &idle, &exp, &s.UserAgent, &s.Address); err != nil {
		return s, err
	}
	s.CreatedAt, s.LastSeenAt, s.IdleExpiresAt, s.ExpiresAt = FromNanos(created), FromNanos(seen), FromNanos(idle), FromNanos(exp)
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
	_, err = tx.Exec(ctx, `INSERT INTO sessions (`+sessionColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		sess.ID, sess.Hash, sess.UserID, Nanos(sess.CreatedAt), Nanos(sess.LastSeenAt), Nanos(sess.IdleExpiresAt),
		Nanos(sess.ExpiresAt), sess.UserAgent, sess.Address)
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
// is on record too); then each session is deleted. A filter with SignedInBy moves no epoch
// (the sessions it may end were all created before it runs) and is audited only if it ended
// one: a loop of it by someone holding a copied cookie neither blocks sign-ins nor fills the
// audit table. lock is appended to the read of the sessions. It returns the records the caller
// must write in the same transaction.
func SessionEnding(ctx context.Context, tx Querier, f rescind.SessionFilter, rev rescind.Revocation, lock string) ([]rescind.Revocation, error) {
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
	// A record lives until the session's absolute expiry or its idle expiry as stored now,
	// whichever is earlier: no copy of the session anywhere is active past the stored idle
	// expiry (an instance extends its copy only after TouchSession moved the stored one, and a
	// touch after this transaction finds no session), so the record covers every use of it.
	revs, err := All(ctx, tx, func(row Row) (rescind.Revocation, error) {
		var id string
		var exp, idle int64
		err := row.Scan(&id, &exp, &idle)
		return sessionRecord(rev, id, f.UserID, FromNanos(min(exp, idle))), err
	}, `SELECT id, expires_at, idle_expires_at FROM sessions WHERE `+where+` ORDER BY created_at, id`+lock, args...)
	if err != nil {
		return nil, fmt.Errorf("reading sessions: %w", err)
	}
	if f.ID == "" && bounded && len(revs) > 0 {
		if err := endAudit(ctx, tx, f, rev); err != nil {
			return nil, err
		}
	}
	sigs := make([]rescind.Signal, 0, len(revs))
	for _, r := range revs {
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id = $1`, r.Key); err != nil {
			return nil, fmt.Errorf("ending session: %w", err)
		}
		sigs = append(sigs, rescind.Signal{Kind: rescind.SignalSessionEnded, At: rev.RevokedAt, UserID: f.UserID, SessionID: r.Key,
			Actor: rev.Actor, Reason: rev.Reason})
	}
	// Shared Signals: CAEP session-revoked for each session ended, in this transaction.
	if err := EnqueueSignals(ctx, tx, sigs...); err != nil {
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

// PasswordChange replaces, in tx, the password hash of the user id and ends every session of
// theirs (SessionEnding, which moves the epoch) and, with revokeGrants, revokes their grants
// (GrantRevocations), as rescind.Store's SetPassword says; lock is the clause of the reads that
// must hold their rows. It writes the audit entry of the change if rev.Actor is set. It returns
// the records to write and how many refresh tokens were deleted. A missing user is
// rescind.ErrNotFound.
func PasswordChange(ctx context.Context, tx Querier, id, hash string, revokeGrants bool, rev rescind.Revocation, lock string) ([]rescind.Revocation, int64, error) {
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
	revs, err := SessionEnding(ctx, tx, rescind.SessionFilter{UserID: id}, rev, lock)
	if err != nil {
		return nil, 0, err
	}
	if !revokeGrants {
		return revs, 0, nil
	}
	grants, tokens, err := GrantRevocations(ctx, tx, rescind.GrantFilter{UserID: id}, rev, lock)
	if err != nil {
		return nil, 0, err
	}
	return append(revs, grants...), tokens, nil
}
