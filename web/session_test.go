package web

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
)

// signedInWith returns the id of the user that s says is signed in with the session cookie
// value ("" if none).
func signedInWith(s *Server, value string) string {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: sessionCookie, Value: value})
	u, _ := s.SignedIn(r)
	return u.ID
}

// session returns the stored session of the browser.
func (b *browser) session() rescind.Session {
	b.e.t.Helper()
	sess, err := b.e.st.GetSession(context.Background(), hashSecret(b.cookie(sessionCookie)))
	if err != nil {
		b.e.t.Fatalf("the browser's session: %v", err)
	}
	return sess
}

// TestSessions: a session cookie is worth something only as the exact secret of a stored,
// unended session; the store holds its hash and what the person sees of it, never the secret.
func TestSessions(t *testing.T) {
	e := newPagesEnv(t, nil)
	b := e.browser()
	b.signIn("alice")
	if got := b.whoami(); got != "alice alice-id " { // no password hash leaves the store
		t.Fatalf("whoami = %q", got)
	}
	valid := b.cookie(sessionCookie)
	flipped := []byte(valid)
	flipped[len(flipped)/2] ^= 1 // still 43 base64url characters: another secret
	cases := []struct {
		name, value, want string
	}{
		{"valid", valid, "alice-id"},
		{"another secret", string(flipped), ""},
		{"truncated", valid[:42], ""},
		{"extended", valid + "A", ""},
		{"not base64url", "!" + valid[1:], ""},
		{"the stored hash", hashSecret(valid), ""},
		{"empty", "", ""},
	}
	for _, tc := range cases {
		if got := signedInWith(e.s, tc.value); got != tc.want {
			t.Errorf("%s: signed in as %q, want %q", tc.name, got, tc.want)
		}
	}
	list, err := e.st.ListSessions(context.Background(), "alice-id", e.clock())
	if err != nil || len(list) != 1 {
		t.Fatalf("ListSessions = %v, %v", list, err)
	}
	s := list[0]
	if s.Hash != hashSecret(valid) || s.ID == valid || s.UserAgent != "Go-http-client/1.1" || s.Address != "127.0.0.1" ||
		!s.CreatedAt.Equal(e.clock()) || !s.ExpiresAt.Equal(e.clock().Add(DefaultSessionMax)) ||
		!s.IdleExpiresAt.Equal(e.clock().Add(DefaultSessionIdle)) {
		t.Fatalf("stored session %+v", s)
	}
}

// TestSessionLifetime: a session ends when it has not been used for the idle timeout, and at
// its absolute expiry however often it is used.
func TestSessionLifetime(t *testing.T) {
	e := newPagesEnv(t, func(c *Config) { c.SessionIdle = time.Hour; c.SessionMax = 5 * time.Hour })
	b := e.browser()
	b.signIn("alice")
	e.advance(time.Hour - time.Second)
	if b.whoami() == "" {
		t.Fatal("ended before the idle timeout")
	}
	e.advance(time.Hour - time.Second) // used a second before its idle expiry, which moved
	if b.whoami() == "" {
		t.Fatal("a use did not move the idle expiry")
	}
	e.advance(time.Hour)
	if got := b.whoami(); got != "" {
		t.Fatalf("idle for an hour and still signed in: %q", got)
	}
	b.signIn("alice")
	start := e.clock()
	for e.clock().Before(start.Add(5*time.Hour - 30*time.Minute)) {
		e.advance(30 * time.Minute)
		if b.whoami() == "" {
			t.Fatalf("ended at %v, before its absolute expiry", e.clock().Sub(start))
		}
	}
	e.advance(30 * time.Minute)
	if got := b.whoami(); got != "" {
		t.Fatalf("used every 30 minutes, still signed in at its absolute expiry: %q", got)
	}
	// The janitor's sweep ends both (telling their apps, if any).
	if n, _, err := e.st.ExpireSessions(context.Background(), e.clock().Add(time.Second), 10, rescind.SessionEnd{}); err != nil || n != 2 {
		t.Fatalf("ExpireSessions = %d, %v; want the two expired sessions", n, err)
	}
}

