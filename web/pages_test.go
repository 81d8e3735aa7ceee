package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
)

const (
	password = "correct horse battery"
	// testIssuer is plain http so that the cookie jar sends the cookies to the test server.
	testIssuer = "http://as.example"
)

var testBox, _ = secret.NewBox([]byte("0123456789abcdef0123456789abcdef"))

// syncBuffer is a log sink the server writes and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pagesEnv is a Server on a real SQLite store, served over loopback with the routes the route
// table of package oauth gives the pages, and a controllable clock.
type pagesEnv struct {
	t       *testing.T
	s       *Server
	st      rescind.Store
	clients *clientreg.Registry
	com     *revocation.Committer
	srv     *httptest.Server
	logs    *syncBuffer
	mu      sync.Mutex
	now     time.Time
}

func (e *pagesEnv) clock() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }

func (e *pagesEnv) advance(d time.Duration) { e.mu.Lock(); e.now = e.now.Add(d); e.mu.Unlock() }

// newPagesEnv starts the pages with the users alice and bob (both with password) and the clients
// "app" and "other"; change, if set, adjusts the configuration first.
func newPagesEnv(t *testing.T, change func(*Config)) *pagesEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	e := &pagesEnv{t: t, st: st, now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), logs: &syncBuffer{}}
	cheap := secret.Params{Memory: 64, Time: 1, Threads: 1}
	for _, name := range []string{"alice", "bob"} {
		h, _ := secret.Hash(password, cheap)
		if err := st.CreateUser(ctx, rescind.User{ID: name + "-id", Username: name, PasswordHash: h, CreatedAt: e.now}); err != nil {
			t.Fatal(err)
		}
	}
	code := []string{rescind.GrantAuthorizationCode}
	for _, c := range []rescind.Client{
		{ID: "app", Name: "Zeta <App>", GrantTypes: code, Scopes: []string{"read"}, RedirectURIs: []string{"https://app.example/cb"}},
		{ID: "other", Name: "alpha", GrantTypes: code, RedirectURIs: []string{"https://other.example/cb"}},
	} {
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	e.clients, _ = clientreg.New(clientreg.Config{Store: st, Now: e.clock})
	e.com = revocation.NewCommitter(st, revocation.NewState(), nil)
	cfg := Config{Issuer: testIssuer, Store: st, Clients: e.clients, Committer: e.com, Box: testBox, Now: e.clock,
		Gate: secret.NewGate(secret.GateConfig{Params: cheap}), Logger: slog.New(slog.NewTextHandler(e.logs, nil))}
	if change != nil {
		change(&cfg)
	}
	if e.s, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", e.s.HandleLoginPage)
	mux.HandleFunc("POST /login", e.s.HandleLogin)
	mux.HandleFunc("POST /logout", e.s.HandleLogout)
	mux.HandleFunc("GET /account/apps", e.s.HandleApps)
	mux.HandleFunc("POST /account/apps/revoke", e.s.HandleRevokeApp)
	mux.HandleFunc("GET /account/sessions", e.s.HandleSessions)
	mux.HandleFunc("POST /account/sessions/end", e.s.HandleEndSession)
	mux.HandleFunc("POST /account/sessions/end-others", e.s.HandleEndOtherSessions)
	mux.HandleFunc("POST /account/sessions/end-all", e.s.HandleEndAllSessions)
	mux.HandleFunc("GET /whoami", func(w http.ResponseWriter, r *http.Request) {
		if u, ok := e.s.SignedIn(r); ok {
			io.WriteString(w, u.Username+" "+u.ID+" "+u.PasswordHash)
		}
	})
	e.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		e.srv.Close()
		e.com.Close()
		st.Close()
	})
	return e
}

// grant stores a grant of user for client.
func (e *pagesEnv) grant(client, user string, scopes ...string) rescind.Grant {
	e.t.Helper()
	id, _ := secret.NewID()
	g, err := e.st.SaveGrant(context.Background(), rescind.Grant{ID: id, ClientID: client, UserID: user, Scopes: scopes,
		CreatedAt: e.clock(), LastUsedAt: e.clock()})
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

// browser is a user agent with cookies that does not follow redirects.
type browser struct {
	e  *pagesEnv
	hc *http.Client
}

func (e *pagesEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is one answer.
type page struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(method, path string, form url.Values) page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequest(method, b.e.srv.URL+path, body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	res, err := b.hc.Do(r)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	text, _ := io.ReadAll(res.Body)
	return page{res.StatusCode, res.Header, string(text)}
}

func (b *browser) get(path string) page { return b.do(http.MethodGet, path, nil) }

func (b *browser) post(path string, form url.Values) page { return b.do(http.MethodPost, path, form) }

// cookie returns the value of the browser's cookie name for the server ("" if none).
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL)
	for _, c := range b.hc.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

var hiddenRE = regexp.MustCompile(`name="(csrf_token|next|request|grant_id)" value="([^"]*)"`)

// hidden returns the hidden fields of the (first) form of body.
func hidden(body string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		if v.Get(m[1]) == "" {
			v.Set(m[1], strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(m[2]))
		}
	}
	return v
}

