package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// The store's part of OpenID Connect: profile claims, the authentication time of sessions and
// what codes and refresh tokens carry to ID tokens, the clients given codes in each session, and
// what ending a session does besides (SessionEnd): the messages it enqueues in its own
// transaction, the grants it revokes, on every path that ends sessions.

func oidcTests() []struct {
	name string
	run  func(t *testing.T, open func() rescind.Store)
} {
	one := func(f func(*testing.T, rescind.Store)) func(*testing.T, func() rescind.Store) {
		return func(t *testing.T, open func() rescind.Store) { f(t, open()) }
	}
	return []struct {
		name string
		run  func(t *testing.T, open func() rescind.Store)
	}{
		{"UserProfile", one(testUserProfile)},
		{"ReauthenticateSession", one(testReauthenticateSession)},
		{"CodesCarryNonceAndAuthTime", one(testCodeClaims)},
		{"CodeNeedsItsSession", one(testCodeNeedsSession)},
		{"EndSessionsTellsTheirClients", one(testEndSessionsNotices)},
		{"NoticesFailAbortsTheEnd", one(testNoticesFail)},
		{"EndSessionsRevokesTheirGrants", one(testEndSessionsRevokeGrants)},
		{"EveryPathEndingSessionsTells", one(testEveryPathNotices)},
		{"ExpireSessions", one(testExpireSessions)},
		{"DeletedClientIsToldNothing", one(testDeletedClientNotTold)},
		{"ListOutbox", one(testListOutbox)},
		{"CodeRacingEndOfSessionAcrossInstances", testCodeRacingEnd},
	}
}

// recorder is a SessionNotices that records what it was called with and makes one message per
// (session, client) of the form kind "logout", key the client, payload "session client".
type recorder struct {
	mu    sync.Mutex
	calls [][]rescind.EndedSession
	revs  []rescind.Revocation
}

func (r *recorder) notices(ended []rescind.EndedSession, rev rescind.Revocation) ([]rescind.OutboxMessage, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, ended)
	r.revs = append(r.revs, rev)
	var out []rescind.OutboxMessage
	for _, e := range ended {
		for _, c := range e.Clients {
			out = append(out, rescind.OutboxMessage{Kind: "logout", Key: c.Client.ID, Subject: e.Session.UserID,
				Payload: []byte(e.Session.ID + " " + c.Client.ID), CreatedAt: rev.RevokedAt, Deadline: rev.RevokedAt.Add(time.Hour)})
		}
	}
	return out, nil
}

func (r *recorder) end(revokeGrants bool) rescind.SessionEnd {
	return rescind.SessionEnd{Notices: []rescind.SessionNotices{r.notices}, RevokeGrants: revokeGrants}
}

// ended describes the sessions of the last call as "session:client,client" words.
func (r *recorder) ended() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return "(not called)"
	}
	var words []string
	for _, e := range r.calls[len(r.calls)-1] {
		var cs []string
		for _, c := range e.Clients {
			cs = append(cs, c.Client.ID+"/"+c.GrantID)
		}
		words = append(words, e.Session.ID+":"+strings.Join(cs, ","))
	}
	return strings.Join(words, " ")
}