// TestLogout: signing out needs this session's CSRF token; it ends the session on the server,
// so a copy of the cookie is refused afterwards, and writes who did it to the audit log.
func TestLogout(t *testing.T) {
	e := newPagesEnv(t, nil)
	b := e.browser()
	b.signIn("alice")
	sess := b.session()
	copied := b.cookie(sessionCookie)
	csrf := hidden(b.get("/account/apps").body).Get("csrf_token")
	if p := b.post("/logout", url.Values{"csrf_token": {"forged"}}); p.status != http.StatusForbidden || b.whoami() == "" {
		t.Fatalf("forged logout: %d, signed in %q", p.status, b.whoami())
	}
	p := b.post("/logout", url.Values{"csrf_token": {csrf}})
	if p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" || b.whoami() != "" || b.cookie(sessionCookie) != "" {
		t.Fatalf("logout: %d %q, signed in %q", p.status, p.header.Get("Location"), b.whoami())
	}
	if got := signedInWith(e.s, copied); got != "" {
		t.Fatalf("the cookie copied before logout still signs in %q", got)
	}
	if !e.com.SessionEnded(sess.ID) {
		t.Fatal("no record of the ended session")
	}
	if _, err := e.st.GetSession(context.Background(), sess.Hash); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the session is still stored: %v", err)
	}
	audit, _ := e.st.ListAudit(context.Background(), 10)
	if len(audit) != 1 || audit[0].Action != "revoke_session" || audit[0].Target != sess.ID || audit[0].Actor != "user:alice" {
		t.Fatalf("audit %+v", audit)
	}
	// A browser without a session is only sent to the login page.
	if p := e.browser().post("/logout", url.Values{}); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login" {
		t.Fatalf("logout without a session: %d %q", p.status, p.header.Get("Location"))
	}
}

// TestCrossSiteLogout (audit of issue 12, finding 5): a POST to /logout that arrives without
// the session cookie (a cross-site POST: SameSite=Lax keeps it back) drops the cookie only if
// it comes from this site: Sec-Fetch-Site same-origin, the issuer's Origin, or the
// double-submit CSRF token. Otherwise the browser is sent to the login page and keeps its
// cookie, and its session keeps working.
func TestCrossSiteLogout(t *testing.T) {
	e := newPagesEnv(t, nil)
	b := e.browser()
	b.signIn("alice")
	for _, tc := range []struct {
		name    string
		headers map[string]string
		form    url.Values
		clears  bool
	}{
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": testIssuer}, nil, false},
		{"another origin", map[string]string{"Origin": "https://evil.example"}, nil, false},
		{"opaque origin", map[string]string{"Origin": "null"}, nil, false},
		{"no origin, no token", nil, nil, false},
		{"same-site but not same-origin", map[string]string{"Sec-Fetch-Site": "same-site"}, nil, false},
		{"same-origin fetch metadata", map[string]string{"Sec-Fetch-Site": "same-origin"}, nil, true},
		{"the issuer's origin", map[string]string{"Origin": testIssuer}, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/logout", strings.NewReader(tc.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			e.s.HandleLogout(w, r) // no cookie at all: what a cross-site POST brings
			cleared := false
			for _, c := range w.Result().Cookies() {
				cleared = cleared || (c.Name == sessionCookie && c.MaxAge < 0)
			}
			if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/login" || cleared != tc.clears {
				t.Fatalf("%d %q, cookie cleared %v; want 303 /login, cleared %v", w.Code, w.Header().Get("Location"), cleared, tc.clears)
			}
		})
	}
	// The double-submit token of the browser's sign-in form counts as this site too.
	other := e.browser()
	tok := hidden(other.get("/login").body).Get("csrf_token")
	r := httptest.NewRequest(http.MethodPost, "/logout", strings.NewReader(url.Values{"csrf_token": {tok}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: other.cookie(csrfCookie)})
	w := httptest.NewRecorder()
	e.s.HandleLogout(w, r)
	if c := w.Result().Cookies(); len(c) != 1 || c[0].Name != sessionCookie || c[0].MaxAge >= 0 {
		t.Fatalf("double-submit token: cookies %v; want the session cookie dropped", c)
	}
	if b.whoami() == "" {
		t.Fatal("alice's session ended")
	}
}