// loginForm returns the login form's fields, as the login page at path gives them, filled in.
func (b *browser) loginForm(path, user, pass string) url.Values {
	b.e.t.Helper()
	p := b.get(path)
	if p.status != http.StatusOK {
		b.e.t.Fatalf("login page: %d", p.status)
	}
	f := hidden(p.body)
	f.Set("username", user)
	f.Set("password", pass)
	return f
}

// signIn signs user in.
func (b *browser) signIn(user string) {
	b.e.t.Helper()
	if p := b.post("/login", b.loginForm("/login", user, password)); p.status != http.StatusSeeOther {
		b.e.t.Fatalf("login: %d %s", p.status, p.body)
	}
}

// whoami returns what SignedIn says of the browser ("" if no one).
func (b *browser) whoami() string { return b.get("/whoami").body }

// TestLogin: the login form signs a person in only with the right credentials and a CSRF token
// of this browser, sends the browser only to a path of this server afterwards, and says the same
// for an unknown user as for a wrong password.
func TestLogin(t *testing.T) {
	e := newPagesEnv(t, nil)
	cases := []struct {
		name   string
		form   func(b *browser) url.Values
		status int
		where  string // Location on success; else a fragment of the page
	}{
		{"right password", func(b *browser) url.Values { return b.loginForm("/login", "alice", password) }, 303, "/account/apps"},
		{"back to next", func(b *browser) url.Values {
			return b.loginForm("/login?next="+url.QueryEscape("/oauth2/authorize?client_id=app&state=a%2Fb"), "alice", password)
		}, 303, "/oauth2/authorize?client_id=app&state=a%2Fb"},
		{"next elsewhere", func(b *browser) url.Values {
			f := b.loginForm("/login", "alice", password)
			f.Set("next", "//evil.example/x")
			return f
		}, 303, "/account/apps"},
		{"wrong password", func(b *browser) url.Values { return b.loginForm("/login", "alice", "wrong") }, 401, "Wrong username or password."},
		{"unknown user", func(b *browser) url.Values { return b.loginForm("/login", "mallory", password) }, 401, "Wrong username or password."},
		{"no CSRF token", func(b *browser) url.Values {
			f := b.loginForm("/login", "alice", password)
			f.Del("csrf_token")
			return f
		}, 403, "This form has expired."},
		{"another browser's CSRF token", func(b *browser) url.Values {
			f := b.loginForm("/login", "alice", password)
			f.Set("csrf_token", hidden(e.browser().get("/login").body).Get("csrf_token"))
			return f
		}, 403, "This form has expired."},
		{"empty password", func(b *browser) url.Values { return b.loginForm("/login", "alice", "") }, 400, "Enter your username and password."},
		{"password twice", func(b *browser) url.Values {
			f := b.loginForm("/login", "alice", password)
			f.Add("password", password)
			return f
		}, 400, "Enter your username and password."},
		{"oversized form", func(b *browser) url.Values {
			f := b.loginForm("/login", "alice", password)
			f.Set("pad", strings.Repeat("x", 65<<10))
			return f
		}, 400, "The form could not be read."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			p := b.post("/login", tc.form(b))
			if p.status != tc.status {
				t.Fatalf("%d %s; want %d", p.status, p.body, tc.status)
			}
			signedIn := b.whoami() != ""
			if tc.status == http.StatusSeeOther {
				if loc := p.header.Get("Location"); loc != tc.where || !signedIn {
					t.Fatalf("Location %q, signed in %v; want %q and signed in", loc, signedIn, tc.where)
				}
				return
			}
			if !strings.Contains(p.body, tc.where) || signedIn || b.cookie(sessionCookie) != "" {
				t.Fatalf("page %s (signed in %v); want %q and no session", p.body, signedIn, tc.where)
			}
		})
	}
	// The failures are logged with a hash of the name typed, never the name (or password).
	logs := e.logs.String()
	if !strings.Contains(logs, "failed login") || !strings.Contains(logs, "username_hash="+UsernameHash("mallory")) ||
		strings.Contains(logs, "mallory") || strings.Contains(logs, password) {
		t.Fatalf("log:\n%s", logs)
	}
}

