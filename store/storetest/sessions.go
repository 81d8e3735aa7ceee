package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

func sessionTests() []struct {
	name string
	run  func(t *testing.T, open func() rescind.Store)
} {
	return []struct {
		name string
		run  func(t *testing.T, open func() rescind.Store)
	}{
		{"Sessions", func(t *testing.T, open func() rescind.Store) { testSessions(t, open()) }},
		{"EndSessions", func(t *testing.T, open func() rescind.Store) { testEndSessions(t, open()) }},
		{"EndOlderSessions", func(t *testing.T, open func() rescind.Store) { testEndOlderSessions(t, open()) }},
		{"ForgetDevices", func(t *testing.T, open func() rescind.Store) { testForgetDevices(t, open()) }},
		{"SetPassword", func(t *testing.T, open func() rescind.Store) { testSetPassword(t, open()) }},
		{"DeleteUserEndsSessions", func(t *testing.T, open func() rescind.Store) { testDeleteUserEndsSessions(t, open()) }},
		{"GrantsAndCodesRecordTheirSession", func(t *testing.T, open func() rescind.Store) { testGrantSession(t, open()) }},
		{"SignInRacingEndOfSessionsAcrossInstances", testSignInRacingEnd},
	}
}

// session returns a session of user created at base: idle for an hour, absolutely for a day.
func session(id, user string) rescind.Session {
	return rescind.Session{ID: id, Hash: "hash-" + id, UserID: user, CreatedAt: base, LastSeenAt: base,
		IdleExpiresAt: base.Add(time.Hour), ExpiresAt: base.Add(24 * time.Hour), UserAgent: "Agent/1.0 (" + id + ")", Address: "192.0.2.7"}
}

// user stores a user and returns it as stored.
func user(t *testing.T, s rescind.Store, id string) rescind.User {
	t.Helper()
	u := rescind.User{ID: id, Username: "name-" + id, PasswordHash: "h-" + id, CreatedAt: base}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	return u
}

// sessionIDs lists the ids of the user's sessions active at now.
func sessionIDs(t *testing.T, s rescind.Store, userID string, now time.Time) []string {
	t.Helper()
	list, err := s.ListSessions(context.Background(), userID, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, l := range list {
		ids = append(ids, l.ID)
	}
	return ids
}

func testSessions(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	user(t, s, "u2")
	a := session("s1", "u1")
	if err := s.CreateSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		s    rescind.Session
		want error
	}{
		"same id":      {func() rescind.Session { x := session("s1", "u1"); x.Hash = "other"; return x }(), rescind.ErrAlreadyExists},
		"same hash":    {func() rescind.Session { x := session("s9", "u1"); x.Hash = a.Hash; return x }(), rescind.ErrAlreadyExists},
		"unknown user": {session("s9", "nobody"), rescind.ErrNotFound},
		"stale epoch":  {func() rescind.Session { x := session("s9", "u1"); x.UserEpoch = 1; return x }(), rescind.ErrUserChanged},
	} {
		if err := s.CreateSession(ctx, c.s); !errors.Is(err, c.want) {
			t.Errorf("CreateSession, %s: %v; want %v", name, err, c.want)
		}
	}
	got, err := s.GetSession(ctx, a.Hash)
	if err != nil || got.ID != a.ID || got.UserID != "u1" || !got.CreatedAt.Equal(base) || !got.LastSeenAt.Equal(base) ||
		!got.IdleExpiresAt.Equal(a.IdleExpiresAt) || !got.ExpiresAt.Equal(a.ExpiresAt) || got.UserAgent != a.UserAgent || got.Address != a.Address {
		t.Fatalf("GetSession = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.GetSession(ctx, "hash-unknown"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetSession(unknown): %v", err)
	}
	// Listing: the user's active sessions, oldest first.
	b := session("s2", "u1")
	b.CreatedAt = base.Add(time.Minute)
	idle := session("s3", "u1")
	idle.IdleExpiresAt = base.Add(time.Minute)
	over := session("s4", "u1")
	over.ExpiresAt, over.IdleExpiresAt = base.Add(2*time.Minute), base.Add(2*time.Minute)
	for _, x := range []rescind.Session{b, idle, over, session("s5", "u2")} {
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if ids := sessionIDs(t, s, "u1", base); !slices.Equal(ids, []string{"s1", "s3", "s4", "s2"}) {
		t.Fatalf("ListSessions at base = %v", ids)
	}
	if ids := sessionIDs(t, s, "u1", base.Add(2*time.Minute)); !slices.Equal(ids, []string{"s1", "s2"}) {
		t.Fatalf("ListSessions past two expiries = %v; want the idle one and the ended one left out", ids)
	}
	// A use moves the last-seen time and the idle expiry forward, never back.
	later, idleLater := base.Add(30*time.Minute), base.Add(90*time.Minute)
	if err := s.TouchSession(ctx, "s1", later, idleLater); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, "s1", base.Add(time.Minute), base.Add(61*time.Minute)); err != nil { // a slower instance's
		t.Fatal(err)
	}
	if got, _ := s.GetSession(ctx, a.Hash); !got.LastSeenAt.Equal(later) || !got.IdleExpiresAt.Equal(idleLater) {
		t.Fatalf("after touches: last seen %v, idle expiry %v; want %v, %v", got.LastSeenAt, got.IdleExpiresAt, later, idleLater)
	}
	// A session that is gone is reported, so that no copy of it is extended.
	if err := s.TouchSession(ctx, "missing", later, idleLater); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("TouchSession(missing): %v; want ErrNotFound", err)
	}
}