// TestSignInEndsPreviousSession: signing in again on a browser ends the session it held.
func TestSignInEndsPreviousSession(t *testing.T) {
	e := newPagesEnv(t, nil)
	b := e.browser()
	b.signIn("alice")
	old := b.cookie(sessionCookie)
	b.signIn("bob")
	if got := signedInWith(e.s, old); got != "" {
		t.Fatalf("the session held before signing in again still signs in %q", got)
	}
	if list, _ := e.st.ListSessions(context.Background(), "alice-id", e.clock()); len(list) != 0 {
		t.Fatalf("alice's sessions: %+v", list)
	}
	if got := b.whoami(); !strings.HasPrefix(got, "bob ") {
		t.Fatalf("whoami = %q", got)
	}
}

// TestCookies: the session and CSRF cookies are HttpOnly, SameSite=Lax, Path=/ and, with an
// https issuer, Secure with the __Host- prefix; the session cookie lasts as long as the
// session can.
func TestCookies(t *testing.T) {
	for _, tc := range []struct {
		issuer, prefix string
		secure         bool
	}{{"https://as.example", "__Host-", true}, {"http://127.0.0.1:8080", "", false}} {
		e := newPagesEnv(t, func(c *Config) { c.Issuer = tc.issuer; c.SessionMax = time.Hour })
		w := httptest.NewRecorder()
		e.s.HandleLoginPage(w, httptest.NewRequest(http.MethodGet, "/login", nil))
		csrf := w.Result().Cookies()
		if len(csrf) != 1 || csrf[0].Name != tc.prefix+csrfCookie {
			t.Fatalf("%s: login page cookies %v", tc.issuer, csrf)
		}
		form := url.Values{"csrf_token": {csrf[0].Value}, "username": {"alice"}, "password": {password}}
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(csrf[0])
		w = httptest.NewRecorder()
		e.s.HandleLogin(w, r)
		cookies := append(csrf, w.Result().Cookies()...)
		if len(cookies) != 2 || cookies[1].Name != tc.prefix+sessionCookie || cookies[1].MaxAge != 3600 || len(cookies[1].Value) != 43 {
			t.Fatalf("%s: cookies %v", tc.issuer, cookies)
		}
		for _, c := range cookies {
			if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != tc.secure || c.Path != "/" || c.Domain != "" {
				t.Errorf("%s: cookie %s: %+v", tc.issuer, c.Name, c)
			}
		}
		// The prefixed name is the one read: a cookie of the plain name does not sign in.
		r = httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: sessionCookie, Value: cookies[1].Value})
		if _, ok := e.s.SignedIn(r); ok == tc.secure {
			t.Errorf("%s: a cookie named %s signs in: %v", tc.issuer, sessionCookie, ok)
		}
	}
}

// TestSessionCSRF: a signed-in browser's forms carry a token bound to its session: the
// double-submit cookie's value, another session's token and the token of the session the
// browser held before it signed in again are all refused.
func TestSessionCSRF(t *testing.T) {
	e := newPagesEnv(t, nil)
	csrfOf := func(b *browser) string { return hidden(b.get("/account/sessions").body).Get("csrf_token") }
	b, other := e.browser(), e.browser()
	b.get("/login") // the double-submit cookie of the login form
	b.signIn("alice")
	other.signIn("alice")
	mine, theirs := csrfOf(b), csrfOf(other)
	if mine == "" || mine == theirs || mine == b.cookie(csrfCookie) {
		t.Fatalf("tokens: mine %q, theirs %q, cookie %q", mine, theirs, b.cookie(csrfCookie))
	}
	for name, tok := range map[string]string{"the double-submit cookie": b.cookie(csrfCookie), "another session's": theirs, "empty": ""} {
		if p := b.post("/account/sessions/end-others", url.Values{"csrf_token": {tok}}); p.status != http.StatusForbidden {
			t.Fatalf("%s token: %d", name, p.status)
		}
	}
	if other.whoami() == "" {
		t.Fatal("a refused form ended a session")
	}
	b.signIn("alice") // a new session: the old token is worthless
	if p := b.post("/account/sessions/end-others", url.Values{"csrf_token": {mine}}); p.status != http.StatusForbidden {
		t.Fatalf("the previous session's token: %d", p.status)
	}
	if p := b.post("/account/sessions/end-others", url.Values{"csrf_token": {csrfOf(b)}}); p.status != http.StatusSeeOther || other.whoami() != "" {
		t.Fatalf("this session's token: %d, other still signed in %q", p.status, other.whoami())
	}
}

var sessionRowRE = regexp.MustCompile(`data-session="([^"]+)"`)