// TestUsernameHash: the hash the doc comment tells operators to compute with sha256sum.
func TestUsernameHash(t *testing.T) {
	// printf '%s' alice | sha256sum | cut -c1-16
	if got := UsernameHash("alice"); got != "2bd806c97f0e00af" {
		t.Fatalf("UsernameHash(alice) = %s", got)
	}
}

// TestLoginRateLimit: failed logins empty the address's buckets; while they are empty even the
// right password is refused (429 with Retry-After) without being checked; they refill with time.
func TestLoginRateLimit(t *testing.T) {
	var e *pagesEnv
	e = newPagesEnv(t, func(c *Config) {
		c.Limiter = ratelimit.New(ratelimit.Config{Burst: 2, PerMinute: 1, Now: func() time.Time { return e.clock() }})
	})
	b := e.browser()
	for i, want := range []int{401, 401, 429} {
		if p := b.post("/login", b.loginForm("/login", "alice", "wrong")); p.status != want {
			t.Fatalf("attempt %d: %d; want %d", i, p.status, want)
		}
	}
	p := b.post("/login", b.loginForm("/login", "alice", password))
	if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "60" || b.whoami() != "" {
		t.Fatalf("right password while limited: %d Retry-After %q", p.status, p.header.Get("Retry-After"))
	}
	if !strings.Contains(e.logs.String(), "login rate limited") {
		t.Fatal("the limit is not logged")
	}
	e.advance(time.Minute)
	if p := b.post("/login", b.loginForm("/login", "alice", password)); p.status != http.StatusSeeOther || b.whoami() == "" {
		t.Fatalf("after a minute: %d", p.status)
	}
}

// failingUsers is an Authenticator that fails with err.
type failingUsers struct{ err error }

func (f failingUsers) Authenticate(context.Context, string, string) (rescind.User, error) {
	return rescind.User{}, f.err
}

// TestLoginAuthenticatorError: an authenticator that cannot tell is not a failed attempt (the
// rate limit is not charged): too many password checks at once is a 503 with Retry-After, any
// other failure a 500 page that says nothing of it, logged.
func TestLoginAuthenticatorError(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		log    string
	}{
		{secret.ErrBusy, http.StatusServiceUnavailable, "too many password checks under way"},
		{secret.ErrShareInUse, http.StatusTooManyRequests, "share of the password checks is in use"},
		{errors.New("database is down"), http.StatusInternalServerError, "database is down"},
	} {
		var e *pagesEnv
		e = newPagesEnv(t, func(c *Config) {
			c.Users = failingUsers{tc.err}
			c.Limiter = ratelimit.New(ratelimit.Config{Burst: 1, PerMinute: 1, Now: func() time.Time { return e.clock() }})
		})
		b := e.browser()
		for range 3 { // more than the burst: none of them is charged
			p := b.post("/login", b.loginForm("/login", "alice", password))
			if p.status != tc.status || strings.Contains(p.body, "database") || b.whoami() != "" {
				t.Fatalf("%v: %d %s", tc.err, p.status, p.body)
			}
			if tc.status == http.StatusServiceUnavailable && p.header.Get("Retry-After") != "1" {
				t.Fatalf("busy: Retry-After %q", p.header.Get("Retry-After"))
			}
		}
		if !strings.Contains(e.logs.String(), tc.log) {
			t.Fatalf("%v: not logged:\n%s", tc.err, e.logs.String())
		}
	}
}

// TestLocalUsers: the store's users authenticate with their password; a wrong password and an
// unknown name are both ErrBadCredentials.
func TestLocalUsers(t *testing.T) {
	e := newPagesEnv(t, nil)
	l := LocalUsers{Store: e.st, Gate: secret.NewGate(secret.GateConfig{Params: secret.Params{Memory: 64, Time: 1, Threads: 1}})}
	ctx := context.Background()
	if u, err := l.Authenticate(ctx, "alice", password); err != nil || u.ID != "alice-id" {
		t.Fatalf("alice: %v %v", u, err)
	}
	for _, c := range [][2]string{{"alice", "wrong"}, {"nobody", password}, {"Alice", password}} {
		if _, err := l.Authenticate(ctx, c[0], c[1]); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("%s/%s: %v; want ErrBadCredentials", c[0], c[1], err)
		}
	}
}