func testEndSessions(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	user(t, s, "u2")
	for i := range 4 {
		x := session(fmt.Sprintf("s%d", i), "u1")
		x.ExpiresAt = base.Add(time.Duration(i+1) * time.Hour)
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, session("b0", "u2")); err != nil {
		t.Fatal(err)
	}
	at := base.Add(10 * time.Minute)
	rev := rescind.Revocation{RevokedAt: at, Actor: "user:alice", Reason: "signed out"}
	if _, err := s.EndSessions(ctx, rescind.SessionFilter{ID: "s0"}, rev, rescind.SessionEnd{}); err == nil {
		t.Fatal("EndSessions without a user: no error")
	}
	// Another user's session is not theirs to end.
	if revs, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ID: "b0"}, rev, rescind.SessionEnd{}); err != nil || len(revs) != 0 {
		t.Fatalf("ending another user's session: %v, %v", revs, err)
	}
	revs, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ID: "s0"}, rev, rescind.SessionEnd{})
	if err != nil || len(revs) != 1 {
		t.Fatalf("EndSessions(s0) = %v, %v", revs, err)
	}
	r := revs[0]
	if r.Kind != rescind.RevokeSession || r.Key != "s0" || r.Subject != "u1" || r.ClientID != "" || !r.RevokedAt.Equal(at) ||
		!r.ExpiresAt.Equal(base.Add(time.Hour)) {
		t.Fatalf("record %+v; want it to live until the session's own expiry", r)
	}
	if _, err := s.GetSession(ctx, "hash-s0"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("an ended session is still stored: %v", err)
	}
	if u, _ := s.GetUser(ctx, "u1"); u.Epoch != 0 {
		t.Fatalf("ending one session moved the epoch to %d", u.Epoch)
	}
	// Every other session: the epoch moves (a sign-in under way is stale). A record lives until
	// the session's idle expiry as stored when it ends, if that comes before its absolute
	// expiry: s1 idles out at base+1h (its absolute expiry is base+2h), s3 was used and idles
	// out at base+90m.
	if err := s.TouchSession(ctx, "s3", base.Add(30*time.Minute), base.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	revs, err = s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ExceptID: "s2"}, rev, rescind.SessionEnd{})
	if err != nil || keysOf(revs) != "session:s1 session:s3" {
		t.Fatalf("EndSessions(except s2) = %s, %v", keysOf(revs), err)
	}
	if !revs[0].ExpiresAt.Equal(base.Add(time.Hour)) || !revs[1].ExpiresAt.Equal(base.Add(90*time.Minute)) {
		t.Fatalf("records expire at %v and %v; want the sessions' stored idle expiries %v and %v",
			revs[0].ExpiresAt, revs[1].ExpiresAt, base.Add(time.Hour), base.Add(90*time.Minute))
	}
	if err := s.TouchSession(ctx, "s1", base.Add(40*time.Minute), base.Add(100*time.Minute)); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("touching an ended session: %v; want ErrNotFound", err)
	}
	if ids := sessionIDs(t, s, "u1", base); !slices.Equal(ids, []string{"s2"}) {
		t.Fatalf("left: %v", ids)
	}
	if u, _ := s.GetUser(ctx, "u1"); u.Epoch != 1 {
		t.Fatalf("epoch %d after ending the other sessions; want 1", u.Epoch)
	}
	revs, err = s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rev, rescind.SessionEnd{})
	if err != nil || keysOf(revs) != "session:s2" {
		t.Fatalf("EndSessions(all) = %s, %v", keysOf(revs), err)
	}
	if u, _ := s.GetUser(ctx, "u1"); u.Epoch != 2 {
		t.Fatalf("epoch %d after ending every session; want 2", u.Epoch)
	}
	if revs, err = s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rev, rescind.SessionEnd{}); err != nil || len(revs) != 0 {
		t.Fatalf("EndSessions with nothing left = %v, %v", revs, err)
	}
	if ids := sessionIDs(t, s, "u2", base); !slices.Equal(ids, []string{"b0"}) {
		t.Fatalf("the other user's sessions: %v", ids)
	}
	// The records are durable and readable by every instance, and each end is audited.
	stored, err := s.RevocationsSince(ctx, 0, base, 100)
	if err != nil || keysOf(stored) != "session:s0 session:s1 session:s3 session:s2" {
		t.Fatalf("stored records %s, %v", keysOf(stored), err)
	}
	// An end of every (other) session is on record even when it found none.
	audit, _ := s.ListAudit(ctx, 100)
	ended, wholesale := 0, 0
	for _, a := range audit {
		switch {
		case a.Action == "revoke_session" && a.Actor == "user:alice" && a.Reason == "signed out":
			ended++
		case a.Action == "end_sessions" && a.Target == "u1" && a.Actor == "user:alice":
			wholesale++
		}
	}
	if ended != 4 || wholesale != 3 {
		t.Fatalf("audit %+v; want four revoke_session entries and three end_sessions", audit)
	}
}

