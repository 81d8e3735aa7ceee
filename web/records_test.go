package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/revocation"
)

// sessionRecordOf returns the stored record of the end of session id.
func sessionRecordOf(t *testing.T, e *pagesEnv, id string) rescind.Revocation {
	t.Helper()
	revs, err := e.st.RevocationsSince(context.Background(), 0, e.clock(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if r.Kind == rescind.RevokeSession && r.Key == id {
			return r
		}
	}
	t.Fatalf("no record of the end of session %s", id)
	return rescind.Revocation{}
}

// TestEndedSessionRecordBound (audit of issue 12, finding 4): the record of an ended session
// lives until the session's idle expiry as stored when it ended (here an hour after its last
// use), not its absolute expiry 30 days away; and an instance that still holds a copy of the
// session and records a use of it after the end does not extend its copy past that bound: its
// next lookup refuses the session.
func TestEndedSessionRecordBound(t *testing.T) {
	e := newPagesEnv(t, func(c *Config) { c.SessionIdle = time.Hour })
	b := e.browser()
	b.signIn("alice")
	old := b.session()
	cookie := &http.Cookie{Name: sessionCookie, Value: b.cookie(sessionCookie)}
	// Another instance with a long cache, which has not heard of the end yet.
	other, err := NewSessions(SessionsConfig{Store: e.st, Committer: revocation.NewCommitter(e.st, revocation.NewState(), nil),
		Box: testBox, Idle: time.Hour, CacheTTL: 24 * time.Hour, Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	lookup := func() bool {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(cookie)
		_, _, ok := other.Current(r)
		return ok
	}
	if !lookup() {
		t.Fatal("the other instance does not know the session")
	}
	e.advance(2 * time.Minute)
	b.whoami() // a use: the stored idle expiry moves to now + 1h
	used := e.clock()
	b.signIn("bob") // signing in as someone else ends the old session
	rec := sessionRecordOf(t, e, old.ID)
	if want := used.Add(time.Hour); !rec.ExpiresAt.Equal(want) {
		t.Fatalf("the record lives until %v; want the stored idle expiry %v (absolute expiry %v)", rec.ExpiresAt, want, old.ExpiresAt)
	}
	e.advance(2 * time.Minute)
	lookup() // a use recorded by the other instance: the session is gone, the copy is not extended
	if lookup() {
		t.Fatal("the other instance still accepts the ended session after its use found it gone")
	}
}

// TestSignInLimit (audit of issue 12, finding 4): successful sign-ins of one person take tokens
// from a bucket of their own; while it is empty the right password gets a 429 and no session,
// other people sign in, and it refills with time.
func TestSignInLimit(t *testing.T) {
	var e *pagesEnv
	e = newPagesEnv(t, func(c *Config) {
		c.SignInLimiter = ratelimit.New(ratelimit.Config{Burst: 2, PerHour: 60, Now: func() time.Time { return e.clock() }})
	})
	b := e.browser()
	for i, want := range []int{http.StatusSeeOther, http.StatusSeeOther, http.StatusTooManyRequests} {
		if p := b.post("/login", b.loginForm("/login", "alice", password)); p.status != want {
			t.Fatalf("sign-in %d: %d; want %d", i, p.status, want)
		}
	}
	if other := e.browser(); other.post("/login", other.loginForm("/login", "bob", password)).status != http.StatusSeeOther {
		t.Fatal("bob is limited by alice's sign-ins")
	}
	e.advance(time.Minute)
	fresh := e.browser()
	if p := fresh.post("/login", fresh.loginForm("/login", "alice", password)); p.status != http.StatusSeeOther || fresh.whoami() == "" {
		t.Fatalf("alice a minute later: %d", p.status)
	}
}
