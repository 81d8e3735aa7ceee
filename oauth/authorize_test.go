package oauth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
	"github.com/rescind/rescind/web"
)

// newServer returns a Server on st, which it closes at the end of tb, with the pages pages
// makes from the configuration package web would get (none if pages is nil); change, if any,
// adjusts the configuration first.
func newServer(tb testing.TB, st rescind.Store, pages func(web.Config) oauth.Pages, change ...func(*oauth.Config)) *oauth.Server {
	tb.Helper()
	clients, err := clientreg.New(clientreg.Config{Store: st})
	if err != nil {
		tb.Fatal(err)
	}
	state := revocation.NewState()
	com := revocation.NewCommitter(st, state, nil)
	tb.Cleanup(func() { com.Close(); st.Close() })
	cfg := oauth.Config{Issuer: issuer, Clients: clients, Committer: com, Revoked: state, Store: st,
		Metrics: metrics.New(prometheus.NewRegistry(), func() float64 { return 0 })}
	if pages != nil {
		cfg.Pages = pages(web.Config{Issuer: issuer, Store: st, Clients: clients, Committer: com, Box: testBox})
	}
	k, _ := token.NewSealKey()
	if cfg.Keys, err = token.NewKeyring(k); err != nil {
		tb.Fatal(err)
	}
	for _, c := range change {
		c(&cfg)
	}
	s, err := oauth.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.CloseStreams)
	return s
}

// webPages makes the pages of package web.
func webPages(tb testing.TB) func(web.Config) oauth.Pages {
	return func(cfg web.Config) oauth.Pages {
		p, err := web.New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
}

// FuzzAuthorizeRequest: any authorization request query gets an error page (4xx) or a redirect
// that goes to the login page or to a registered redirect URI: never anywhere else, never a 5xx.
func FuzzAuthorizeRequest(f *testing.F) {
	// One client, so that the one redirect URI the oracle allows is the only one registered.
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "db"))
	if err != nil {
		f.Fatal(err)
	}
	if err := st.CreateClient(context.Background(), rescind.Client{ID: "app", Name: "App", GrantTypes: []string{rescind.GrantAuthorizationCode},
		Scopes: []string{"read"}, RedirectURIs: []string{"https://app.example/cb?x=1"}, CreatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	h := newServer(f, st, webPages(f)).Handler()
	for _, q := range []string{"client_id=app&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
		"client_id=app&redirect_uri=https://evil.example", "client_id=app&response_type=token", "client_id=%00", "redirect_uri=https://app.example/cb?x=1"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/authorize", nil)
		r.URL.RawQuery = q
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusSeeOther:
			loc := w.Header().Get("Location")
			if !strings.HasPrefix(loc, "/login?next=") && !strings.HasPrefix(loc, "https://app.example/cb?") {
				t.Fatalf("query %q redirects to %q", q, loc)
			}
		case w.Code >= 400 && w.Code < 500:
		default:
			t.Fatalf("query %q: status %d", q, w.Code)
		}
	})
}

// fakePages is a hand-written oauth.Pages that records what the authorization endpoint asks of
// it: who is signed in is user (none if nil), and ReadConsent answers consent.
type fakePages struct {
	user    *rescind.User
	consent struct {
		request   string
		allow, ok bool
	}
	// sessionGone: the session ended between SignedIn and Session (Session reports none).
	sessionGone bool
	calls       []string // "SignIn next", "ShowConsent client user scopes [resources=...] request", "ShowError status msg"
}

func (f *fakePages) SignedIn(*http.Request) (rescind.User, bool) {
	if f.user == nil {
		return rescind.User{}, false
	}
	return *f.user, true
}

func (f *fakePages) Session(*http.Request) (rescind.Session, bool) {
	if f.user == nil || f.sessionGone {
		return rescind.Session{}, false
	}
	return rescind.Session{ID: "session-of-" + f.user.ID, UserID: f.user.ID}, true
}

func (f *fakePages) SignIn(w http.ResponseWriter, _ *http.Request, next string) {
	f.calls = append(f.calls, "SignIn "+next)
	w.WriteHeader(http.StatusUnauthorized)
}