// testEndOlderSessions: a filter with SignedInBy ends only the sessions created at or before it,
// in the statement that ends them (a session created after the bound survives, whatever the
// caller listed before), never moves the epoch, and is audited only when it ended one.
func testEndOlderSessions(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	for i, id := range []string{"old", "mine", "twin", "newer"} {
		x := session(id, "u1")
		x.CreatedAt = base.Add(time.Duration(min(i, 2)) * time.Minute) // twin signed in at the same instant as mine
		if id == "newer" {
			x.CreatedAt = base.Add(3 * time.Minute)
		}
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	mine := base.Add(time.Minute)
	if err := s.CreateSession(ctx, func() rescind.Session {
		x := session("mine2", "u1")
		x.CreatedAt = base.Add(2 * time.Minute)
		return x
	}()); err != nil {
		t.Fatal(err)
	}
	rev := rescind.Revocation{RevokedAt: base.Add(5 * time.Minute), Actor: "user:alice", Reason: "signed out of other sessions"}
	// Another session, newer than the bound: ending it by ID with the bound finds nothing.
	if revs, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ID: "newer", SignedInBy: mine}, rev, rescind.SessionEnd{}); err != nil || len(revs) != 0 {
		t.Fatalf("ending a newer session with the bound: %s, %v; want nothing ended", keysOf(revs), err)
	}
	revs, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ExceptID: "mine", SignedInBy: mine}, rev, rescind.SessionEnd{})
	if err != nil || keysOf(revs) != "session:old" {
		t.Fatalf("EndSessions(older than mine) = %s, %v; want only the older session", keysOf(revs), err)
	}
	if ids := sessionIDs(t, s, "u1", base); !slices.Equal(ids, []string{"mine", "mine2", "twin", "newer"}) {
		t.Fatalf("left: %v; want this session and every later one", ids)
	}
	// Nothing older is left: pressing again ends nothing and records nothing.
	for range 3 {
		if revs, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ExceptID: "mine", SignedInBy: mine}, rev, rescind.SessionEnd{}); err != nil || len(revs) != 0 {
			t.Fatalf("again: %s, %v", keysOf(revs), err)
		}
	}
	if u, _ := s.GetUser(ctx, "u1"); u.Epoch != 0 || u.DeviceEpoch != 0 {
		t.Fatalf("epoch %d, device epoch %d after ends bounded by a sign-in time; want 0, 0 (a sign-in under way survives)", u.Epoch, u.DeviceEpoch)
	}
	// A sign-in read the epoch before those ends: its session is still created.
	late := session("late", "u1")
	late.CreatedAt = base.Add(6 * time.Minute)
	if err := s.CreateSession(ctx, late); err != nil {
		t.Fatalf("a sign-in under way: %v; want its session created", err)
	}
	audit, _ := s.ListAudit(ctx, 100)
	wholesale := 0
	for _, a := range audit {
		if a.Action == "end_sessions" && a.Target == "u1" {
			wholesale++
		}
	}
	if wholesale != 1 {
		t.Fatalf("%d end_sessions entries; want one (the end that ended a session)", wholesale)
	}
	// The same filter without the bound ends every other session and moves the epoch.
	if revs, err = s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ExceptID: "mine"}, rev, rescind.SessionEnd{}); err != nil ||
		keysOf(revs) != "session:mine2 session:twin session:newer session:late" {
		t.Fatalf("EndSessions(except mine) = %s, %v", keysOf(revs), err)
	}
	if u, _ := s.GetUser(ctx, "u1"); u.Epoch != 1 || u.DeviceEpoch != 0 {
		t.Fatalf("epoch %d, device epoch %d; want 1, 0", u.Epoch, u.DeviceEpoch)
	}
}