// TestSessionsPage: a person sees their own sessions (this one marked), signs one out, every
// other one, or every one; another person's session id changes nothing; each end is audited.
func TestSessionsPage(t *testing.T) {
	e := newPagesEnv(t, nil)
	if p := e.browser().get("/account/sessions"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next=%2Faccount%2Fsessions" {
		t.Fatalf("signed out: %d %q", p.status, p.header.Get("Location"))
	}
	b1, b2, bob := e.browser(), e.browser(), e.browser()
	b1.signIn("alice")
	e.advance(time.Minute)
	b2.signIn("alice")
	bob.signIn("bob")
	p := b1.get("/account/sessions")
	rows := sessionRowRE.FindAllStringSubmatch(p.body, -1)
	s1, s2, sb := b1.session().ID, b2.session().ID, bob.session().ID
	if p.status != http.StatusOK || len(rows) != 2 || rows[0][1] != s1 || rows[1][1] != s2 ||
		strings.Count(p.body, "(this session)") != 1 || !strings.Contains(p.body, "Go-http-client/1.1") ||
		!strings.Contains(p.body, "127.0.0.1") || !strings.Contains(p.body, `href="/account/apps"`) {
		t.Fatalf("sessions page: %d %s", p.status, p.body)
	}
	if strings.Contains(b1.get("/account/apps").body, `href="/account/sessions"`) == false {
		t.Fatal("the apps page does not link to the sessions page")
	}
	csrf := hidden(p.body).Get("csrf_token")
	post := func(b *browser, path string, form url.Values) page {
		t.Helper()
		form.Set("csrf_token", csrf)
		return b.post(path, form)
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		where  string
	}{
		{"no session chosen", url.Values{}, 400, "No session was chosen."},
		{"two sessions chosen", url.Values{"session_id": {s2, sb}}, 400, "No session was chosen."},
		{"another person's session", url.Values{"session_id": {sb}}, 303, "/account/sessions"},
		{"an unknown session", url.Values{"session_id": {"nope"}}, 303, "/account/sessions"},
	} {
		if p := post(b1, "/account/sessions/end", tc.form); p.status != tc.status ||
			(p.status == 303 && p.header.Get("Location") != tc.where) || (p.status != 303 && !strings.Contains(p.body, tc.where)) {
			t.Fatalf("%s: %d %q %s", tc.name, p.status, p.header.Get("Location"), p.body)
		}
	}
	if b2.whoami() == "" || bob.whoami() == "" || b1.whoami() == "" {
		t.Fatal("a refused or foreign end ended a session")
	}
	// Sign the other session out.
	b2cookie := b2.cookie(sessionCookie)
	// Sign the other session out (it signed in after this one: with the password).
	if p := post(b1, "/account/sessions/end", url.Values{"session_id": {s2}, "password": {password}}); p.status != 303 || p.header.Get("Location") != "/account/sessions" {
		t.Fatalf("ending the other session: %d %q", p.status, p.header.Get("Location"))
	}
	if signedInWith(e.s, b2cookie) != "" || b1.whoami() == "" || bob.whoami() == "" {
		t.Fatal("ending the other session: wrong sessions ended")
	}
	if rows := sessionRowRE.FindAllStringSubmatch(b1.get("/account/sessions").body, -1); len(rows) != 1 || rows[0][1] != s1 {
		t.Fatalf("after ending the other session, rows %v", rows)
	}
	// Every other session.
	b2.signIn("alice")
	b3 := e.browser()
	b3.signIn("alice")
	if p := post(b1, "/account/sessions/end-others", url.Values{"password": {password}}); p.status != 303 || p.header.Get("Location") != "/account/sessions" {
		t.Fatalf("end-others: %d %q", p.status, p.header.Get("Location"))
	}
	if b2.whoami() != "" || b3.whoami() != "" || b1.whoami() == "" || bob.whoami() == "" {
		t.Fatal("end-others: wrong sessions ended")
	}
	// Every session, this one too.
	b2.signIn("alice")
	b1cookie := b1.cookie(sessionCookie)
	if p := post(b1, "/account/sessions/end-all", url.Values{}); p.status != 303 || p.header.Get("Location") != "/login" || b1.cookie(sessionCookie) != "" {
		t.Fatalf("end-all: %d %q", p.status, p.header.Get("Location"))
	}
	if signedInWith(e.s, b1cookie) != "" || b2.whoami() != "" || bob.whoami() == "" {
		t.Fatal("end-all: wrong sessions ended")
	}
	// Each ended session is in the audit log as the person's doing.
	audit, _ := e.st.ListAudit(context.Background(), 100)
	ended := 0
	for _, a := range audit {
		if a.Action == "revoke_session" && a.Actor == "user:alice" {
			ended++
		}
	}
	if ended != 5 { // s2; b2 and b3; b1 and b2 (signing in again on b2 ended nothing: its session had ended)
		t.Fatalf("%d session ends audited, want 5:\n%+v", ended, audit)
	}
}