// payloads lists the payloads of the pending "logout" messages, sorted.
func payloads(t *testing.T, s rescind.Store) []string {
	t.Helper()
	msgs, err := s.ListOutbox(context.Background(), rescind.OutboxFilter{Kind: "logout", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range msgs {
		out = append(out, string(m.Payload))
	}
	slices.Sort(out)
	return out
}

// codeSeq numbers the codes signedIn makes.
var codeSeq atomic.Int64

// signedIn makes client c (with a back-channel logout URI) and gives it a code of grant g in
// session sess of u1; it returns the code's hash.
func signedIn(t *testing.T, s rescind.Store, sess, c, g string) string {
	t.Helper()
	return signedInAs(t, s, "u1", sess, c, g)
}

// signedInAs is signedIn for user u.
func signedInAs(t *testing.T, s rescind.Store, u, sess, c, g string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := s.GetClient(ctx, c); errors.Is(err, rescind.ErrNotFound) {
		cl := sampleClient(c)
		cl.BackchannelLogoutURI = "https://" + c + ".example/bcl"
		if err := s.CreateClient(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SaveGrant(ctx, grant(g, c, u, "openid")); err != nil {
		t.Fatal(err)
	}
	code := sampleCode(fmt.Sprintf("code-%s-%s-%d", sess, c, codeSeq.Add(1)), g)
	code.ClientID, code.UserID, code.SessionID = c, u, sess
	if err := s.CreateCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	return code.Hash
}

func testUserProfile(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	u := rescind.User{ID: "u1", Username: "alice", PasswordHash: "h", CreatedAt: base, Name: "Alice Liddell", Email: "alice@example.com"}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetUser(ctx, "u1"); err != nil || got.Name != u.Name || got.Email != u.Email {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}
	if err := s.SetUserProfile(ctx, "u1", "Alice L.", ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetUserByUsername(ctx, "alice"); got.Name != "Alice L." || got.Email != "" || got.PasswordHash != "h" {
		t.Fatalf("after SetUserProfile: %+v", got)
	}
	if err := s.SetUserProfile(ctx, "nobody", "x", "y"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("SetUserProfile(missing) = %v; want ErrNotFound", err)
	}
}

func testReauthenticateSession(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	a := session("s1", "u1")
	if err := s.CreateSession(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSessionByID(ctx, "s1")
	if err != nil || got.Hash != a.Hash || !got.AuthTime.IsZero() || !got.Authenticated().Equal(base) {
		t.Fatalf("GetSessionByID = %+v, %v; want no AuthTime, authenticated at creation", got, err)
	}
	if _, err := s.GetSessionByID(ctx, "nope"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetSessionByID(unknown) = %v", err)
	}
	at, idle := base.Add(10*time.Minute), base.Add(70*time.Minute)
	// A stale secret (another browser's, or one replaced already) finds nothing.
	if err := s.ReauthenticateSession(ctx, "s1", "hash-other", "hash-new", at, idle); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("ReauthenticateSession with the wrong hash = %v; want ErrNotFound", err)
	}
	if err := s.ReauthenticateSession(ctx, "s1", a.Hash, "hash-new", at, idle); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, a.Hash); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the old secret still finds the session: %v", err)
	}
	got, err = s.GetSession(ctx, "hash-new")
	if err != nil || got.ID != "s1" || !got.AuthTime.Equal(at) || !got.Authenticated().Equal(at) || !got.LastSeenAt.Equal(at) ||
		!got.IdleExpiresAt.Equal(idle) || !got.ExpiresAt.Equal(a.ExpiresAt) || !got.CreatedAt.Equal(base) {
		t.Fatalf("after ReauthenticateSession: %+v, %v", got, err)
	}
	if _, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ID: "s1"}, rescind.Revocation{RevokedAt: at}, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReauthenticateSession(ctx, "s1", "hash-new", "hash-newer", at, idle); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("ReauthenticateSession of an ended session = %v; want ErrNotFound", err)
	}
	// A session created with its authentication time keeps it.
	b := session("s2", "u1")
	b.AuthTime = base.Add(-time.Second)
	if err := s.CreateSession(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSessionByID(ctx, "s2"); !got.AuthTime.Equal(b.AuthTime) {
		t.Fatalf("AuthTime %v; want %v", got.AuthTime, b.AuthTime)
	}
}

func testCodeClaims(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	if err := s.CreateSession(ctx, session("s1", "u1")); err != nil {
		t.Fatal(err)
	}
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "openid"))
	c := sampleCode("h1", "g1")
	c.SessionID, c.Nonce, c.AuthTime = "s1", "n-0S6_WzA2Mj", base.Add(-time.Minute)
	if err := s.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCode(ctx, "h1")
	if err != nil || got.Nonce != c.Nonce || !got.AuthTime.Equal(c.AuthTime) || got.SessionID != "s1" {
		t.Fatalf("GetCode = %+v, %v", got, err)
	}
	if red, err := s.RedeemCode(ctx, "h1", base, base.Add(time.Hour), nil); err != nil || red.Nonce != c.Nonce || !red.AuthTime.Equal(c.AuthTime) {
		t.Fatalf("RedeemCode = %+v, %v", red, err)
	}
	// A refresh token carries the session and authentication time through every rotation.
	rt := refresh("r1", "g1", base.Add(time.Hour))
	rt.SessionID, rt.AuthTime = "s1", c.AuthTime
	if err := s.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	next := refresh("r2", "g1", base.Add(2*time.Hour))
	next.SessionID, next.AuthTime = "s1", c.AuthTime
	old, err := s.RotateRefreshToken(ctx, "r1", next, base, base.Add(time.Hour), nil)
	if err != nil || old.SessionID != "s1" || !old.AuthTime.Equal(c.AuthTime) {
		t.Fatalf("RotateRefreshToken = %+v, %v", old, err)
	}
	if got, err := s.GetRefreshToken(ctx, "r2"); err != nil || got.SessionID != "s1" || !got.AuthTime.Equal(c.AuthTime) {
		t.Fatalf("GetRefreshToken(r2) = %+v, %v", got, err)
	}
	// Without them: empty and zero.
	plain := refresh("r3", "g1", base.Add(time.Hour))
	if err := s.CreateRefreshToken(ctx, plain); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetRefreshToken(ctx, "r3"); got.SessionID != "" || !got.AuthTime.IsZero() {
		t.Fatalf("GetRefreshToken(r3) = %+v", got)
	}
}