// testForgetDevices: ForgetDevices moves the device epoch with the epoch; an end without it
// moves only the epoch.
func testForgetDevices(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	user(t, s, "u2")
	rev := rescind.Revocation{RevokedAt: base, Actor: "admin", Reason: "user logout"}
	for i, f := range []rescind.SessionFilter{{UserID: "u1"}, {UserID: "u1", ForgetDevices: true}, {UserID: "u1", ExceptID: "x", ForgetDevices: true}} {
		if _, err := s.EndSessions(ctx, f, rev, rescind.SessionEnd{}); err != nil {
			t.Fatalf("EndSessions %d: %v", i, err)
		}
	}
	if u, _ := s.GetUser(ctx, "u1"); u.Epoch != 3 || u.DeviceEpoch != 2 {
		t.Fatalf("epoch %d, device epoch %d; want 3, 2", u.Epoch, u.DeviceEpoch)
	}
	if u, _ := s.GetUserByUsername(ctx, "name-u1"); u.DeviceEpoch != 2 {
		t.Fatalf("GetUserByUsername: device epoch %d; want 2", u.DeviceEpoch)
	}
	if u, _ := s.GetUser(ctx, "u2"); u.Epoch != 0 || u.DeviceEpoch != 0 {
		t.Fatalf("the other user: epoch %d, device epoch %d; want 0, 0", u.Epoch, u.DeviceEpoch)
	}
}

func testSetPassword(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	s.CreateSession(ctx, session("s1", "u1"))
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	s.CreateRefreshToken(ctx, refresh("r1", "g1", base.Add(time.Hour)))
	rev := rescind.Revocation{RevokedAt: base, Actor: "admin", Reason: "password set"}
	revs, n, err := s.SetPassword(ctx, "u1", "new-hash", false, rev, rescind.SessionEnd{})
	if err != nil || keysOf(revs) != "session:s1" || n != 0 {
		t.Fatalf("SetPassword = %s, %d, %v; want the session ended", keysOf(revs), n, err)
	}
	if u, _ := s.GetUser(ctx, "u1"); u.PasswordHash != "new-hash" || u.Epoch != 1 || u.DeviceEpoch != 0 {
		t.Fatalf("user after SetPassword: %+v; want epoch 1, device epoch 0 (browsers stay remembered)", u)
	}
	if g, _ := s.GetGrant(ctx, "g1"); !g.RevokedAt.IsZero() {
		t.Fatal("SetPassword without revokeGrants revoked a grant")
	}
	s.CreateSession(ctx, func() rescind.Session { x := session("s2", "u1"); x.UserEpoch = 1; return x }())
	revs, n, err = s.SetPassword(ctx, "u1", "newer-hash", true, rev, rescind.SessionEnd{})
	if err != nil || !sameWords(keysOf(revs), "session:s2 grant:g1") || n != 1 {
		t.Fatalf("SetPassword(revokeGrants) = %s, %d, %v; want the session and the grant", keysOf(revs), n, err)
	}
	if g, _ := s.GetGrant(ctx, "g1"); g.RevokedAt.IsZero() {
		t.Fatal("SetPassword with revokeGrants left the grant")
	}
	audit, _ := s.ListAudit(ctx, 100)
	set := 0
	for _, a := range audit {
		if a.Action == "set_password" && a.Target == "u1" && a.Actor == "admin" {
			set++
		}
	}
	if set != 2 {
		t.Fatalf("audit %+v; want two set_password entries", audit)
	}
	if _, _, err := s.SetPassword(ctx, "nobody", "h", true, rev, rescind.SessionEnd{}); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("SetPassword(missing): %v", err)
	}
}