// TestApps: the connected apps page lists the person's own active grants by app name, with
// names escaped; a revoked grant or a deleted client's is not listed.
func TestApps(t *testing.T) {
	e := newPagesEnv(t, nil)
	b := e.browser()
	if p := b.get("/account/apps"); p.status != http.StatusSeeOther || p.header.Get("Location") != "/login?next=%2Faccount%2Fapps" {
		t.Fatalf("signed out: %d %q", p.status, p.header.Get("Location"))
	}
	b.signIn("alice")
	if p := b.get("/account/apps"); !strings.Contains(p.body, "No apps have access") {
		t.Fatalf("no grants: %s", p.body)
	}
	e.grant("app", "alice-id", "read")
	other := e.grant("other", "alice-id")
	e.grant("app", "bob-id", "bobs-scope")
	p := b.get("/account/apps")
	zeta, alpha := strings.Index(p.body, `<bdi class="name">Zeta &lt;App&gt;</bdi>`), strings.Index(p.body, `<td><bdi class="name">alpha</bdi></td>`)
	if p.status != http.StatusOK || alpha < 0 || zeta < alpha || strings.Contains(p.body, "<App>") || strings.Contains(p.body, "bobs-scope") {
		t.Fatalf("apps page: %s", p.body)
	}
	if !strings.Contains(p.body, "Signed in as <strong>alice</strong>") || !strings.Contains(p.body, `<li>read</li>`) {
		t.Fatalf("apps page: %s", p.body)
	}
	// The other client is deleted (its grants revoked with it): its row goes.
	until := e.clock().Add(time.Hour)
	if _, err := e.st.DeleteClient(context.Background(), "other", e.clock(), rescind.Revocation{Kind: rescind.RevokeClient,
		Key: "other", ClientID: "other", RevokedAt: until, ExpiresAt: until}); err != nil {
		t.Fatal(err)
	}
	e.clients.Invalidate("other")
	if p := b.get("/account/apps"); strings.Contains(p.body, "alpha") || strings.Contains(p.body, other.ID) {
		t.Fatalf("a deleted client is listed: %s", p.body)
	}
}

// TestRevokeApp: a person revokes their own grant with this browser's CSRF token, and only their
// own: another person's grant id changes nothing.
func TestRevokeApp(t *testing.T) {
	e := newPagesEnv(t, nil)
	mine := e.grant("app", "alice-id", "read")
	bobs := e.grant("app", "bob-id", "read")
	b := e.browser()
	b.signIn("alice")
	csrf := hidden(b.get("/account/apps").body).Get("csrf_token")
	cases := []struct {
		name    string
		browser *browser
		form    url.Values
		status  int
		where   string // Location, or a fragment of the page
		revoked string // the grant revoked, if any
	}{
		{"signed out", e.browser(), url.Values{"csrf_token": {csrf}, "grant_id": {mine.ID}}, 303, "/login?next=%2Faccount%2Fapps", ""},
		{"forged CSRF token", b, url.Values{"csrf_token": {"forged"}, "grant_id": {mine.ID}}, 403, "This form has expired.", ""},
		{"no grant", b, url.Values{"csrf_token": {csrf}}, 400, "No app was chosen.", ""},
		{"grant twice", b, url.Values{"csrf_token": {csrf}, "grant_id": {mine.ID, bobs.ID}}, 400, "No app was chosen.", ""},
		{"someone else's grant", b, url.Values{"csrf_token": {csrf}, "grant_id": {bobs.ID}}, 303, "/account/apps", ""},
		{"unknown grant", b, url.Values{"csrf_token": {csrf}, "grant_id": {"nope"}}, 303, "/account/apps", ""},
		{"own grant", b, url.Values{"csrf_token": {csrf}, "grant_id": {mine.ID}}, 303, "/account/apps", mine.ID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.browser.post("/account/apps/revoke", tc.form)
			if p.status != tc.status || p.status == 303 && p.header.Get("Location") != tc.where || p.status != 303 && !strings.Contains(p.body, tc.where) {
				t.Fatalf("%d %q %s; want %d %q", p.status, p.header.Get("Location"), p.body, tc.status, tc.where)
			}
			for _, g := range []rescind.Grant{mine, bobs} {
				if got := e.com.GrantRevoked(g.ID); got != (g.ID == tc.revoked) {
					t.Fatalf("grant of %s revoked: %v", g.UserID, got)
				}
			}
		})
	}
	if p := b.get("/account/apps"); strings.Contains(p.body, mine.ID) {
		t.Fatalf("a revoked grant is listed: %s", p.body)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "grant revoked by its user") || !strings.Contains(logs, "grant_id="+mine.ID) {
		t.Fatalf("log:\n%s", logs)
	}
}