func testCodeNeedsSession(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "openid"))
	c := sampleCode("h1", "g1")
	c.SessionID = "gone"
	if err := s.CreateCode(ctx, c); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("CreateCode in a session that does not exist = %v; want ErrNotFound", err)
	}
	if _, err := s.GetCode(ctx, "h1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the code was stored: %v", err)
	}
	// A code of no session (an older caller) needs none.
	c.Hash, c.SessionID = "h2", ""
	if err := s.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
}

func testEndSessionsNotices(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	for _, id := range []string{"s1", "s2"} {
		if err := s.CreateSession(ctx, session(id, "u1")); err != nil {
			t.Fatal(err)
		}
	}
	signedIn(t, s, "s1", "c1", "g1")
	unused := signedIn(t, s, "s1", "c2", "g2")
	used := signedIn(t, s, "s1", "c1", "g1") // c1 again in s1: one row, one message
	if _, err := s.RedeemCode(ctx, used, base, base.Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	other := signedIn(t, s, "s2", "c1", "g1")
	var rec recorder
	at := base.Add(time.Minute)
	revs, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ID: "s1"}, rescind.Revocation{RevokedAt: at, Actor: "user:alice",
		Reason: "signed out"}, rec.end(false))
	if err != nil || keysOf(revs) != "session:s1" {
		t.Fatalf("EndSessions = %s, %v", keysOf(revs), err)
	}
	if got := rec.ended(); got != "s1:c1/g1,c2/g2" {
		t.Fatalf("Notices were told %q; want s1 with c1 and c2 (with their grants)", got)
	}
	if e := rec.calls[0][0]; e.Session.UserID != "u1" || !e.Session.ExpiresAt.Equal(base.Add(24*time.Hour)) ||
		e.Clients[0].Client.BackchannelLogoutURI != "https://c1.example/bcl" || !rec.revs[0].RevokedAt.Equal(at) || rec.revs[0].Reason != "signed out" {
		t.Fatalf("Notices were told %+v with %+v", e, rec.revs[0])
	}
	// The messages are in the outbox, pending, with their subject: committed with the end.
	if got := payloads(t, s); !slices.Equal(got, []string{"s1 c1", "s1 c2"}) {
		t.Fatalf("outbox %v", got)
	}
	msgs, _ := s.ListOutbox(ctx, rescind.OutboxFilter{Kind: "logout", Key: "c2"})
	if len(msgs) != 1 || msgs[0].Subject != "u1" || msgs[0].State != rescind.OutboxPending || !msgs[0].CreatedAt.Equal(at) {
		t.Fatalf("c2's message %+v", msgs)
	}
	// The session's unused codes die with it (no ID token for an ended session); a used one
	// stays for replay detection; the other session's stays.
	if _, err := s.GetCode(ctx, unused); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("an unused code of the ended session is still there: %v", err)
	}
	for _, h := range []string{used, other} {
		if _, err := s.GetCode(ctx, h); err != nil {
			t.Fatalf("code %s: %v", h, err)
		}
	}
	// Nothing else was revoked; ending s2 tells c1 only.
	if g, _ := s.GetGrant(ctx, "g1"); !g.RevokedAt.IsZero() {
		t.Fatal("ending a session without RevokeGrants revoked its grant")
	}
	if _, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rescind.Revocation{RevokedAt: at}, rec.end(false)); err != nil {
		t.Fatal(err)
	}
	if got := rec.ended(); got != "s2:c1/g1" {
		t.Fatalf("Notices were told %q; want s2 with c1", got)
	}
	// Ending nothing calls Notices with nothing.
	if _, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rescind.Revocation{RevokedAt: at}, rec.end(false)); err != nil {
		t.Fatal(err)
	}
	if got := rec.ended(); got != "" || len(rec.calls) != 3 {
		t.Fatalf("Notices were told %q after %d calls; want nothing, on the third", got, len(rec.calls))
	}
	if got := payloads(t, s); len(got) != 3 {
		t.Fatalf("outbox %v; want three messages", got)
	}
}