func testDeleteUserEndsSessions(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	user(t, s, "u2")
	s.CreateSession(ctx, session("s1", "u1"))
	s.CreateSession(ctx, session("s2", "u2"))
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	revs, _, err := s.DeleteUser(ctx, "u1", rescind.Revocation{RevokedAt: base, Actor: "admin", Reason: "user deleted"}, rescind.SessionEnd{})
	if err != nil || !sameWords(keysOf(revs), "session:s1 grant:g1") {
		t.Fatalf("DeleteUser = %s, %v; want the session ended and the grant revoked", keysOf(revs), err)
	}
	if _, err := s.GetSession(ctx, "hash-s1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("a deleted user's session is stored: %v", err)
	}
	if _, err := s.GetSession(ctx, "hash-s2"); err != nil {
		t.Fatalf("another user's session went: %v", err)
	}
	// No new session for a deleted user, whatever the sign-in read before.
	if err := s.CreateSession(ctx, session("s3", "u1")); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("CreateSession for a deleted user: %v", err)
	}
}

func testGrantSession(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	for _, id := range []string{"s1", "s2"} {
		if err := s.CreateSession(ctx, session(id, "u1")); err != nil {
			t.Fatal(err)
		}
	}
	g := grant("g1", "c1", "u1", "read")
	g.SessionID = "s1"
	if got, err := s.SaveGrant(ctx, g); err != nil || got.SessionID != "s1" {
		t.Fatalf("SaveGrant = %+v, %v", got, err)
	}
	g.ID, g.SessionID, g.Scopes = "g2", "s2", []string{"write"}
	if got, err := s.SaveGrant(ctx, g); err != nil || got.ID != "g1" || got.SessionID != "s2" {
		t.Fatalf("widening SaveGrant = %+v, %v; want g1 made in s2 now", got, err)
	}
	if got, _ := s.GetGrant(ctx, "g1"); got.SessionID != "s2" {
		t.Fatalf("GetGrant: session %q", got.SessionID)
	}
	c := sampleCode("h1", "g1")
	c.SessionID = "s2"
	if err := s.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCode(ctx, "h1"); err != nil || got.SessionID != "s2" {
		t.Fatalf("GetCode = %+v, %v", got, err)
	}
}

// testSignInRacingEnd: a session created with the epoch read before a concurrent end of every
// session of its user (on another instance) is either refused or ended: it never survives.
func testSignInRacingEnd(t *testing.T, open func() rescind.Store) {
	a, b := open(), open()
	ctx := context.Background()
	user(t, a, "u1")
	for i := range 40 {
		u, err := a.GetUser(ctx, "u1") // what the sign-in read before checking the password
		if err != nil {
			t.Fatal(err)
		}
		sess := session(fmt.Sprintf("s%d", i), "u1")
		sess.UserEpoch = u.Epoch
		var wg sync.WaitGroup
		var createErr, endErr error
		wg.Add(2)
		go func() { defer wg.Done(); createErr = a.CreateSession(ctx, sess) }()
		go func() {
			defer wg.Done()
			_, endErr = b.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rescind.Revocation{RevokedAt: base}, rescind.SessionEnd{})
		}()
		wg.Wait()
		if endErr != nil || (createErr != nil && !errors.Is(createErr, rescind.ErrUserChanged)) {
			t.Fatalf("round %d: create %v, end %v", i, createErr, endErr)
		}
		if _, err := a.GetSession(ctx, sess.Hash); !errors.Is(err, rescind.ErrNotFound) {
			t.Fatalf("round %d: the session of a sign-in that raced the end of every session survived (create: %v)", i, createErr)
		}
	}
}