// TestSessionsAcrossInstances: another instance (its own cache and revocation state, the same
// store) refuses an ended session as soon as it applies the session's record, whatever its
// cache holds, and without the record once its cache must read the store again.
func TestSessionsAcrossInstances(t *testing.T) {
	e := newPagesEnv(t, nil)
	instance := func() (*Server, *revocation.State) {
		state := revocation.NewState()
		com := revocation.NewCommitter(e.st, state, nil)
		t.Cleanup(com.Close)
		s, err := New(Config{Issuer: testIssuer, Store: e.st, Clients: e.clients, Committer: com, Box: testBox, Now: e.clock})
		if err != nil {
			t.Fatal(err)
		}
		return s, state
	}
	b, other := e.browser(), e.browser()
	b.signIn("alice")
	other.signIn("alice")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		cookie string
		hear   bool // B applies the records, as its notifications or poll do
	}{{"told", b.cookie(sessionCookie), true}, {"not told", other.cookie(sessionCookie), false}} {
		B, state := instance()
		if signedInWith(B, tc.cookie) != "alice-id" { // B's cache holds the session
			t.Fatalf("%s: not signed in on B", tc.name)
		}
		sess, _ := e.st.GetSession(ctx, hashSecret(tc.cookie))
		if _, err := e.com.EndSessions(ctx, rescind.SessionFilter{UserID: "alice-id", ID: sess.ID}, rescind.Revocation{RevokedAt: e.clock()}); err != nil {
			t.Fatal(err)
		}
		if !tc.hear {
			e.advance(time.Minute) // B's cached copy is due for a read
		} else if _, err := state.Load(ctx, e.st, e.clock(), nil); err != nil {
			t.Fatal(err)
		}
		if got := signedInWith(B, tc.cookie); got != "" {
			t.Fatalf("%s: B still signs in %q", tc.name, got)
		}
	}
}

// racingUsers authenticates as LocalUsers does, and then, before answering, runs during (what
// an operator or another browser did while the password was being checked).
type racingUsers struct {
	LocalUsers
	during func()
}

func (r racingUsers) Authenticate(ctx context.Context, username, password string) (rescind.User, error) {
	u, err := r.LocalUsers.Authenticate(ctx, username, password)
	if err == nil {
		r.during()
	}
	return u, err
}

// TestSignInRacingEndOfSessions: a sign-in whose password was checked while the person's
// sessions were ended (a new password set, "sign out everywhere") does not start a session: it
// would outlive what was meant to end every session.
func TestSignInRacingEndOfSessions(t *testing.T) {
	ctx := context.Background()
	cheap := secret.Params{Memory: 64, Time: 1, Threads: 1}
	for name, during := range map[string]func(st rescind.Store){
		"password set": func(st rescind.Store) {
			h, _ := secret.Hash("a new password", cheap)
			if _, _, err := st.SetPassword(ctx, "alice-id", h, false, rescind.Revocation{RevokedAt: time.Now()}, rescind.SessionEnd{}); err != nil {
				t.Error(err)
			}
		},
		"signed out everywhere": func(st rescind.Store) {
			if _, err := st.EndSessions(ctx, rescind.SessionFilter{UserID: "alice-id"}, rescind.Revocation{RevokedAt: time.Now()}, rescind.SessionEnd{}); err != nil {
				t.Error(err)
			}
		},
	} {
		t.Run(name, func(t *testing.T) {
			var e *pagesEnv
			e = newPagesEnv(t, func(c *Config) {
				c.Users = racingUsers{LocalUsers{Store: c.Store, Gate: c.Gate}, func() { during(e.st) }}
			})
			b := e.browser()
			p := b.post("/login", b.loginForm("/login", "alice", password))
			if p.status != http.StatusConflict || !strings.Contains(p.body, "Sign in again") || b.whoami() != "" {
				t.Fatalf("%d %s; want 409 and no session", p.status, p.body)
			}
			if list, _ := e.st.ListSessions(ctx, "alice-id", e.clock()); len(list) != 0 {
				t.Fatalf("sessions %+v", list)
			}
		})
	}
}