func testNoticesFail(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	s.CreateSession(ctx, session("s1", "u1"))
	code := signedIn(t, s, "s1", "c1", "g1")
	boom := errors.New("boom")
	fail := rescind.SessionEnd{Notices: []rescind.SessionNotices{func([]rescind.EndedSession, rescind.Revocation) ([]rescind.OutboxMessage, error) {
		return nil, boom
	}}, RevokeGrants: true}
	rev := rescind.Revocation{RevokedAt: base, Actor: "admin", Reason: "x"}
	for name, op := range map[string]func() error{
		"EndSessions": func() error { _, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rev, fail); return err },
		"SetPassword": func() error { _, _, err := s.SetPassword(ctx, "u1", "new", true, rev, fail); return err },
		"DeleteUser":  func() error { _, _, err := s.DeleteUser(ctx, "u1", rev, fail); return err },
		"ExpireSessions": func() error {
			_, _, err := s.ExpireSessions(ctx, base.Add(48*time.Hour), 10, fail)
			return err
		},
	} {
		if err := op(); !errors.Is(err, boom) {
			t.Fatalf("%s with failing Notices = %v; want its error", name, err)
		}
		if _, err := s.GetSessionByID(ctx, "s1"); err != nil {
			t.Fatalf("%s: the session ended although its messages were not written: %v", name, err)
		}
		if _, err := s.GetCode(ctx, code); err != nil {
			t.Fatalf("%s: the code died: %v", name, err)
		}
		if u, err := s.GetUser(ctx, "u1"); err != nil || u.PasswordHash != "h-u1" || u.Epoch != 0 {
			t.Fatalf("%s: the user changed: %+v, %v", name, u, err)
		}
		if g, _ := s.GetGrant(ctx, "g1"); !g.RevokedAt.IsZero() {
			t.Fatalf("%s: the grant was revoked", name)
		}
		if recs, _ := s.RevocationsSince(ctx, 0, base, 100); len(recs) != 0 {
			t.Fatalf("%s: records written: %s", name, keysOf(recs))
		}
	}
}