// TestConsentPages: what the authorization endpoint asks of the pages (oauth.Browser): the
// consent page shows the app and scopes escaped and carries the request back; ReadConsent
// accepts only this browser's form with a decision.
func TestConsentPages(t *testing.T) {
	e := newPagesEnv(t, nil)
	client := rescind.Client{ID: "app", Name: `Evil "<b>" App`}
	request := "client_id=app&state=x%26y&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"
	w := httptest.NewRecorder()
	e.s.ShowConsent(w, httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+request, nil), client,
		rescind.User{ID: "alice-id", Username: "alice"}, []string{"read", "<write>"}, nil, request)
	body := w.Body.String()
	if w.Code != http.StatusOK || strings.Contains(body, "<b>") || strings.Contains(body, "<write>") ||
		!strings.Contains(body, "&lt;write&gt;") || !strings.Contains(body, "Signed in as <strong>alice</strong>") {
		t.Fatalf("consent page %d: %s", w.Code, body)
	}
	if strings.Contains(body, "registered itself") || strings.Contains(body, "identified by") {
		t.Fatalf("an operator's client is marked as self-registered: %s", body)
	}
	// The resources asked for are named, escaped; a client that registered itself is marked,
	// one identified by a metadata document with the host that serves it.
	for _, tc := range []struct {
		client rescind.Client
		want   string
	}{
		{rescind.Client{ID: "dyn", Name: "Agent", Registration: rescind.RegistrationDynamic}, "dynamically registered"},
		{rescind.Client{ID: "https://agent.example:8443/client.json", Name: "Agent", Registration: rescind.RegistrationMetadataDocument},
			"identified by <strong>agent.example:8443</strong>"},
	} {
		w := httptest.NewRecorder()
		e.s.ShowConsent(w, httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+request, nil), tc.client,
			rescind.User{ID: "alice-id", Username: "alice"}, []string{"read"}, []string{"https://api.example/<x>", "urn:example:y"}, request)
		b := w.Body.String()
		if !strings.Contains(b, tc.want) || !strings.Contains(b, "<code>https://api.example/&lt;x&gt;</code>") ||
			!strings.Contains(b, "<code>urn:example:y</code>") {
			t.Fatalf("consent page for %s:\n%s", tc.client.ID, b)
		}
	}
	fields := hidden(body)
	csrf := w.Result().Cookies()
	if fields.Get("request") != request || len(csrf) != 1 || csrf[0].Name != csrfCookie || fields.Get("csrf_token") != csrf[0].Value {
		t.Fatalf("form fields %v, cookies %v", fields, csrf)
	}

	read := func(form url.Values, cookie bool) (string, bool, bool, *httptest.ResponseRecorder) {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/authorize", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if cookie {
			r.AddCookie(csrf[0])
		}
		w := httptest.NewRecorder()
		req, allow, ok := e.s.ReadConsent(w, r)
		return req, allow, ok, w
	}
	form := func(change func(url.Values)) url.Values {
		f := url.Values{"csrf_token": {fields.Get("csrf_token")}, "request": {request}, "decision": {"allow"}}
		change(f)
		return f
	}
	cases := []struct {
		name   string
		form   url.Values
		cookie bool
		allow  bool
		status int // 0 when ok
	}{
		{"allow", form(func(url.Values) {}), true, true, 0},
		{"deny", form(func(f url.Values) { f.Set("decision", "deny") }), true, false, 0},
		{"no decision", form(func(f url.Values) { f.Del("decision") }), true, false, 400},
		{"other decision", form(func(f url.Values) { f.Set("decision", "maybe") }), true, false, 400},
		{"request twice", form(func(f url.Values) { f.Add("request", "client_id=other") }), true, false, 400},
		{"no CSRF cookie", form(func(url.Values) {}), false, false, 403},
		{"forged CSRF token", form(func(f url.Values) { f.Set("csrf_token", strings.Repeat("A", 43)) }), true, false, 403},
		{"oversized form", form(func(f url.Values) { f.Set("pad", strings.Repeat("x", 65<<10)) }), true, false, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, allow, ok, w := read(tc.form, tc.cookie)
			if tc.status == 0 {
				if !ok || allow != tc.allow || req != request || w.Body.Len() != 0 {
					t.Fatalf("ReadConsent = %q %v %v, wrote %d %s", req, allow, ok, w.Code, w.Body)
				}
				return
			}
			if ok || w.Code != tc.status || !strings.Contains(w.Header().Get("Content-Type"), "text/html") {
				t.Fatalf("ReadConsent ok %v, answered %d %s; want %d", ok, w.Code, w.Body, tc.status)
			}
		})
	}
}

