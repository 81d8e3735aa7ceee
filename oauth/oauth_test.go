package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
	"github.com/rescind/rescind/web"
)

// env is a server on a real store (SQLite unless the test picks PostgreSQL) with a
// controllable clock.
type env struct {
	t         testing.TB
	handler   http.Handler
	srv       *httptest.Server
	store     rescind.Store
	state     *revocation.State
	clients   *clientreg.Registry
	committer *revocation.Committer
	server    *oauth.Server
	keys      *token.Keyring
	signer    *token.Signer
	statuses  *statuslist.Allocator
	mu        sync.Mutex
	now       time.Time
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

var cheap = secret.Params{Memory: 64, Time: 1, Threads: 1}

// The clients every test starts with.
var testBox, _ = secret.NewBox([]byte("0123456789abcdef0123456789abcdef"))

const alicePassword = "correct horse battery"

const issuer = "https://as.example"

// Resource identifiers of the resource-server clients.
const (
	resA = "https://api-a.example"
	resB = "https://api-b.example/v1"
	resD = "urn:example:d"
)

const (
	appSecret   = "app-secret"
	otherSecret = "other-secret"
	rsSecret    = "rs-secret"
	// specialSecret has every character RFC 6749 §2.3.1 form-encoding changes.
	specialSecret = "p:a%s+s w\u00e9rd&="
)

func newEnv(t *testing.T) *env { return newEnvTB(t, t) }

// newEnvTB builds the environment for a test or benchmark tb, on SQLite.
func newEnvTB(t testing.TB, _ *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvStore(t, st)
}

// newEnvWith builds the environment on SQLite with the server's configuration changed by
// configure (which may read the env: its store, clients and committer are made).
func newEnvWith(t *testing.T, configure func(*env, *oauth.Config)) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	return newEnvStore(t, st, configure)
}

