package rescind

import (
	"errors"
	"time"
)

// A session is a person's sign-in on one browser. The browser's cookie holds a random 256-bit
// secret; the store keeps only its SHA-256 (Session.Hash), beside the session's public ID. A
// session ends when the person signs out (one session, every other session, or every session),
// when an operator signs the person out, changes their password or deletes them, when it has not
// been used for the idle timeout, or at its absolute expiry, fixed at sign-in.
//
// Ending a session is a revocation: the store deletes the session and writes a RevokeSession
// record in the same transaction, which every instance applies to its in-memory state (at once
// by notification with PostgreSQL, otherwise within the poll interval), so a cached session is
// refused everywhere once the end is acknowledged. The record lives until the session's own
// absolute expiry (ExpiresAt, fixed at sign-in and never extended), after which the session is
// dead by its expiry whatever any cache holds: the invariant of revocation records, applied to
// sessions.

// RevokeSession is the kind of the Revocation written when a session ends before its expiry: Key
// is the session's ID, Subject its user's id, ExpiresAt the session's absolute expiry. It is
// never sent to event subscribers (MayReceive).
const RevokeSession RevocationKind = "session"

// ErrUserChanged is returned by CreateSession when the user's Epoch moved since the sign-in read
// it: every session of the user was ended (or the password changed) while the sign-in was
// being checked, so it must not outlive that.
var ErrUserChanged = errors.New("the user's sessions were ended while signing in")

// Session is a person's sign-in on one browser.
type Session struct {
	// ID is the session's public identifier: random, shown on the account pages and by the
	// admin API, recorded on the grants and codes made in the session (OpenID Connect's sid).
	// It does not let anyone use the session: the cookie's secret does.
	ID string
	// Hash is the hex SHA-256 of the secret the browser's cookie holds; the secret itself is
	// never stored.
	Hash string
	// UserID is the person signed in.
	UserID string
	// UserEpoch is the user's Epoch as the sign-in read it before checking the password:
	// CreateSession refuses the session if the epoch moved since (ErrUserChanged).
	UserEpoch int64
	// CreatedAt is when the person signed in; LastSeenAt when the session was last used (moved
	// at most once a minute).
	CreatedAt, LastSeenAt time.Time
	// IdleExpiresAt is when the session ends if it is not used again: each use moves it to the
	// idle timeout past that use, never past ExpiresAt.
	IdleExpiresAt time.Time
	// ExpiresAt is the session's absolute expiry, fixed at sign-in: nothing extends it.
	ExpiresAt time.Time
	// UserAgent and Address are the browser's User-Agent and address (after trusted-proxy
	// resolution) at sign-in, for the person to recognise their sessions.
	UserAgent, Address string
	// AuthTime is when the person last authenticated in the session: at sign-in, or later when
	// asked to again (ReauthenticateSession). Zero means CreatedAt (see Authenticated).
	AuthTime time.Time
}

// Authenticated returns when the person last authenticated in the session (OpenID Connect's
// auth_time): AuthTime, or CreatedAt if it is not set.
func (s Session) Authenticated() time.Time {
	if s.AuthTime.IsZero() {
		return s.CreatedAt
	}
	return s.AuthTime
}

// Active reports whether the session has not expired at now, neither idle nor absolutely.
func (s Session) Active(now time.Time) bool {
	return now.Before(s.ExpiresAt) && now.Before(s.IdleExpiresAt)
}

// SessionFilter selects sessions of one user to end: UserID is required; ID, if set, selects
// that session alone; ExceptID, if set, spares that one. A filter without ID (every session,
// or every other one) moves the user's Epoch: a sign-in under way does not survive it.
type SessionFilter struct {
	UserID, ID, ExceptID string
	// SignedInBy, if not zero, selects only the sessions created at or before it: what someone
	// holding only a copy of a session's cookie may end (that session and older ones, never a
	// sign-in made after it). Such a filter never moves the user's Epoch (a sign-in under way
	// makes a later session, which it does not cover), and writes its audit entry only if it
	// ended a session: pressing it again and again changes nothing and records nothing.
	SignedInBy time.Time
	// ForgetDevices, with a filter that moves the Epoch, also moves the user's DeviceEpoch: the
	// browsers the person signed in on are no longer remembered (User.DeviceEpoch).
	ForgetDevices bool
}

// SessionClient is a client that was given an authorization code in a session: with OpenID
// Connect, a relying party the person signed in to with that session (its sid).
type SessionClient struct {
	// Client is the client as stored when the session ended.
	Client Client
	// GrantID is the grant of the latest code issued to it in the session.
	GrantID string
}

// EndedSession is a session that a Store method ended, with what its end concerns: the input of
// SessionEnd.Notices.
type EndedSession struct {
	// Session is the session as stored when it ended.
	Session Session
	// Clients are the clients given codes in it, ordered by client ID.
	Clients []SessionClient
}

// SessionNotices makes the outbox messages that the end of sessions causes: a logout token for
// each relying party (OpenID Connect Back-Channel Logout), a security event for each receiver
// (Shared Signals). It is called inside the transaction that ends them, with the sessions
// ended (perhaps none) and the template of their records (RevokedAt, Actor, Reason), and must
// not use the store: the messages it returns are enqueued in that transaction, so they are
// committed exactly when the end is. An error aborts the end.
type SessionNotices func(ended []EndedSession, rev Revocation) ([]OutboxMessage, error)

// SessionEnd says what ending sessions does besides deleting them and writing their records,
// on every path that ends them (EndSessions, SetPassword, DeleteUser, ExpireSessions). The zero
// value does nothing more.
type SessionEnd struct {
	// Notices, if set, make the messages the end causes; each feature that sends some adds its
	// own (they are called in order, and their messages enqueued together).
	Notices []SessionNotices
	// RevokeGrants also revokes, as RevokeGrants does and in the same transaction, the grants of
	// the clients given codes in each session ended (--logout-revokes-grants).
	RevokeGrants bool
}

// Messages calls every Notices with ended and rev and returns their messages together.
func (e SessionEnd) Messages(ended []EndedSession, rev Revocation) ([]OutboxMessage, error) {
	var out []OutboxMessage
	for _, n := range e.Notices {
		msgs, err := n(ended, rev)
		if err != nil {
			return nil, err
		}
		out = append(out, msgs...)
	}
	return out, nil
}