func (f *fakePages) ShowConsent(w http.ResponseWriter, _ *http.Request, c rescind.Client, u rescind.User, scopes, resources []string, request string) {
	call := []string{"ShowConsent", c.ID, u.ID, strings.Join(scopes, ",")}
	if len(resources) > 0 {
		call = append(call, "resources="+strings.Join(resources, ","))
	}
	f.calls = append(f.calls, strings.Join(append(call, request), " "))
	w.WriteHeader(http.StatusOK)
}

func (f *fakePages) ReadConsent(w http.ResponseWriter, _ *http.Request) (string, bool, bool) {
	if !f.consent.ok {
		f.calls = append(f.calls, "ReadConsent refused")
		w.WriteHeader(http.StatusForbidden)
	}
	return f.consent.request, f.consent.allow, f.consent.ok
}

func (f *fakePages) ShowError(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	f.calls = append(f.calls, fmt.Sprintf("ShowError %d %s", status, msg))
	w.WriteHeader(status)
}

func (f *fakePages) SignOut(w http.ResponseWriter, _ *http.Request, reason string) error {
	f.calls = append(f.calls, "SignOut "+reason)
	f.user = nil
	return nil
}

func (f *fakePages) ShowLogoutConfirm(w http.ResponseWriter, _ *http.Request, clientName, request string) {
	f.calls = append(f.calls, "ShowLogoutConfirm "+clientName+" "+request)
	w.WriteHeader(http.StatusOK)
}

func (f *fakePages) ReadLogoutConfirm(w http.ResponseWriter, _ *http.Request) (string, bool, bool) {
	f.calls = append(f.calls, "ReadLogoutConfirm")
	return "", false, false
}

func (f *fakePages) ShowLogoutResubmit(w http.ResponseWriter, _ *http.Request, params url.Values) {
	f.calls = append(f.calls, "ShowLogoutResubmit "+params.Encode())
	w.WriteHeader(http.StatusOK)
}

func (f *fakePages) ShowSignedOut(w http.ResponseWriter, _ *http.Request, signedOut bool) {
	f.calls = append(f.calls, fmt.Sprintf("ShowSignedOut %v", signedOut))
	w.WriteHeader(http.StatusOK)
}

func (f *fakePages) HandleLoginPage(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}
func (f *fakePages) HandleLogin(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}
func (f *fakePages) HandleLogout(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}
func (f *fakePages) HandleApps(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}
func (f *fakePages) HandleRevokeApp(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}
func (f *fakePages) HandleSessions(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}
func (f *fakePages) HandleEndSession(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}
func (f *fakePages) HandleEndOtherSessions(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}
func (f *fakePages) HandleEndAllSessions(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusTeapot)
}

// faultyStore fails the calls the authorization endpoint makes whose method is named in fail.
type faultyStore struct {
	rescind.Store
	fail map[string]bool
}

var errStore = errors.New("database is locked (secret detail)")

func (f *faultyStore) ListGrants(ctx context.Context, flt rescind.GrantFilter) ([]rescind.Grant, error) {
	if f.fail["ListGrants"] {
		return nil, errStore
	}
	return f.Store.ListGrants(ctx, flt)
}

func (f *faultyStore) SaveGrant(ctx context.Context, g rescind.Grant) (rescind.Grant, error) {
	if f.fail["SaveGrant"] {
		return rescind.Grant{}, errStore
	}
	return f.Store.SaveGrant(ctx, g)
}

func (f *faultyStore) CreateCode(ctx context.Context, c rescind.AuthCode) error {
	if f.fail["CreateCode"] {
		return errStore
	}
	return f.Store.CreateCode(ctx, c)
}