// BenchmarkSessionLookup: what each request that uses a session costs once the session is in
// the cache (a hash, a map lookup, the ended-session check), and when it must be read from the
// store (SQLite) every time.
func BenchmarkSessionLookup(b *testing.B) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateUser(ctx, rescind.User{ID: "alice-id", Username: "alice", PasswordHash: "h", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	com := revocation.NewCommitter(st, revocation.NewState(), nil)
	defer com.Close()
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"cached", time.Hour}, {"from the store", time.Nanosecond}} {
		b.Run(tc.name, func(b *testing.B) {
			m, err := NewSessions(SessionsConfig{Store: st, Committer: com, Box: testBox, CacheTTL: tc.ttl})
			if err != nil {
				b.Fatal(err)
			}
			w := httptest.NewRecorder()
			if _, err := m.Start(w, httptest.NewRequest(http.MethodPost, "/login", nil), rescind.User{ID: "alice-id", Username: "alice"}); err != nil {
				b.Fatal(err)
			}
			r := httptest.NewRequest(http.MethodGet, "/account/apps", nil)
			r.AddCookie(w.Result().Cookies()[0])
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := m.Current(r); !ok {
					b.Fatal("not signed in")
				}
			}
		})
	}
}

// TestEndNewerSessionNeedsPassword (audit of issue 12, finding 6): someone holding only a copy
// of an older session's cookie cannot keep the person out of a browser where they signed in
// again: ending a session that signed in after this one (alone, or among the other sessions)
// needs the password, and a wrong one counts as a failed login. Ending older sessions, this
// one, or every session (this one too) needs none; the newer session ends the older one freely.
func TestEndNewerSessionNeedsPassword(t *testing.T) {
	var e *pagesEnv
	e = newPagesEnv(t, func(c *Config) {
		c.Limiter = ratelimit.New(ratelimit.Config{Burst: 2, PerMinute: 1, Now: func() time.Time { return e.clock() }})
	})
	thief, owner := e.browser(), e.browser()
	thief.signIn("alice") // the copied cookie's session
	e.advance(time.Minute)
	owner.signIn("alice") // the person signs in again elsewhere
	ownerID := owner.session().ID
	page := thief.get("/account/sessions").body
	if !strings.Contains(page, `aria-label="Your password, to sign out session `+ownerID+`"`) ||
		!strings.Contains(page, `aria-label="Your password, to sign out of other sessions"`) {
		t.Fatalf("the sessions page does not ask for the password where it is needed:\n%s", page)
	}
	csrf := hidden(page).Get("csrf_token")
	for _, tc := range []struct {
		name, path string
		form       url.Values
		status     int
	}{
		{"end the newer session", "/account/sessions/end", url.Values{"session_id": {ownerID}}, http.StatusForbidden},
		{"end the others", "/account/sessions/end-others", url.Values{}, http.StatusForbidden},
		{"wrong password", "/account/sessions/end-others", url.Values{"password": {"guess"}}, http.StatusForbidden},
		{"another wrong password", "/account/sessions/end", url.Values{"session_id": {ownerID}, "password": {"guess"}}, http.StatusForbidden},
		{"right password, but limited", "/account/sessions/end-others", url.Values{"password": {password}}, http.StatusTooManyRequests},
	} {
		tc.form.Set("csrf_token", csrf)
		if p := thief.post(tc.path, tc.form); p.status != tc.status {
			t.Fatalf("%s: %d %s; want %d", tc.name, p.status, p.body, tc.status)
		}
		if owner.whoami() == "" {
			t.Fatalf("%s: the newer session ended", tc.name)
		}
	}
	// The newer session ends the older one without the password.
	oc := hidden(owner.get("/account/sessions").body).Get("csrf_token")
	if p := owner.post("/account/sessions/end-others", url.Values{"csrf_token": {oc}}); p.status != http.StatusSeeOther || thief.whoami() != "" || owner.whoami() == "" {
		t.Fatalf("the newer session ending the older: %d, thief %q, owner %q", p.status, thief.whoami(), owner.whoami())
	}
	// Every session, this one too, needs no password.
	oc = hidden(owner.get("/account/sessions").body).Get("csrf_token")
	if p := owner.post("/account/sessions/end-all", url.Values{"csrf_token": {oc}}); p.status != http.StatusSeeOther || owner.whoami() != "" {
		t.Fatalf("end-all: %d", p.status)
	}
}