// TestSignInAndError: SignIn sends the browser to the login page, which returns it to next after
// signing in; ShowError renders its message escaped with its status.
func TestSignInAndError(t *testing.T) {
	e := newPagesEnv(t, nil)
	next := "/oauth2/authorize?client_id=app&state=a%2Fb&scope=read+write"
	w := httptest.NewRecorder()
	e.s.SignIn(w, httptest.NewRequest(http.MethodGet, next, nil), next)
	loc := w.Header().Get("Location")
	if w.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?") {
		t.Fatalf("SignIn: %d %q", w.Code, loc)
	}
	b := e.browser()
	if p := b.post("/login", b.loginForm(loc, "alice", password)); p.header.Get("Location") != next {
		t.Fatalf("after login: Location %q, want %q", p.header.Get("Location"), next)
	}

	w = httptest.NewRecorder()
	e.s.ShowError(w, httptest.NewRequest(http.MethodGet, "/", nil), http.StatusTeapot, `bad <script>`)
	if w.Code != http.StatusTeapot || !strings.Contains(w.Body.String(), "bad &lt;script&gt;") || strings.Contains(w.Body.String(), "<script>") ||
		w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("ShowError: %d %s", w.Code, w.Body)
	}
}

// TestNewConfig: a Config without a required field is refused.
func TestNewConfig(t *testing.T) {
	e := newPagesEnv(t, nil)
	full := Config{Issuer: testIssuer, Store: e.st, Clients: e.clients, Committer: e.com, Box: testBox}
	for name, change := range map[string]func(*Config){
		"Issuer": func(c *Config) { c.Issuer = "" }, "Store": func(c *Config) { c.Store = nil },
		"Clients": func(c *Config) { c.Clients = nil }, "Committer": func(c *Config) { c.Committer = nil }, "Box": func(c *Config) { c.Box = nil },
	} {
		c := full
		change(&c)
		if _, err := New(c); err == nil {
			t.Errorf("New without %s: no error", name)
		}
	}
	if _, err := New(full); err != nil {
		t.Fatal(err)
	}
}

// TestClientNameIsolated: wherever a page shows a client's name (its own claim, for a
// self-registered client), the name is in a <bdi> of class name, so that its strong
// right-to-left letters do not reorder the text around it ("\u05d0 (Rescind) \u05d1"), and the
// pages' style clips what marks it stacks to its own box (re-audit 3A #7).
func TestClientNameIsolated(t *testing.T) {
	e := newPagesEnv(t, nil)
	const name = "\u05d0 (Rescind) \u05d1"
	client := rescind.Client{ID: "dyn", Name: name, Registration: rescind.RegistrationDynamic}
	consent := httptest.NewRecorder()
	e.s.ShowConsent(consent, httptest.NewRequest(http.MethodGet, "/oauth2/authorize", nil), client,
		rescind.User{ID: "alice-id", Username: "alice"}, []string{"read"}, nil, "client_id=dyn")
	logout := httptest.NewRecorder()
	e.s.ShowLogoutConfirm(logout, httptest.NewRequest(http.MethodGet, "/oauth2/logout", nil), name, "client_id=dyn")
	for page, body := range map[string]string{"consent": consent.Body.String(), "logout": logout.Body.String()} {
		shown, isolated := strings.Count(body, name), strings.Count(body, `<bdi class="name">`+name+`</bdi>`)
		if shown == 0 || shown != isolated {
			t.Errorf("the %s page shows the name %d times, %d of them in <bdi class=\"name\">:\n%s", page, shown, isolated, body)
		}
		if !strings.Contains(body, ".name{display:inline-block;max-width:100%;overflow:hidden;") {
			t.Errorf("the %s page's style does not clip names", page)
		}
	}
}