func testEndSessionsRevokeGrants(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	user(t, s, "u2")
	for _, id := range []string{"s1", "s2"} {
		s.CreateSession(ctx, session(id, "u1"))
	}
	signedIn(t, s, "s1", "c1", "g1")
	signedIn(t, s, "s1", "c2", "g2")
	signedIn(t, s, "s2", "c3", "g3")
	s.CreateRefreshToken(ctx, refresh("r1", "g1", base.Add(time.Hour)))
	var rec recorder
	revs, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ID: "s1"}, rescind.Revocation{RevokedAt: base, Actor: "user:alice",
		Reason: "signed out"}, rec.end(true))
	if err != nil || !sameWords(keysOf(revs), "session:s1 grant:g1 grant:g2") {
		t.Fatalf("EndSessions(RevokeGrants) = %s, %v; want the session and the grants of its two clients", keysOf(revs), err)
	}
	for _, g := range []string{"g1", "g2"} {
		if got, _ := s.GetGrant(ctx, g); got.RevokedAt.IsZero() {
			t.Fatalf("grant %s is active", g)
		}
	}
	if got, _ := s.GetGrant(ctx, "g3"); !got.RevokedAt.IsZero() {
		t.Fatal("the grant of another session's client was revoked")
	}
	if _, err := s.GetRefreshToken(ctx, "r1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the revoked grant's refresh token: %v", err)
	}
	// Durably, with their audit entries.
	stored, _ := s.RevocationsSince(ctx, 0, base, 100)
	if !sameWords(keysOf(stored), "session:s1 grant:g1 grant:g2") {
		t.Fatalf("stored %s", keysOf(stored))
	}
	audit, _ := s.ListAudit(ctx, 100)
	n := 0
	for _, a := range audit {
		if a.Action == "revoke_grant" && a.Actor == "user:alice" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("audit %+v; want two revoke_grant entries", audit)
	}
}

func testEveryPathNotices(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	rev := rescind.Revocation{RevokedAt: base, Actor: "admin", Reason: "x"}
	cases := []struct {
		name string
		op   func(u string, end rescind.SessionEnd) ([]rescind.Revocation, error)
		want string // the records, with U for the case's user
	}{
		{"SetPassword", func(u string, end rescind.SessionEnd) ([]rescind.Revocation, error) {
			revs, _, err := s.SetPassword(ctx, u, "new", false, rev, end)
			return revs, err
		}, "session:U-s1 session:U-s2 grant:U-g1"},
		{"SetPasswordRevokingGrants", func(u string, end rescind.SessionEnd) ([]rescind.Revocation, error) {
			revs, _, err := s.SetPassword(ctx, u, "new", true, rev, end)
			return revs, err
		}, "session:U-s1 session:U-s2 grant:U-g1 grant:U-g2"},
		{"DeleteUser", func(u string, end rescind.SessionEnd) ([]rescind.Revocation, error) {
			revs, _, err := s.DeleteUser(ctx, u, rev, end)
			return revs, err
		}, "session:U-s1 session:U-s2 grant:U-g1 grant:U-g2"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := fmt.Sprintf("p%d", i)
			user(t, s, u)
			for _, id := range []string{u + "-s1", u + "-s2"} {
				if err := s.CreateSession(ctx, session(id, u)); err != nil {
					t.Fatal(err)
				}
			}
			signedInAs(t, s, u, u+"-s1", "c1", u+"-g1")
			// g2 was given in no session: only a revocation of every grant reaches it.
			if _, err := s.SaveGrant(ctx, grant(u+"-g2", "c2", u, "read")); err != nil {
				t.Fatal(err)
			}
			var rec recorder
			// With RevokeGrants set, SetPassword without revokeGrants still revokes the grants of
			// the sessions' clients (g1), not the others (g2).
			revs, err := c.op(u, rec.end(true))
			if want := strings.ReplaceAll(c.want, "U", u); err != nil || !sameWords(keysOf(revs), want) {
				t.Fatalf("%s = %s, %v; want %s", c.name, keysOf(revs), err, want)
			}
			if got, want := rec.ended(), u+"-s1:c1/"+u+"-g1 "+u+"-s2:"; !sameWords(got, want) {
				t.Fatalf("Notices were told %q; want %q", got, want)
			}
		})
	}
}