// newEnvStore builds the environment on st, which it closes at the end of the test; each
// configure changes the server's configuration.
func newEnvStore(t testing.TB, st rescind.Store, configure ...func(*env, *oauth.Config)) *env {
	t.Helper()
	ctx := context.Background()
	var err error
	e := &env{t: t, store: st, state: revocation.NewState(), now: time.Now()}
	add := func(c rescind.Client, plain string) {
		if plain != "" {
			c.SecretHash, err = secret.Hash(plain, cheap)
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	cc := []string{rescind.GrantClientCredentials}
	add(rescind.Client{ID: "app", Name: "App", GrantTypes: cc, Scopes: []string{"read", "write"}}, appSecret)
	add(rescind.Client{ID: "other", Name: "Other", GrantTypes: cc, Scopes: []string{"read"}}, otherSecret)
	add(rescind.Client{ID: "special:id", Name: "Special", GrantTypes: cc}, specialSecret)
	add(rescind.Client{ID: "codeonly", Name: "Code only", GrantTypes: []string{rescind.GrantAuthorizationCode}}, appSecret)
	add(rescind.Client{ID: "pub", Name: "Public", Public: true, GrantTypes: []string{rescind.GrantAuthorizationCode}}, "")
	code := []string{rescind.GrantAuthorizationCode, rescind.GrantRefreshToken}
	add(rescind.Client{ID: "webapp", Name: "Web App", GrantTypes: code, Scopes: []string{"read", "write"},
		RedirectURIs: []string{"https://app.example/cb", "https://app.example/other"}}, appSecret)
	add(rescind.Client{ID: "spa", Name: "Single Page", Public: true, GrantTypes: code, Scopes: []string{"read"},
		RedirectURIs: []string{"https://spa.example/cb"}}, "")
	add(rescind.Client{ID: "plainok", Name: "Plain OK", GrantTypes: code, AllowPlainPKCE: true,
		RedirectURIs: []string{"https://plain.example/cb"}}, appSecret)
	add(rescind.Client{ID: "cconly", Name: "CC only", GrantTypes: cc, RedirectURIs: []string{"https://cc.example/cb"}}, appSecret)
	// JWT clients, and resource servers: for every audience, of one, of others.
	add(rescind.Client{ID: "jwtapp", Name: "JWT App", GrantTypes: cc, Scopes: []string{"read"}, TokenFormat: rescind.TokenFormatJWT}, appSecret)
	add(rescind.Client{ID: "jwtweb", Name: "JWT Web", GrantTypes: code, Scopes: []string{"read"}, TokenFormat: rescind.TokenFormatJWT,
		RedirectURIs: []string{"https://jwt.example/cb"}}, appSecret)
	add(rescind.Client{ID: "rs", Name: "API (every audience)", GrantTypes: cc, ResourceServer: true}, rsSecret)
	add(rescind.Client{ID: "rs-issuer", Name: "API (issuer)", GrantTypes: cc, ResourceServer: true, Resources: []string{issuer}}, rsSecret)
	add(rescind.Client{ID: "rs-a", Name: "API A", GrantTypes: cc, ResourceServer: true, Resources: []string{resA}}, rsSecret)
	add(rescind.Client{ID: "rs-b", Name: "API B", GrantTypes: cc, ResourceServer: true, Resources: []string{"https://unrelated.example", resB}}, rsSecret)
	ph, _ := secret.Hash(alicePassword, cheap)
	if err := st.CreateUser(ctx, rescind.User{ID: "alice-id", Username: "alice", PasswordHash: ph, CreatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	bh, _ := secret.Hash(alicePassword, cheap)
	st.CreateUser(ctx, rescind.User{ID: "bob-id", Username: "bob", PasswordHash: bh, CreatedAt: e.now})

	k, _ := token.NewSealKey()
	kr, _ := token.NewKeyring(k)
	sk, _ := token.NewSigningKey("k1", token.AlgES256, e.now)
	e.keys, e.signer = kr, token.NewSigner(time.Hour, sk)
	e.statuses = &statuslist.Allocator{Recorder: st, Now: e.clock}
	e.clients, _ = clientreg.New(clientreg.Config{Store: st, Now: e.clock})
	met := metrics.New(prometheus.NewRegistry(), func() float64 { return float64(e.state.Len()) })
	com := revocation.NewCommitter(st, e.state, met.Committed)
	e.committer = com
	pages, err := web.New(web.Config{Issuer: issuer, Store: st, Clients: e.clients, Committer: com,
		Box: testBox, Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauth.Config{Issuer: issuer, Clients: e.clients, Keys: kr, Revoked: e.state,
		Committer: com, Metrics: met, Store: st, Pages: pages, AccessTokenTTL: time.Hour, MaxBodyBytes: 4096, Now: e.clock,
		Signer: e.signer, Statuses: e.statuses, HashParams: cheap, DeleteClient: e.deleteClient}
	for _, f := range configure {
		f(e, &cfg)
	}
	s, err := oauth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.CloseStreams)
	e.server = s
	e.handler = s.Handler()
	e.srv = httptest.NewServer(e.handler)
	t.Cleanup(func() {
		e.srv.Close()
		com.Close()
		st.Close()
	})
	return e
}

// deleteClient deletes client id as the admin API does: its deletion and every revocation in
// one transaction, then applied.
func (e *env) deleteClient(ctx context.Context, id, actor, reason string) error {
	until := e.clock().Add(rescind.MaxAccessTokenTTL)
	revs, err := e.store.DeleteClient(ctx, id, e.clock(), rescind.Revocation{Kind: rescind.RevokeClient, Key: id, ClientID: id,
		RevokedAt: until, ExpiresAt: until, Actor: actor, Reason: reason})
	if err != nil {
		return err
	}
	e.committer.Apply(revs...)
	e.clients.Invalidate(id)
	return nil
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not JSON: %v", r.body, err)
	}
	return m
}

// req is one HTTP request to the server.
type req struct {
	method, path, contentType, body string
	user, pass                      string // Basic credentials, form-encoded per RFC 6749 §2.3.1
	rawAuth                         string // an Authorization header sent as is

	dpop []string // DPoP header values (RFC 9449), one per header line
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(user)+":"+url.QueryEscape(pass)))
}

func (e *env) do(r req) resp {
	e.t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.contentType == "" && r.method == http.MethodPost {
		r.contentType = "application/x-www-form-urlencoded"
	}
	hr, err := http.NewRequest(r.method, e.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		e.t.Fatal(err)
	}
	if r.contentType != "-" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	if r.user != "" {
		hr.Header.Set("Authorization", basic(r.user, r.pass))
	}
	if r.rawAuth != "" {
		hr.Header.Set("Authorization", r.rawAuth)
	}
	for _, p := range r.dpop {
		hr.Header.Add("DPoP", p)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// issue gets an access token for client id with secret.
func (e *env) issue(id, sec, scope string) string {
	e.t.Helper()
	body := "grant_type=client_credentials"
	if scope != "" {
		body += "&scope=" + url.QueryEscape(scope)
	}
	r := e.do(req{path: "/oauth2/token", body: body, user: id, pass: sec})
	if r.status != 200 {
		e.t.Fatalf("token request for %s: %d %s", id, r.status, r.body)
	}
	return r.json(e.t)["access_token"].(string)
}

// secrets are the secrets of the env's confidential clients.
var secrets = map[string]string{"app": appSecret, "other": otherSecret, "special:id": specialSecret, "codeonly": appSecret,
	"webapp": appSecret, "plainok": appSecret, "cconly": appSecret, "jwtapp": appSecret, "jwtweb": appSecret,
	"rs": rsSecret, "rs-issuer": rsSecret, "rs-a": rsSecret, "rs-b": rsSecret}

// active reports whether the server says tok is active, asking as a client that may know: the
// resource server for every audience for an access token, the token's own client for a
// refresh token (which no one else may introspect).
func (e *env) active(tok string) bool {
	e.t.Helper()
	caller := "rs"
	if strings.HasPrefix(tok, token.RefreshPrefix) {
		if rt, err := e.store.GetRefreshToken(context.Background(), token.Hash(tok)); err == nil {
			caller = rt.ClientID
		}
	}
	r := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(tok), user: caller, pass: secrets[caller]})
	if r.status != 200 {
		e.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	m := r.json(e.t)
	if m["active"] == false && len(m) != 1 {
		e.t.Fatalf("inactive response has extra members: %s", r.body)
	}
	return m["active"] == true
}

// wantError checks an RFC 6749 §5.2 error response.
func wantError(t *testing.T, r resp, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	m := r.json(t)
	if m["error"] != code {
		t.Fatalf("error = %v, want %q; body %s", m["error"], code, r.body)
	}
	if status == 401 && r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
}

func TestTokenEndpoint(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		r      req
		status int
		code   string // "" for success
		scope  string
	}{
		{name: "basic", r: req{body: "grant_type=client_credentials", user: "app", pass: appSecret}, status: 200, scope: "read write"},
		{name: "post", r: req{body: "grant_type=client_credentials&client_id=app&client_secret=" + appSecret}, status: 200, scope: "read write"},
		{name: "narrower scope", r: req{body: "grant_type=client_credentials&scope=read", user: "app", pass: appSecret}, status: 200, scope: "read"},
		{name: "special characters in Basic", r: req{body: "grant_type=client_credentials", user: "special:id", pass: specialSecret}, status: 200},
		{name: "special characters in post", r: req{body: "grant_type=client_credentials&client_id=" + url.QueryEscape("special:id") + "&client_secret=" + url.QueryEscape(specialSecret)}, status: 200},
		{name: "unencoded Basic secret accepted", r: req{body: "grant_type=client_credentials",
			rawAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("app:"+appSecret))}, status: 200, scope: "read write"},
		{name: "special secret unencoded in Basic", r: req{body: "grant_type=client_credentials",
			rawAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("special%3Aid:"+specialSecret))}, status: 200},
		{name: "special secret as Latin-1 in Basic (Authlib)", r: req{body: "grant_type=client_credentials",
			rawAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("special%3Aid:p:a%s+s w\xe9rd&="))}, status: 200},
		{name: "wrong secret in every encoding", r: req{body: "grant_type=client_credentials",
			rawAuth: "Basic " + base64.StdEncoding.EncodeToString([]byte("special%3Aid:p:a%s+s w\xe8rd&="))}, status: 401, code: "invalid_client"},
		{name: "wider scope", r: req{body: "grant_type=client_credentials&scope=read+admin", user: "app", pass: appSecret}, status: 400, code: "invalid_scope"},
		{name: "malformed scope", r: req{body: "grant_type=client_credentials&scope=" + url.QueryEscape(`re"ad`), user: "app", pass: appSecret}, status: 400, code: "invalid_scope"},
		{name: "wrong secret", r: req{body: "grant_type=client_credentials", user: "app", pass: "nope"}, status: 401, code: "invalid_client"},
		{name: "wrong secret post", r: req{body: "grant_type=client_credentials&client_id=app&client_secret=nope"}, status: 401, code: "invalid_client"},
		{name: "unknown client", r: req{body: "grant_type=client_credentials", user: "ghost", pass: "x"}, status: 401, code: "invalid_client"},
		{name: "no authentication", r: req{body: "grant_type=client_credentials"}, status: 401, code: "invalid_client"},
		{name: "client_id without secret", r: req{body: "grant_type=client_credentials&client_id=app"}, status: 401, code: "invalid_client"},
		{name: "public client", r: req{body: "grant_type=client_credentials&client_id=pub"}, status: 401, code: "invalid_client"},
		{name: "malformed Basic", r: req{body: "grant_type=client_credentials", rawAuth: "Basic !!!"}, status: 401, code: "invalid_client"},
		{name: "two auth methods", r: req{body: "grant_type=client_credentials&client_secret=" + appSecret, user: "app", pass: appSecret}, status: 400, code: "invalid_request"},
		{name: "client not allowed the grant", r: req{body: "grant_type=client_credentials", user: "codeonly", pass: appSecret}, status: 400, code: "unauthorized_client"},
		{name: "missing grant_type", r: req{body: "scope=read", user: "app", pass: appSecret}, status: 400, code: "invalid_request"},
		{name: "unsupported grant_type", r: req{body: "grant_type=password&username=a&password=b", user: "app", pass: appSecret}, status: 400, code: "unsupported_grant_type"},
		{name: "duplicate parameter", r: req{body: "grant_type=client_credentials&scope=read&scope=write", user: "app", pass: appSecret}, status: 400, code: "invalid_request"},
		{name: "JSON body", r: req{contentType: "application/json", body: `{"grant_type":"client_credentials"}`, user: "app", pass: appSecret}, status: 400, code: "invalid_request"},
		{name: "no content type", r: req{contentType: "-", body: "grant_type=client_credentials", user: "app", pass: appSecret}, status: 400, code: "invalid_request"},
		{name: "bad encoding", r: req{body: "grant_type=%zz", user: "app", pass: appSecret}, status: 400, code: "invalid_request"},
		{name: "invalid UTF-8", r: req{body: "grant_type=client_credentials&scope=%ff", user: "app", pass: appSecret}, status: 400, code: "invalid_request"},
		{name: "oversized body", r: req{body: "grant_type=client_credentials&pad=" + strings.Repeat("a", 10000), user: "app", pass: appSecret}, status: 413, code: "invalid_request"},
		{name: "GET", r: req{method: "GET", user: "app", pass: appSecret}, status: 405, code: "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.path = "/oauth2/token"
			r := e.do(tc.r)
			if tc.code != "" {
				wantError(t, r, tc.status, tc.code)
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
				t.Fatalf("token response cacheable: %v", r.header)
			}
			m := r.json(t)
			tok, _ := m["access_token"].(string)
			if !strings.HasPrefix(tok, token.AccessPrefix) || m["token_type"] != "Bearer" || m["expires_in"] != 3600.0 {
				t.Fatalf("response %s", r.body)
			}
			if tc.scope != "" && m["scope"] != tc.scope {
				t.Fatalf("scope = %v, want %q", m["scope"], tc.scope)
			}
			if !e.active(tok) {
				t.Fatal("new token is not active")
			}
		})
	}
}