// TestEndOthersRacingSignIn (re-audit of issue 12, finding 1): someone holding only a copy of an
// older session's cookie presses "Sign out of other sessions" while the person's sign-in on a
// new browser is being checked: the sign-in still makes its session (the end covers only
// sessions signed in by the copy's, and moves no epoch), and the presses that ended nothing
// leave no audit entry.
func TestEndOthersRacingSignIn(t *testing.T) {
	ctx := context.Background()
	var e *pagesEnv
	var thief *browser
	var csrf string
	var armed atomic.Bool
	var mu sync.Mutex
	codes := map[int]int{}
	e = newPagesEnv(t, func(c *Config) {
		c.Users = racingUsers{LocalUsers{Store: c.Store, Gate: c.Gate}, func() {
			if armed.Load() {
				for range 3 {
					st := thief.post("/account/sessions/end-others", url.Values{"csrf_token": {csrf}}).status
					mu.Lock()
					codes[st]++
					mu.Unlock()
				}
			}
		}}
	})
	thief = e.browser()
	thief.signIn("alice")
	csrf = hidden(thief.get("/account/sessions").body).Get("csrf_token")
	e.advance(time.Minute)
	armed.Store(true)
	owner := e.browser()
	if p := owner.post("/login", owner.loginForm("/login", "alice", password)); p.status != http.StatusSeeOther || owner.whoami() == "" {
		t.Fatalf("the owner's sign-in during the presses: %d %s; want 303", p.status, p.body)
	}
	armed.Store(false)
	mu.Lock()
	defer mu.Unlock()
	if codes[http.StatusSeeOther] != 3 {
		t.Fatalf("the presses: %v; want three 303s", codes)
	}
	if thief.whoami() == "" {
		t.Fatal("the copied cookie's session ended; want it alive (it ended none but older ones)")
	}
	if u, _ := e.st.GetUser(ctx, "alice-id"); u.Epoch != 0 {
		t.Fatalf("epoch %d after the presses; want 0", u.Epoch)
	}
	audit, _ := e.st.ListAudit(ctx, 100)
	for _, a := range audit {
		if a.Action == "end_sessions" {
			t.Fatalf("audit entry %+v for presses that ended nothing", a)
		}
	}
	// The newer session still ends the older one without the password, on record.
	oc := hidden(owner.get("/account/sessions").body).Get("csrf_token")
	if p := owner.post("/account/sessions/end-others", url.Values{"csrf_token": {oc}}); p.status != http.StatusSeeOther || thief.whoami() != "" {
		t.Fatalf("the newer session ending the older: %d, thief %q", p.status, thief.whoami())
	}
	audit, _ = e.st.ListAudit(ctx, 100)
	n := 0
	for _, a := range audit {
		if a.Action == "end_sessions" && a.Actor == "user:alice" {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d end_sessions entries after an end that ended one session; want 1", n)
	}
}

// TestSignInRefusedKeepsSignInToken (re-audit of issue 12, finding 1): a sign-in refused because
// the person's sessions were ended while it was checked takes no token of SignInLimiter's: the
// person can try again at once, however often that happened.
func TestSignInRefusedKeepsSignInToken(t *testing.T) {
	ctx := context.Background()
	var e *pagesEnv
	e = newPagesEnv(t, func(c *Config) {
		c.SignInLimiter = ratelimit.New(ratelimit.Config{Burst: 2, PerHour: 1, Now: func() time.Time { return e.clock() }})
		c.Users = racingUsers{LocalUsers{Store: c.Store, Gate: c.Gate}, func() {
			if _, err := e.st.EndSessions(ctx, rescind.SessionFilter{UserID: "alice-id"}, rescind.Revocation{RevokedAt: e.clock()}, rescind.SessionEnd{}); err != nil {
				t.Error(err)
			}
		}}
	})
	for i := range 4 {
		b := e.browser()
		if p := b.post("/login", b.loginForm("/login", "alice", password)); p.status != http.StatusConflict {
			t.Fatalf("sign-in %d during an end of every session: %d; want 409", i, p.status)
		}
	}
}