func testExpireSessions(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	idle := session("idle", "u1")
	idle.IdleExpiresAt = base.Add(time.Minute)
	over := session("over", "u1")
	over.ExpiresAt, over.IdleExpiresAt = base.Add(2*time.Minute), base.Add(2*time.Minute)
	for _, x := range []rescind.Session{idle, over, session("live", "u1")} {
		if err := s.CreateSession(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	code := signedIn(t, s, "idle", "c1", "g1")
	var rec recorder
	if n, _, err := s.ExpireSessions(ctx, base.Add(time.Minute), 10, rec.end(false)); err != nil || n != 0 {
		t.Fatalf("ExpireSessions at the idle expiry = %d, %v; want nothing yet", n, err)
	}
	// DeleteExpired leaves sessions alone: their end may have to be told.
	if _, err := s.DeleteExpired(ctx, base.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "hash-idle"); err != nil {
		t.Fatalf("DeleteExpired deleted a session: %v", err)
	}
	now := base.Add(3 * time.Minute)
	n1, _, err := s.ExpireSessions(ctx, now, 1, rec.end(false))
	first := rec.ended()
	n2, _, err2 := s.ExpireSessions(ctx, now, 1, rec.end(false))
	second := rec.ended()
	n3, _, err3 := s.ExpireSessions(ctx, now, 1, rec.end(false))
	if err != nil || err2 != nil || err3 != nil || n1 != 1 || n2 != 1 || n3 != 0 {
		t.Fatalf("ExpireSessions by one = %d, %d, %d (%v, %v, %v); want 1, 1, 0", n1, n2, n3, err, err2, err3)
	}
	if !sameWords(first+" "+second, "idle:c1/g1 over:") {
		t.Fatalf("Notices were told %q then %q", first, second)
	}
	if !rec.revs[1].RevokedAt.Equal(now) || rec.revs[1].Actor != "janitor" {
		t.Fatalf("Notices were given %+v", rec.revs[1])
	}
	for _, id := range []string{"idle", "over"} {
		if _, err := s.GetSession(ctx, "hash-"+id); !errors.Is(err, rescind.ErrNotFound) {
			t.Fatalf("session %s survived: %v", id, err)
		}
	}
	if _, err := s.GetSession(ctx, "hash-live"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCode(ctx, code); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the expired session's unused code: %v", err)
	}
	if got := payloads(t, s); !slices.Equal(got, []string{"idle c1"}) {
		t.Fatalf("outbox %v", got)
	}
	// No record: an expired session is refused by its expiry.
	if recs, _ := s.RevocationsSince(ctx, 0, base, 100); len(recs) != 0 {
		t.Fatalf("records %s", keysOf(recs))
	}
	// With RevokeGrants, the grants of an expired session's clients are revoked, durably.
	live, _ := s.GetSession(ctx, "hash-live")
	signedIn(t, s, live.ID, "c2", "g2")
	n, revs, err := s.ExpireSessions(ctx, base.Add(48*time.Hour), 10, rec.end(true))
	if err != nil || n != 1 || keysOf(revs) != "grant:g2" {
		t.Fatalf("ExpireSessions(RevokeGrants) = %d, %s, %v", n, keysOf(revs), err)
	}
	if recs, _ := s.RevocationsSince(ctx, 0, base, 100); keysOf(recs) != "grant:g2" {
		t.Fatalf("records %s", keysOf(recs))
	}
}

func testDeletedClientNotTold(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	user(t, s, "u1")
	s.CreateSession(ctx, session("s1", "u1"))
	signedIn(t, s, "s1", "c1", "g1")
	signedIn(t, s, "s1", "c2", "g2")
	if _, err := s.DeleteClient(ctx, "c2", base, rescind.Revocation{Kind: rescind.RevokeClient, Key: "c2", ClientID: "c2",
		RevokedAt: base, ExpiresAt: base.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var rec recorder
	if _, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rescind.Revocation{RevokedAt: base}, rec.end(false)); err != nil {
		t.Fatal(err)
	}
	if got := rec.ended(); got != "s1:c1/g1" {
		t.Fatalf("Notices were told %q; want s1 with c1 alone", got)
	}
}

func testListOutbox(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	m := func(kind, key, subject string, at time.Time) rescind.OutboxMessage {
		return rescind.OutboxMessage{Kind: kind, Key: key, Subject: subject, Payload: []byte(key), CreatedAt: at, Deadline: at.Add(time.Hour)}
	}
	ids, err := s.Enqueue(ctx, []rescind.OutboxMessage{
		m("logout", "c1", "u1", base), m("logout", "c2", "u1", base.Add(time.Minute)), m("logout", "c1", "u2", base.Add(2*time.Minute)),
		m("other", "c1", "u1", base.Add(3*time.Minute)),
	})
	if err != nil {
		t.Fatal(err)
	}
	list := func(f rescind.OutboxFilter) []int64 {
		t.Helper()
		msgs, err := s.ListOutbox(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return idsOf(msgs)
	}
	for name, c := range map[string]struct {
		f    rescind.OutboxFilter
		want []int64
	}{
		"all":            {rescind.OutboxFilter{}, []int64{ids[3], ids[2], ids[1], ids[0]}},
		"kind":           {rescind.OutboxFilter{Kind: "logout"}, []int64{ids[2], ids[1], ids[0]}},
		"subject":        {rescind.OutboxFilter{Kind: "logout", Subject: "u1"}, []int64{ids[1], ids[0]}},
		"key":            {rescind.OutboxFilter{Key: "c1", Subject: "u1"}, []int64{ids[3], ids[0]}},
		"since":          {rescind.OutboxFilter{Subject: "u1", Since: base.Add(time.Minute)}, []int64{ids[3], ids[1]}},
		"limit":          {rescind.OutboxFilter{Limit: 2}, []int64{ids[3], ids[2]}},
		"nobody matches": {rescind.OutboxFilter{Subject: "u9"}, nil},
	} {
		if got := list(c.f); !slices.Equal(got, c.want) {
			t.Errorf("ListOutbox(%s) = %v; want %v", name, got, c.want)
		}
	}
	// Finished messages are listed in their state, without their payload.
	got := claim(t, s, "o", base.Add(time.Hour), 10, "logout")
	if err := s.CompleteOutbox(ctx, got[0].ID, "o", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	msgs, _ := s.ListOutbox(ctx, rescind.OutboxFilter{Kind: "logout", Key: got[0].Key, Subject: got[0].Subject})
	if len(msgs) != 1 || msgs[0].State != rescind.OutboxDelivered || len(msgs[0].Payload) != 0 || msgs[0].Subject != got[0].Subject {
		t.Fatalf("a delivered message is listed as %+v", msgs)
	}
}

func idsOf(msgs []rescind.OutboxMessage) []int64 {
	var out []int64
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

// testCodeRacingEnd: a code issued in a session on one instance while another ends every session
// of its person either fails (the session is gone) or its client is among those the end tells:
// no relying party is left signed in to a session whose end it never hears of.
func testCodeRacingEnd(t *testing.T, open func() rescind.Store) {
	a, b := open(), open()
	ctx := context.Background()
	user(t, a, "u1")
	cl := sampleClient("c1")
	if err := a.CreateClient(ctx, cl); err != nil {
		t.Fatal(err)
	}
	a.SaveGrant(ctx, grant("g1", "c1", "u1", "openid"))
	for i := range 30 {
		u, _ := a.GetUser(ctx, "u1")
		sess := session(fmt.Sprintf("s%d", i), "u1")
		sess.UserEpoch = u.Epoch
		if err := a.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		code := sampleCode(fmt.Sprintf("h%d", i), "g1")
		code.SessionID = sess.ID
		var rec recorder
		var wg sync.WaitGroup
		var codeErr, endErr error
		wg.Add(2)
		go func() { defer wg.Done(); codeErr = a.CreateCode(ctx, code) }()
		go func() {
			defer wg.Done()
			_, endErr = b.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rescind.Revocation{RevokedAt: base}, rec.end(false))
		}()
		wg.Wait()
		if endErr != nil || (codeErr != nil && !errors.Is(codeErr, rescind.ErrNotFound)) {
			t.Fatalf("round %d: code %v, end %v", i, codeErr, endErr)
		}
		told := rec.ended() == sess.ID+":c1/g1"
		if codeErr == nil && !told {
			t.Fatalf("round %d: a code was issued in the session, whose end told %q", i, rec.ended())
		}
		if _, err := a.GetCode(ctx, code.Hash); err == nil {
			t.Fatalf("round %d: a code of the ended session is usable (told: %v)", i, told)
		}
	}
}