// TestAuthorizeDecides: the authorization endpoint decides and the pages only show. With pages
// that record what they are asked (and no browser): who must sign in and where they come back
// to, when consent is asked and with what, what a code is bound to and how long it lives, and
// that a failing store is an error page, never a redirect.
func TestAuthorizeDecides(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	code := []string{rescind.GrantAuthorizationCode}
	st.CreateClient(ctx, rescind.Client{ID: "app", Name: "App", GrantTypes: code, Scopes: []string{"read", "write"},
		RedirectURIs: []string{"https://app.example/cb?keep=1"}})
	for _, c := range []rescind.Client{
		{ID: "mobile", Name: "Mobile", Public: true, GrantTypes: code, Scopes: []string{"read"}, RedirectURIs: []string{"https://app.example/cb?keep=1"}},
		{ID: "own", Name: "Own", Public: true, FirstParty: true, GrantTypes: code, Scopes: []string{"read"}, RedirectURIs: []string{"https://app.example/cb?keep=1"}},
	} {
		st.CreateClient(ctx, c)
	}
	st.CreateUser(ctx, rescind.User{ID: "alice-id", Username: "alice", CreatedAt: now})
	// The session fakePages reports: codes are stored only in a session that exists.
	st.CreateSession(ctx, rescind.Session{ID: "session-of-alice-id", Hash: "h", UserID: "alice-id", CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(time.Hour)})
	fs := &faultyStore{Store: st, fail: map[string]bool{}}
	pages := &fakePages{}
	var logs syncBuffer
	h := newServer(t, fs, func(web.Config) oauth.Pages { return pages }, func(c *oauth.Config) {
		c.Now = func() time.Time { return now }
		c.CodeTTL = 30 * time.Second
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	}).Handler()

	_, challenge := pkcePair("d")
	query := "response_type=code&client_id=app&state=s%2F1&scope=read&code_challenge=" + challenge + "&code_challenge_method=S256"
	get := func(q string) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/oauth2/authorize?"+q, nil))
		return w
	}
	post := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodPost, "/oauth2/authorize", strings.NewReader("x=1"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		h.ServeHTTP(w, r)
		return w
	}
	// redirected returns the query of the redirect w sends the browser to at the client.
	redirected := func(t *testing.T, w *httptest.ResponseRecorder) url.Values {
		t.Helper()
		loc, err := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusSeeOther || err != nil || loc.Scheme+"://"+loc.Host+loc.Path != "https://app.example/cb" {
			t.Fatalf("%d %q; want a redirect to the client", w.Code, w.Header().Get("Location"))
		}
		q := loc.Query()
		if q.Get("keep") != "1" || q.Get("state") != "s/1" || q.Get("iss") != issuer {
			t.Fatalf("redirect query %v; want the registered query, state and iss kept", q)
		}
		return q
	}
	calls := func(t *testing.T, want ...string) {
		t.Helper()
		if !slices.Equal(pages.calls, want) {
			t.Fatalf("pages asked %q; want %q", pages.calls, want)
		}
		pages.calls = nil
	}

	t.Run("signed out", func(t *testing.T) {
		if w := get(query); w.Code != http.StatusUnauthorized {
			t.Fatalf("%d", w.Code)
		}
		calls(t, "SignIn /oauth2/authorize?"+query)
	})
	t.Run("signed out, prompt=none", func(t *testing.T) {
		if q := redirected(t, get(query+"&prompt=none")); q.Get("error") != "login_required" {
			t.Fatalf("%v", q)
		}
		calls(t)
	})
	t.Run("bad client: error page", func(t *testing.T) {
		get("client_id=ghost&response_type=code")
		calls(t, "ShowError 400 The request names an unknown client.")
	})
	pages.user = &rescind.User{ID: "alice-id", Username: "alice"}
	t.Run("no grant: consent asked", func(t *testing.T) {
		if w := get(query); w.Code != http.StatusOK {
			t.Fatalf("%d", w.Code)
		}
		calls(t, "ShowConsent app alice-id read "+query)
	})
	t.Run("prompt=none without consent", func(t *testing.T) {
		if q := redirected(t, get(query+"&prompt=none")); q.Get("error") != "consent_required" {
			t.Fatalf("%v", q)
		}
		calls(t)
	})
	t.Run("consent form refused by the pages", func(t *testing.T) {
		pages.consent.request, pages.consent.allow, pages.consent.ok = query, true, false
		if w := post(); w.Code != http.StatusForbidden || w.Header().Get("Location") != "" {
			t.Fatalf("%d %q", w.Code, w.Header().Get("Location"))
		}
		calls(t, "ReadConsent refused")
		if gs, _ := st.ListGrants(ctx, rescind.GrantFilter{UserID: "alice-id"}); len(gs) != 0 {
			t.Fatalf("grants %v", gs)
		}
	})
	t.Run("denied", func(t *testing.T) {
		pages.consent.request, pages.consent.allow, pages.consent.ok = query, false, true
		if q := redirected(t, post()); q.Get("error") != "access_denied" || q.Get("code") != "" {
			t.Fatalf("%v", q)
		}
		if gs, _ := st.ListGrants(ctx, rescind.GrantFilter{UserID: "alice-id"}); len(gs) != 0 {
			t.Fatalf("grants %v", gs)
		}
	})
	t.Run("consent carrying a bad request", func(t *testing.T) {
		pages.consent.request, pages.consent.allow, pages.consent.ok = "client_id=app&response_type=code&redirect_uri=https://evil.example/cb", true, true
		post()
		calls(t, "ShowError 400 The redirect_uri is not registered for this client.")
	})
	t.Run("store fails saving the grant", func(t *testing.T) {
		fs.fail["SaveGrant"] = true
		defer delete(fs.fail, "SaveGrant")
		pages.consent.request, pages.consent.allow, pages.consent.ok = query, true, true
		if w := post(); w.Header().Get("Location") != "" {
			t.Fatalf("redirected to %q", w.Header().Get("Location"))
		}
		calls(t, "ShowError 500 The server could not complete this request. Please try again.")
	})
	var granted url.Values
	t.Run("allowed: a code bound to the request", func(t *testing.T) {
		pages.consent.request, pages.consent.allow, pages.consent.ok = query, true, true
		granted = redirected(t, post())
		ac, err := st.GetCode(ctx, token.Hash(granted.Get("code")))
		if err != nil {
			t.Fatal(err)
		}
		if ac.ClientID != "app" || ac.UserID != "alice-id" || ac.RedirectURI != "https://app.example/cb?keep=1" || ac.RedirectURIGiven ||
			ac.Scope != "read" || ac.Challenge != challenge || ac.ChallengeMethod != "S256" || !ac.ExpiresAt.Equal(now.Add(30*time.Second)) ||
			ac.SessionID != "session-of-alice-id" {
			t.Fatalf("code %+v", ac)
		}
		if g, err := st.GetGrant(ctx, ac.GrantID); err != nil || g.SessionID != "session-of-alice-id" {
			t.Fatalf("grant %+v %v; want it to record the session it was made in", g, err)
		}
		calls(t)
	})
	t.Run("granted: no consent asked again for the same scopes", func(t *testing.T) {
		q := redirected(t, get(query))
		if q.Get("code") == "" || q.Get("code") == granted.Get("code") {
			t.Fatalf("%v", q)
		}
		calls(t)
	})
	// The session ends between SignedIn and Session: no code (nor grant) is made without it.
	t.Run("session gone: no code, sign in", func(t *testing.T) {
		pages.sessionGone = true
		defer func() { pages.sessionGone = false }()
		before, _ := st.ListGrants(ctx, rescind.GrantFilter{UserID: "alice-id"})
		if w := get(query); w.Code != http.StatusUnauthorized || w.Header().Get("Location") != "" {
			t.Fatalf("authorize: %d %q", w.Code, w.Header().Get("Location"))
		}
		calls(t, "SignIn /oauth2/authorize?"+query)
		if q := redirected(t, get(query+"&prompt=none")); q.Get("error") != "login_required" || q.Get("code") != "" {
			t.Fatalf("prompt=none: %v", q)
		}
		calls(t)
		pages.consent.request, pages.consent.allow, pages.consent.ok = query, true, true
		if w := post(); w.Code != http.StatusUnauthorized || w.Header().Get("Location") != "" {
			t.Fatalf("consent: %d %q", w.Code, w.Header().Get("Location"))
		}
		calls(t, "SignIn /oauth2/authorize?"+query)
		if after, _ := st.ListGrants(ctx, rescind.GrantFilter{UserID: "alice-id"}); len(after) != len(before) {
			t.Fatalf("grants %d -> %d; want none made without the session", len(before), len(after))
		}
	})
	t.Run("wider scopes: consent asked", func(t *testing.T) {
		wider := strings.Replace(query, "scope=read", "scope=read+write", 1)
		get(wider)
		calls(t, "ShowConsent app alice-id read,write "+wider)
	})
	// A public client's id can be claimed by anyone (RFC 8252 §8.6): consent is asked every
	// time, unless an operator registered it as first-party; a confidential client (above) is
	// not asked again.
	for _, tc := range []struct {
		client   string
		askAgain bool
	}{{"mobile", true}, {"own", false}} {
		t.Run("public client "+tc.client+": consent every time "+fmt.Sprint(tc.askAgain), func(t *testing.T) {
			q := strings.Replace(query, "client_id=app", "client_id="+tc.client, 1)
			get(q)
			calls(t, "ShowConsent "+tc.client+" alice-id read "+q)
			pages.consent.request, pages.consent.allow, pages.consent.ok = q, true, true
			if code := redirected(t, post()).Get("code"); code == "" {
				t.Fatal("no code after consent")
			}
			w := get(q)
			if tc.askAgain {
				calls(t, "ShowConsent "+tc.client+" alice-id read "+q)
				if e := redirected(t, get(q+"&prompt=none")).Get("error"); e != "consent_required" {
					t.Fatalf("prompt=none: %q; want consent_required", e)
				}
				return
			}
			if redirected(t, w).Get("code") == "" {
				t.Fatal("no code")
			}
			calls(t)
		})
	}
	for _, method := range []string{"ListGrants", "CreateCode"} {
		t.Run("store fails: "+method, func(t *testing.T) {
			fs.fail[method] = true
			defer delete(fs.fail, method)
			if w := get(query); w.Header().Get("Location") != "" {
				t.Fatalf("redirected to %q", w.Header().Get("Location"))
			}
			calls(t, "ShowError 500 The server could not complete this request. Please try again.")
		})
	}
	if !strings.Contains(logs.String(), errStore.Error()) {
		t.Fatalf("store failures not logged:\n%s", logs.String())
	}

	// OpenID Connect (Core 1.0 §3.1.2.1): alice has granted app "read" above; her session
	// (fakePages) authenticated at the zero time, long before now.
	oidc := query + "&nonce=n-0S6_WzA2Mj"
	t.Run("openid: the code carries the nonce and the session's auth_time", func(t *testing.T) {
		q := redirected(t, get(oidc))
		ac, err := st.GetCode(ctx, token.Hash(q.Get("code")))
		if err != nil || ac.Nonce != "n-0S6_WzA2Mj" || ac.SessionID != "session-of-alice-id" {
			t.Fatalf("code %+v %v", ac, err)
		}
		calls(t)
	})
	t.Run("prompt=login: sign in again, then carry on without it", func(t *testing.T) {
		get(oidc + "&prompt=login")
		if len(pages.calls) != 1 || !strings.HasPrefix(pages.calls[0], "SignIn /oauth2/authorize?") || strings.Contains(pages.calls[0], "prompt") ||
			!strings.Contains(pages.calls[0], "nonce=n-0S6_WzA2Mj") {
			t.Fatalf("pages asked %q", pages.calls)
		}
		pages.calls = nil
	})
	t.Run("max_age older than the sign-in: sign in again", func(t *testing.T) {
		get(oidc + "&max_age=60")
		if len(pages.calls) != 1 || !strings.HasPrefix(pages.calls[0], "SignIn ") || strings.Contains(pages.calls[0], "max_age") {
			t.Fatalf("pages asked %q", pages.calls)
		}
		pages.calls = nil
		// Recent enough: a code.
		if q := redirected(t, get(oidc+"&max_age=99999999999")); q.Get("code") == "" {
			t.Fatalf("%v", q)
		}
		calls(t)
	})
	t.Run("prompt=none with max_age exceeded: login_required", func(t *testing.T) {
		if q := redirected(t, get(oidc+"&prompt=none&max_age=60")); q.Get("error") != "login_required" {
			t.Fatalf("%v", q)
		}
		calls(t)
	})
	t.Run("prompt=consent: the consent page although granted", func(t *testing.T) {
		get(oidc + "&prompt=consent")
		calls(t, "ShowConsent app alice-id read "+oidc+"&prompt=consent")
	})
	for name, bad := range map[string]string{
		"unknown prompt":       "&prompt=sometimes",
		"none with login":      "&prompt=none+login",
		"negative max_age":     "&max_age=-1",
		"forged id_token_hint": "&id_token_hint=eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
	} {
		t.Run("invalid_request: "+name, func(t *testing.T) {
			if q := redirected(t, get(oidc+bad)); q.Get("error") != "invalid_request" || q.Get("code") != "" {
				t.Fatalf("%v", q)
			}
			calls(t)
		})
	}
}

// syncBuffer is a log sink written by the server and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