func TestRevocationRFC7009(t *testing.T) {
	e := newEnv(t)
	revoke := func(tok, hint, user, pass string) resp {
		body := "token=" + url.QueryEscape(tok)
		if hint != "" {
			body += "&token_type_hint=" + hint
		}
		return e.do(req{path: "/oauth2/revoke", body: body, user: user, pass: pass})
	}
	wantOK := func(t *testing.T, r resp) {
		t.Helper()
		if r.status != 200 || len(r.body) != 0 {
			t.Fatalf("status %d body %q; want 200 and an empty body", r.status, r.body)
		}
	}

	t.Run("revoked token is inactive at once", func(t *testing.T) {
		tok := e.issue("app", appSecret, "")
		other := e.issue("app", appSecret, "")
		wantOK(t, revoke(tok, "access_token", "app", appSecret))
		if e.active(tok) {
			t.Fatal("revoked token still active")
		}
		if !e.active(other) {
			t.Fatal("revoking one token revoked another")
		}
		n, _ := e.store.CountRevocations(context.Background())
		if n != 1 {
			t.Fatalf("%d stored records; want 1", n)
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		tok := e.issue("app", appSecret, "")
		wantOK(t, revoke(tok, "", "app", appSecret))
		wantOK(t, revoke(tok, "", "app", appSecret))
	})
	for _, hint := range []string{"refresh_token", "bogus", ""} {
		t.Run("hint "+hint+" still finds the token", func(t *testing.T) {
			tok := e.issue("app", appSecret, "")
			body := "token=" + tok + "&token_type_hint=" + hint
			wantOK(t, e.do(req{path: "/oauth2/revoke", body: body, user: "app", pass: appSecret}))
			if e.active(tok) {
				t.Fatal("token still active")
			}
		})
	}
	t.Run("client_secret_post", func(t *testing.T) {
		tok := e.issue("app", appSecret, "")
		wantOK(t, e.do(req{path: "/oauth2/revoke", body: "token=" + tok + "&client_id=app&client_secret=" + appSecret}))
		if e.active(tok) {
			t.Fatal("token still active")
		}
	})
	t.Run("special-character secret in Basic", func(t *testing.T) {
		tok := e.issue("special:id", specialSecret, "")
		wantOK(t, revoke(tok, "", "special:id", specialSecret))
		if e.active(tok) {
			t.Fatal("token still active")
		}
	})
	t.Run("unknown and malformed tokens get 200", func(t *testing.T) {
		for _, tok := range []string{"nonsense", token.AccessPrefix + "AAAA", strings.Repeat("x", 3000)} {
			wantOK(t, revoke(tok, "", "app", appSecret))
		}
	})
	t.Run("expired token gets 200 and writes nothing", func(t *testing.T) {
		tok := e.issue("app", appSecret, "")
		before, _ := e.store.CountRevocations(context.Background())
		e.advance(2 * time.Hour)
		defer e.advance(-2 * time.Hour)
		wantOK(t, revoke(tok, "", "app", appSecret))
		after, _ := e.store.CountRevocations(context.Background())
		if after != before {
			t.Fatal("revoking an expired token wrote a record")
		}
	})
	t.Run("another client's token is refused and not revoked", func(t *testing.T) {
		tok := e.issue("app", appSecret, "")
		wantError(t, revoke(tok, "", "other", otherSecret), 400, "unauthorized_client")
		if !e.active(tok) {
			t.Fatal("another client revoked the token")
		}
	})
	t.Run("missing token", func(t *testing.T) {
		wantError(t, e.do(req{path: "/oauth2/revoke", body: "token_type_hint=access_token", user: "app", pass: appSecret}), 400, "invalid_request")
	})
	t.Run("wrong secret", func(t *testing.T) {
		tok := e.issue("app", appSecret, "")
		wantError(t, revoke(tok, "", "app", "wrong"), 401, "invalid_client")
		if !e.active(tok) {
			t.Fatal("unauthenticated revocation took effect")
		}
	})
	t.Run("unknown client", func(t *testing.T) {
		wantError(t, revoke("x", "", "ghost", "x"), 401, "invalid_client")
	})
	t.Run("public client revokes with client_id only", func(t *testing.T) {
		wantOK(t, e.do(req{path: "/oauth2/revoke", body: "token=unknown&client_id=pub"}))
	})
	t.Run("GET", func(t *testing.T) {
		r := e.do(req{method: "GET", path: "/oauth2/revoke"})
		wantError(t, r, 405, "invalid_request")
		if r.header.Get("Allow") != "OPTIONS, POST" { // OPTIONS: CORS preflights
			t.Fatalf("Allow = %q", r.header.Get("Allow"))
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		wantError(t, e.do(req{path: "/oauth2/revoke", contentType: "application/json", body: `{"token":"x"}`, user: "app", pass: appSecret}), 400, "invalid_request")
	})
	t.Run("oversized body", func(t *testing.T) {
		r := e.do(req{path: "/oauth2/revoke", body: "token=" + strings.Repeat("a", 1<<20), user: "app", pass: appSecret})
		wantError(t, r, 413, "invalid_request")
	})
	t.Run("duplicate token parameter", func(t *testing.T) {
		wantError(t, e.do(req{path: "/oauth2/revoke", body: "token=a&token=b", user: "app", pass: appSecret}), 400, "invalid_request")
	})
}

func TestIntrospectionRFC7662(t *testing.T) {
	e := newEnv(t)
	intro := func(body, user, pass string) resp {
		return e.do(req{path: "/oauth2/introspect", body: body, user: user, pass: pass})
	}
	tok := e.issue("app", appSecret, "read")

	t.Run("active token members", func(t *testing.T) {
		r := intro("token="+tok, "rs", rsSecret)
		m := r.json(t)
		for k, want := range map[string]any{"active": true, "scope": "read", "client_id": "app", "token_type": "Bearer",
			"iss": "https://as.example", "sub": "app", "aud": "https://as.example"} {
			if m[k] != want {
				t.Errorf("%s = %v, want %v", k, m[k], want)
			}
		}
		exp, iat := m["exp"].(float64), m["iat"].(float64)
		if exp-iat < 3599 || exp-iat > 3600 {
			t.Errorf("exp - iat = %v, want 3600", exp-iat)
		}
		if jti, _ := m["jti"].(string); len(jti) != 22 {
			t.Errorf("jti = %v", m["jti"])
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Error("introspection response is cacheable")
		}
	})
	t.Run("hint is only a hint", func(t *testing.T) {
		if m := intro("token="+tok+"&token_type_hint=refresh_token", "app", appSecret).json(t); m["active"] != true {
			t.Fatal("wrong hint hid the token")
		}
	})
	inactiveCases := map[string]string{
		"unknown":   "rsc_at_unknown",
		"malformed": "%00garbage",
		"long":      strings.Repeat("A", 3000),
	}
	for name, body := range inactiveCases {
		t.Run(name, func(t *testing.T) {
			r := intro("token="+body, "app", appSecret)
			if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"active":false}` {
				t.Fatalf("%d %s; want exactly {\"active\":false}", r.status, r.body)
			}
		})
	}
	t.Run("expired", func(t *testing.T) {
		e.advance(time.Hour)
		defer e.advance(-time.Hour)
		if e.active(tok) {
			t.Fatal("token active at its exp")
		}
	})
	t.Run("missing token", func(t *testing.T) {
		wantError(t, intro("", "app", appSecret), 400, "invalid_request")
	})
	t.Run("caller must authenticate", func(t *testing.T) {
		wantError(t, intro("token="+tok, "", ""), 401, "invalid_client")
		wantError(t, intro("token="+tok, "app", "wrong"), 401, "invalid_client")
		wantError(t, e.do(req{path: "/oauth2/introspect", body: "token=" + tok + "&client_id=pub"}), 401, "invalid_client")
	})
	t.Run("GET", func(t *testing.T) {
		wantError(t, e.do(req{method: "GET", path: "/oauth2/introspect"}), 405, "invalid_request")
	})
}

// TestClientCutoff shows that a client cut-off (written when a client is deleted) kills every
// token issued before it and none issued after.
func TestClientCutoff(t *testing.T) {
	e := newEnv(t)
	before := e.issue("app", appSecret, "")
	e.advance(time.Millisecond)
	now := e.clock()
	e.state.Apply(rescind.Revocation{Kind: rescind.RevokeClient, Key: "app", ClientID: "app", RevokedAt: now, ExpiresAt: now.Add(time.Hour)})
	e.advance(time.Millisecond)
	after := e.issue("app", appSecret, "")
	if e.active(before) {
		t.Fatal("token issued before the cut-off is active")
	}
	if !e.active(after) {
		t.Fatal("token issued after the cut-off is inactive")
	}
}

func TestMetadataRFC8414(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{"/.well-known/oauth-authorization-server"} {
		r := e.do(req{method: "GET", path: p})
		if r.status != 200 {
			t.Fatalf("%s: %d", p, r.status)
		}
		m := r.json(t)
		if m["authorization_endpoint"] != "https://as.example/oauth2/authorize" || fmt.Sprint(m["code_challenge_methods_supported"]) != "[S256]" ||
			fmt.Sprint(m["response_types_supported"]) != "[code]" {
			t.Fatalf("%s: code flow metadata: %s", p, r.body)
		}
		if m["issuer"] != "https://as.example" || m["token_endpoint"] != "https://as.example/oauth2/token" ||
			m["revocation_endpoint"] != "https://as.example/oauth2/revoke" || m["introspection_endpoint"] != "https://as.example/oauth2/introspect" {
			t.Fatalf("%s: %s", p, r.body)
		}
		for _, k := range []string{"grant_types_supported", "response_types_supported", "token_endpoint_auth_methods_supported",
			"revocation_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported"} {
			if _, ok := m[k].([]any); !ok {
				t.Errorf("%s missing %s", p, k)
			}
		}
	}
	wantError(t, e.do(req{method: "GET", path: "/nope"}), 404, "not_found")
	if r := e.do(req{method: "GET", path: "/healthz"}); r.status != 200 {
		t.Fatalf("healthz %d", r.status)
	}
}

// TestMetadataCompleteness: scopes_supported (the scopes of the operator's clients, or those
// configured, with the OpenID Connect scopes), response_modes_supported, the iss parameter (RFC
// 9207) and what metadata documents and registration add; the same document is the OpenID
// Provider metadata at the OpenID Connect discovery path.
func TestMetadataCompleteness(t *testing.T) {
	md := func(e *env) map[string]any {
		r := e.do(req{method: "GET", path: "/.well-known/oauth-authorization-server"})
		if r.status != 200 {
			t.Fatalf("metadata: %d", r.status)
		}
		return r.json(t)
	}
	e := newEnvWith(t, registrationMode(oauth.RegisterOpen))
	m := md(e)
	if fmt.Sprint(m["scopes_supported"]) != "[read write openid profile email]" || fmt.Sprint(m["response_modes_supported"]) != "[query]" ||
		m["authorization_response_iss_parameter_supported"] != true || m["registration_endpoint"] != issuer+"/oauth2/register" {
		t.Fatalf("metadata: %v", m)
	}
	if _, ok := m["client_id_metadata_document_supported"]; ok {
		t.Fatalf("metadata documents advertised while off: %v", m)
	}
	// A client the operator registers adds its scopes; a client that registered itself does not.
	e.addClient(t, rescind.Client{ID: "photos", Name: "Photos", GrantTypes: []string{rescind.GrantClientCredentials}, Scopes: []string{"photos.read"}})
	e.register(`{"redirect_uris":["https://a.example/cb"],"scope":"self.made"}`, "")
	if got := fmt.Sprint(md(e)["scopes_supported"]); got != "[photos.read read write openid profile email]" {
		t.Fatalf("scopes_supported = %s", got)
	}
	configured := newEnvWith(t, func(_ *env, c *oauth.Config) { c.ScopesSupported = []string{"mcp:tools", "read"} })
	if got := fmt.Sprint(md(configured)["scopes_supported"]); got != "[mcp:tools read openid profile email]" {
		t.Fatalf("configured scopes_supported = %s", got)
	}
	if r := e.do(req{method: "GET", path: "/.well-known/openid-configuration"}); r.status != 200 || r.json(t)["userinfo_endpoint"] != issuer+"/oauth2/userinfo" {
		t.Fatalf("OpenID Provider metadata: %d %s", r.status, r.body)
	}

	// iss is on every authorization response (RFC 9207 §2), errors included.
	b := e.browser()
	b.login("alice")
	_, challenge := pkcePair("i")
	for _, q := range []string{authorizeQuery("webapp", "https://app.example/cb", "read", challenge),
		authorizeQuery("webapp", "https://app.example/cb", "admin", challenge)} {
		if v := b.approve(q); v.Get("iss") != issuer {
			t.Fatalf("authorization response %v has no iss", v)
		}
	}
}

// TestConcurrentRevocations revokes many tokens at once and checks each acknowledged
// revocation is both stored and effective.
func TestConcurrentRevocations(t *testing.T) {
	e := newEnv(t)
	const n = 40
	toks := make([]string, n)
	for i := range toks {
		toks[i] = e.issue("app", appSecret, "")
	}
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = e.do(req{path: "/oauth2/revoke", body: "token=" + tok, user: "app", pass: appSecret}).status
		}()
	}
	wg.Wait()
	for i, c := range codes {
		if c != 200 {
			t.Fatalf("revocation %d: status %d", i, c)
		}
		if e.active(toks[i]) {
			t.Fatalf("token %d active after 200", i)
		}
	}
	if got, _ := e.store.CountRevocations(context.Background()); got != n {
		t.Fatalf("%d stored records, want %d", got, n)
	}
}

// TestRevocationStateStaysFlat runs cycles of issue-and-revoke under a steady load and shows
// that once the tokens expire the janitor brings the stored and in-memory revocation state
// back to zero (and the audit log, past its retention): state is bounded by
// revoked-and-unexpired tokens, never by issued ones.
func TestRevocationStateStaysFlat(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	jan := revocation.JanitorConfig{Store: e.store, State: e.state, Grace: time.Minute, AuditRetention: time.Hour, Now: e.clock}
	const perCycle = 50
	for cycle := range 3 {
		for range perCycle {
			tok := e.issue("app", appSecret, "")
			if r := e.do(req{path: "/oauth2/revoke", body: "token=" + tok, user: "app", pass: appSecret}); r.status != 200 {
				t.Fatalf("revoke: %d", r.status)
			}
			e.issue("app", appSecret, "") // issued and never revoked: leaves no trace
		}
		if n, _ := e.store.CountRevocations(ctx); n != perCycle || e.state.Len() != perCycle {
			t.Fatalf("cycle %d: %d stored, %d in memory; want %d each", cycle, n, e.state.Len(), perCycle)
		}
		// Not yet expired: the janitor keeps everything.
		if n, err := jan.Sweep(ctx); err != nil || n != 0 {
			t.Fatalf("cycle %d: sweep before expiry deleted %d (%v)", cycle, n, err)
		}
		e.advance(time.Hour + 2*time.Minute) // past expiry and grace
		if n, err := jan.Sweep(ctx); err != nil || n != 2*perCycle {
			t.Fatalf("cycle %d: sweep deleted %d (%v); want %d records and %d audit entries", cycle, n, err, perCycle, perCycle)
		}
		if n, _ := e.store.CountRevocations(ctx); n != 0 || e.state.Len() != 0 {
			t.Fatalf("cycle %d: after sweep %d stored, %d in memory; want 0", cycle, n, e.state.Len())
		}
		if a, _ := e.store.ListAudit(ctx, 1000); len(a) != 0 {
			t.Fatalf("cycle %d: %d audit entries past retention", cycle, len(a))
		}
	}
}

// BenchmarkIntrospectHandler measures the introspection handler for a valid opaque token, with
// the client's secret verification cached (no network: the handler is called directly).
func BenchmarkIntrospectHandler(b *testing.B) {
	t := &testing.T{}
	e := newEnvTB(b, t)
	tok := e.issue("app", appSecret, "")
	h := e.handler
	body := "token=" + tok
	auth := basic("app", appSecret)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/oauth2/introspect", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
