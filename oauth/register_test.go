package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/token"
)

// registration is the client information response of RFC 7591 §3.2.1 / RFC 7592 §3.
type registration struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope"`
	TokenFormat             string   `json:"token_format"`
}

func registrationMode(mode string) func(*env, *oauth.Config) {
	return func(_ *env, c *oauth.Config) { c.Registration = mode }
}

// register posts metadata to the registration endpoint with the bearer token auth, if any.
func (e *env) register(metadata, auth string) resp {
	e.t.Helper()
	r := req{path: "/oauth2/register", contentType: "application/json", body: metadata}
	if auth != "" {
		r.rawAuth = "Bearer " + auth
	}
	return e.do(r)
}

func (r resp) registration(t *testing.T) registration {
	t.Helper()
	var reg registration
	if err := json.Unmarshal(r.body, &reg); err != nil {
		t.Fatalf("registration response %s: %v", r.body, err)
	}
	return reg
}

// TestOpenRegistration: RFC 7591 in open mode. A public client registers without credentials
// and gets its information with RFC 7591's defaults and a registration access token; a client
// that asks for a secret is registered public; every registration rule (redirect URIs as for
// the operator's clients, grant and response types, metadata types) refuses with the RFC 7591
// §3.2.2 error.
func TestOpenRegistration(t *testing.T) {
	e := newEnvWith(t, registrationMode(oauth.RegisterOpen))
	r := e.register(`{"client_name":"Agent","redirect_uris":["http://127.0.0.1:33418/callback"],"logo_uri":"https://x.example/l.png","software_id":"x"}`, "")
	if r.status != http.StatusCreated || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("registration: %d %v %s", r.status, r.header, r.body)
	}
	reg := r.registration(t)
	if reg.ClientID == "" || reg.ClientSecret != "" || reg.ClientSecretExpiresAt != nil || reg.TokenEndpointAuthMethod != "none" ||
		!slices.Equal(reg.GrantTypes, []string{"authorization_code"}) || !slices.Equal(reg.ResponseTypes, []string{"code"}) ||
		reg.ClientName != "Agent" || !strings.HasPrefix(reg.RegistrationAccessToken, token.RegistrationAccessPrefix) ||
		reg.RegistrationClientURI != issuer+"/oauth2/register/"+reg.ClientID || reg.ClientIDIssuedAt != e.clock().Unix() {
		t.Fatalf("registration = %+v", reg)
	}
	c, err := e.store.GetClient(context.Background(), reg.ClientID)
	if err != nil || !c.Public || c.Registration != rescind.RegistrationDynamic || c.RegistrationTokenHash != token.Hash(reg.RegistrationAccessToken) {
		t.Fatalf("stored client %+v, %v", c, err)
	}
	if strings.Contains(string(r.body), "logo_uri") || strings.Contains(string(r.body), "software_id") {
		t.Fatalf("metadata not registered is echoed: %s", r.body)
	}

	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"private_key_jwt", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt"}`, 400, "invalid_client_metadata"},
		{"no redirect URIs", `{"client_name":"x"}`, 400, "invalid_redirect_uri"},
		{"empty redirect URIs", `{"redirect_uris":[]}`, 400, "invalid_redirect_uri"},
		{"plain http off loopback", `{"redirect_uris":["http://evil.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"javascript:", `{"redirect_uris":["javascript:alert(1)"]}`, 400, "invalid_redirect_uri"},
		{"a fragment", `{"redirect_uris":["https://a.example/cb#x"]}`, 400, "invalid_redirect_uri"},
		{"a wildcard", `{"redirect_uris":["https://*.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"twice the same", `{"redirect_uris":["https://a.example/cb","https://a.example/cb"]}`, 400, "invalid_redirect_uri"},
		{"a custom scheme without a dot", `{"redirect_uris":["myapp:/cb"]}`, 400, "invalid_redirect_uri"},
		{"redirect_uris a string", `{"redirect_uris":"https://a.example/cb"}`, 400, "invalid_client_metadata"},
		{"grant type password", `{"redirect_uris":["https://a.example/cb"],"grant_types":["password"]}`, 400, "invalid_client_metadata"},
		{"public client credentials", `{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`, 400, "invalid_client_metadata"},
		{"response type token", `{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`, 400, "invalid_client_metadata"},
		{"code without its grant", `{"redirect_uris":["https://a.example/cb"],"grant_types":["refresh_token"],"response_types":["code"]}`, 400, "invalid_client_metadata"},
		{"a malformed scope", `{"redirect_uris":["https://a.example/cb"],"scope":"re\"ad"}`, 400, "invalid_client_metadata"},
		{"scope not a string", `{"redirect_uris":["https://a.example/cb"],"scope":["read"]}`, 400, "invalid_client_metadata"},
		{"a name too long", `{"redirect_uris":["https://a.example/cb"],"client_name":"` + strings.Repeat("n", 201) + `"}`, 400, "invalid_client_metadata"},
		{"a name with a control character", `{"redirect_uris":["https://a.example/cb"],"client_name":"a\u0007b"}`, 400, "invalid_client_metadata"},
		{"a name with a right-to-left override", `{"redirect_uris":["https://a.example/cb"],"client_name":"Rescind \u202eppA nimdA\u202c"}`, 400, "invalid_client_metadata"},
		{"a name with a zero-width space", `{"redirect_uris":["https://a.example/cb"],"client_name":"Resc\u200bind"}`, 400, "invalid_client_metadata"},
		{"a name with a line separator", `{"redirect_uris":["https://a.example/cb"],"client_name":"a\u2028b"}`, 400, "invalid_client_metadata"},
		{"a name with a Hangul filler", `{"redirect_uris":["https://a.example/cb"],"client_name":"Rescind\u3164Admin"}`, 400, "invalid_client_metadata"},
		{"a name with a stack of marks", `{"redirect_uris":["https://a.example/cb"],"client_name":"Z\u0310\u0352\u0315\u0329\u0336"}`, 400, "invalid_client_metadata"},
		{"an unknown token format", `{"redirect_uris":["https://a.example/cb"],"token_format":"paseto"}`, 400, "invalid_client_metadata"},
		{"not an object", `["https://a.example/cb"]`, 400, "invalid_client_metadata"},
		{"two objects", `{"redirect_uris":["https://a.example/cb"]}{}`, 400, "invalid_client_metadata"},
		{"not JSON", `redirect_uris=https://a.example/cb`, 400, "invalid_client_metadata"},
		{"not UTF-8", "{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"\xff\"}", 400, "invalid_client_metadata"},
		{"too large", `{"redirect_uris":["https://a.example/cb"],"pad":"` + strings.Repeat("p", 70<<10) + `"}`, 413, "invalid_client_metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.register(tc.body, ""), tc.status, tc.code)
		})
	}
	r = e.do(req{path: "/oauth2/register", body: "redirect_uris=https://a.example/cb"}) // a form, not JSON
	wantError(t, r, 400, "invalid_client_metadata")

	for _, tc := range []struct {
		name, body string
		check      func(registration) bool
	}{
		{"none given: public, JWT access tokens", `{"redirect_uris":["https://a.example/cb"]}`, func(g registration) bool {
			return g.TokenEndpointAuthMethod == "none" && g.ClientName == "Unnamed app" && g.TokenFormat == "jwt"
		}},
		{"a name in other scripts (only control, format and separator characters are refused)",
			`{"redirect_uris":["https://a.example/cb"],"client_name":"Café 日本 مرحبا"}`, func(g registration) bool {
				return g.ClientName == "Café 日本 مرحبا"
			}},
		{"opaque access tokens", `{"redirect_uris":["https://a.example/cb"],"token_format":"opaque"}`, func(g registration) bool {
			return g.TokenFormat == ""
		}},
		// Open registration makes public clients only: a secret asked for is replaced by none
		// (RFC 7591 §3.2.1), as the MCP SDK's example client asks for client_secret_post.
		{"client_secret_post asked: public", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_post"}`, func(g registration) bool {
			return g.TokenEndpointAuthMethod == "none" && g.ClientSecret == "" && g.ClientSecretExpiresAt == nil
		}},
		{"client_secret_basic asked: public", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`, func(g registration) bool {
			return g.TokenEndpointAuthMethod == "none" && g.ClientSecret == ""
		}},
		{"refresh and code, a private-use scheme", `{"redirect_uris":["com.example.agent:/cb"],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}`, func(g registration) bool {
			return slices.Equal(g.GrantTypes, []string{"authorization_code", "refresh_token"})
		}},
		{"JWT access tokens", `{"redirect_uris":["https://a.example/cb"],"token_format":"jwt","scope":"read read write"}`, func(g registration) bool {
			return g.TokenFormat == "jwt" && g.Scope == "read write"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.register(tc.body, "")
			if r.status != http.StatusCreated || !tc.check(r.registration(t)) {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}

// TestTokenRegistration: in token mode a registration needs a valid, unexpired initial access
// token; confidential clients get a secret, shown once, that authenticates them.
func TestTokenRegistration(t *testing.T) {
	e := newEnvWith(t, registrationMode(oauth.RegisterWithToken))
	text, hash, _ := token.NewStored(token.InitialAccessPrefix)
	if err := e.store.CreateRegistrationToken(context.Background(), rescind.RegistrationToken{ID: "iat", Hash: hash, CreatedAt: e.clock(),
		ExpiresAt: e.clock().Add(time.Hour), Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	const body = `{"client_name":"Backend","grant_types":["client_credentials"],"scope":"read"}`
	for _, tc := range []struct{ name, auth string }{
		{"no token", ""},
		{"a wrong token", token.InitialAccessPrefix + strings.Repeat("A", 43)},
		{"not a token", "garbage"},
		{"the token's hash", hash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.register(body, tc.auth)
			wantError(t, r, 401, "invalid_token")
			if !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer ") {
				t.Fatalf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
		})
	}
	r := e.register(body, text)
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	reg := r.registration(t)
	if reg.TokenEndpointAuthMethod != "client_secret_basic" || len(reg.ClientSecret) < 40 || reg.ClientSecretExpiresAt == nil ||
		*reg.ClientSecretExpiresAt != 0 || len(reg.ResponseTypes) != 0 || len(reg.RedirectURIs) != 0 {
		t.Fatalf("registration = %+v", reg)
	}
	tr := e.do(req{path: "/oauth2/token", body: "grant_type=client_credentials", user: reg.ClientID, pass: reg.ClientSecret})
	if tr.status != 200 || tr.json(t)["scope"] != "read" {
		t.Fatalf("the registered client's token request: %d %s", tr.status, tr.body)
	}
	if c, _ := e.store.GetClient(context.Background(), reg.ClientID); c.SecretHash == "" || strings.Contains(c.SecretHash, reg.ClientSecret) {
		t.Fatal("the secret is not stored as a hash")
	}
	// Public clients may register with a token too, and stay public.
	r = e.register(`{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`, text)
	if r.status != http.StatusCreated {
		t.Fatalf("public client with a token: %d %s", r.status, r.body)
	}
	pub := r.registration(t)
	u := e.do(req{method: "PUT", path: strings.TrimPrefix(pub.RegistrationClientURI, issuer), contentType: "application/json",
		rawAuth: "Bearer " + pub.RegistrationAccessToken,
		body:    `{"client_id":"` + pub.ClientID + `","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"client_secret_basic"}`})
	wantError(t, u, 400, "invalid_client_metadata")
	// The same token works until it expires.
	e.advance(time.Hour)
	wantError(t, e.register(body, text), 401, "invalid_token")
}

// TestSelfRegisteredTokenFormat: clients that register themselves get JWT access tokens
// unless they ask otherwise (a resource server an agent calls checks them without credentials of
// its own), or opaque ones by default when the server is configured so.
func TestSelfRegisteredTokenFormat(t *testing.T) {
	for _, tc := range []struct {
		configured, asked, want string
	}{
		{"", "", rescind.TokenFormatJWT},
		{"", "opaque", rescind.TokenFormatOpaque},
		{rescind.TokenFormatOpaque, "", rescind.TokenFormatOpaque},
		{rescind.TokenFormatOpaque, "jwt", rescind.TokenFormatJWT},
	} {
		e := newEnvWith(t, func(_ *env, c *oauth.Config) {
			c.Registration, c.SelfRegisteredTokenFormat = oauth.RegisterOpen, tc.configured
		})
		body := `{"redirect_uris":["https://a.example/cb"]}`
		if tc.asked != "" {
			body = `{"redirect_uris":["https://a.example/cb"],"token_format":"` + tc.asked + `"}`
		}
		reg := e.register(body, "").registration(t)
		if c, _ := e.store.GetClient(context.Background(), reg.ClientID); c.TokenFormat != tc.want {
			t.Errorf("configured %q, asked %q: %q, want %q", tc.configured, tc.asked, c.TokenFormat, tc.want)
		}
	}
}

// TestOpenRegistrationLimit: open registrations are limited per source address; refused
// registrations do not count.
func TestOpenRegistrationLimit(t *testing.T) {
	e := newEnvWith(t, func(e *env, c *oauth.Config) {
		c.Registration = oauth.RegisterOpen
		c.RegistrationLimiter = ratelimit.New(ratelimit.Config{Burst: 10, PerHour: 10, Now: e.clock})
	})
	const good = `{"redirect_uris":["https://a.example/cb"]}`
	for i := range 10 {
		if r := e.register(good, ""); r.status != http.StatusCreated {
			t.Fatalf("registration %d: %d %s", i, r.status, r.body)
		}
		wantError(t, e.register(`{"redirect_uris":["http://evil.example/cb"]}`, ""), 400, "invalid_redirect_uri")
	}
	r := e.register(good, "")
	wantError(t, r, http.StatusTooManyRequests, "slow_down")
	if r.header.Get("Retry-After") != "360" {
		t.Fatalf("Retry-After = %q, want 360 (10 an hour)", r.header.Get("Retry-After"))
	}
	e.advance(6 * time.Minute)
	if r := e.register(good, ""); r.status != http.StatusCreated {
		t.Fatalf("after six minutes: %d %s", r.status, r.body)
	}
}

// TestRegistrationManagement: RFC 7592. The registration access token reads, replaces and
// deletes its own client's registration and nothing else; deleting revokes every token the
// client holds, and its id is then unknown everywhere.
func TestRegistrationManagement(t *testing.T) {
	e := newEnvWith(t, registrationMode(oauth.RegisterOpen))
	reg := e.register(`{"client_name":"Agent","redirect_uris":["https://agent.example/cb"],"grant_types":["authorization_code","refresh_token"],"scope":"read"}`, "").registration(t)
	other := e.register(`{"redirect_uris":["https://other.example/cb"]}`, "").registration(t)
	path := strings.TrimPrefix(reg.RegistrationClientURI, issuer)
	call := func(method, p, auth, body string) resp {
		r := req{method: method, path: p, body: body, rawAuth: "Bearer " + auth}
		if body != "" {
			r.contentType = "application/json"
		}
		return e.do(r)
	}

	g := call("GET", path, reg.RegistrationAccessToken, "")
	got := g.registration(t)
	if g.status != 200 || got.ClientID != reg.ClientID || got.ClientName != "Agent" || got.RegistrationAccessToken != "" || got.ClientSecret != "" {
		t.Fatalf("read: %d %s", g.status, g.body)
	}
	for name, c := range map[string]struct{ path, auth string }{
		"another client's token":  {path, other.RegistrationAccessToken},
		"a wrong token":           {path, token.RegistrationAccessPrefix + strings.Repeat("B", 43)},
		"an unknown client":       {"/oauth2/register/nobody", reg.RegistrationAccessToken},
		"an operator's client":    {"/oauth2/register/webapp", reg.RegistrationAccessToken},
		"the client's own id":     {path, reg.ClientID},
		"no token":                {path, ""},
		"the token for the other": {strings.TrimPrefix(other.RegistrationClientURI, issuer), reg.RegistrationAccessToken},
	} {
		for _, m := range []string{"GET", "PUT", "DELETE"} {
			body := ""
			if m == "PUT" {
				body = `{"client_id":"` + reg.ClientID + `","redirect_uris":["https://evil.example/cb"]}`
			}
			wantError(t, call(m, c.path, c.auth, body), 401, "invalid_token")
			_ = name
		}
	}

	// Replace: what is sent, with defaults for what is not.
	for _, tc := range []struct{ name, body, code string }{
		{"no client_id", `{"redirect_uris":["https://agent.example/cb2"]}`, "invalid_client_metadata"},
		{"another client_id", `{"client_id":"` + other.ClientID + `","redirect_uris":["https://agent.example/cb2"]}`, "invalid_client_metadata"},
		{"a bad redirect URI", `{"client_id":"` + reg.ClientID + `","redirect_uris":["http://evil.example/cb"]}`, "invalid_redirect_uri"},
		{"a secret it has not", `{"client_id":"` + reg.ClientID + `","client_secret":"x","redirect_uris":["https://agent.example/cb2"]}`, "invalid_client_metadata"},
	} {
		t.Run("update: "+tc.name, func(t *testing.T) {
			wantError(t, call("PUT", path, reg.RegistrationAccessToken, tc.body), 400, tc.code)
		})
	}
	// Open registration: asking for a secret keeps the client public.
	if u := call("PUT", path, reg.RegistrationAccessToken, `{"client_id":"`+reg.ClientID+`","redirect_uris":["https://agent.example/cb"],`+
		`"grant_types":["authorization_code","refresh_token"],"scope":"read","token_endpoint_auth_method":"client_secret_basic"}`); u.status != 200 ||
		u.registration(t).TokenEndpointAuthMethod != "none" || u.registration(t).ClientSecret != "" {
		t.Fatalf("update asking for a secret: %d %s", u.status, u.body)
	}
	u := call("PUT", path, reg.RegistrationAccessToken, `{"client_id":"`+reg.ClientID+`","client_name":"Agent 2","redirect_uris":["https://agent.example/cb2"],"registration_access_token":"ignored"}`)
	upd := u.registration(t)
	if u.status != 200 || upd.ClientName != "Agent 2" || !slices.Equal(upd.RedirectURIs, []string{"https://agent.example/cb2"}) ||
		!slices.Equal(upd.GrantTypes, []string{"authorization_code"}) || upd.Scope != "" || upd.TokenEndpointAuthMethod != "none" {
		t.Fatalf("update: %d %s", u.status, u.body)
	}
	if c, _ := e.clients.Get(context.Background(), reg.ClientID); !slices.Equal(c.RedirectURIs, []string{"https://agent.example/cb2"}) {
		t.Fatalf("the server still has the old registration: %+v", c)
	}

	// Tokens it holds: a grant's access and refresh tokens.
	u = call("PUT", path, reg.RegistrationAccessToken, `{"client_id":"`+reg.ClientID+`","redirect_uris":["https://agent.example/cb"],"grant_types":["authorization_code","refresh_token"]}`)
	if u.status != 200 {
		t.Fatalf("update: %d %s", u.status, u.body)
	}
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("d")
	q := b.approve(authorizeQuery(reg.ClientID, "https://agent.example/cb", "read", challenge))
	form := codeForm(q.Get("code"), "https://agent.example/cb", verifier)
	form.Set("client_id", reg.ClientID)
	tr := e.do(req{path: "/oauth2/token", body: form.Encode()})
	if tr.status != 200 {
		t.Fatalf("the dynamic client's token request: %d %s", tr.status, tr.body)
	}
	access, refresh := tr.json(t)["access_token"].(string), tr.json(t)["refresh_token"].(string)
	if !e.active(access) {
		t.Fatal("its access token is inactive")
	}

	// Delete: 204, durable, and everything it held is revoked.
	if d := call("DELETE", path, reg.RegistrationAccessToken, ""); d.status != http.StatusNoContent || len(d.body) != 0 {
		t.Fatalf("delete: %d %s", d.status, d.body)
	}
	if e.active(access) {
		t.Fatal("the deleted client's access token is active")
	}
	rr := e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}, "client_id": {reg.ClientID}}.Encode()})
	wantError(t, rr, 401, "invalid_client")
	if revs, _ := e.store.RevocationsSince(context.Background(), 0, e.clock(), 100); !slices.ContainsFunc(revs, func(r rescind.Revocation) bool {
		return r.Kind == rescind.RevokeClient && r.Key == reg.ClientID
	}) {
		t.Fatal("no durable client revocation record")
	}
	audit, _ := e.store.ListAudit(context.Background(), 10)
	if len(audit) == 0 || audit[0].Actor != "client:"+reg.ClientID || audit[0].Target != reg.ClientID {
		t.Fatalf("audit = %+v", audit)
	}
	wantError(t, call("GET", path, reg.RegistrationAccessToken, ""), 401, "invalid_token")
	wantError(t, call("DELETE", path, reg.RegistrationAccessToken, ""), 401, "invalid_token")
	// The other client is untouched.
	if g := call("GET", strings.TrimPrefix(other.RegistrationClientURI, issuer), other.RegistrationAccessToken, ""); g.status != 200 {
		t.Fatalf("the other client: %d %s", g.status, g.body)
	}
}

// TestSelfRegisteredScopes: a client that registered itself without scopes may ask for any
// scope, each shown to the person; with the server's scopes configured, only those, at
// registration and at authorization.
func TestSelfRegisteredScopes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		supported  []string
		register   string // scope registered
		regCode    string // registration error; "" for success
		ask        string // scope asked at the authorization endpoint
		authorized bool
	}{
		{"no scopes anywhere: any", nil, "", "", "photos.read calendar", true},
		{"registered scopes bound it", nil, "read", "", "read write", false},
		{"registered scopes: within", nil, "read write", "", "write", true},
		{"server scopes: registered within", []string{"read", "write"}, "read", "", "read", true},
		{"server scopes: registered beyond", []string{"read", "write"}, "admin", "invalid_client_metadata", "", false},
		{"server scopes: none registered, asked within", []string{"read", "write"}, "", "", "read write", true},
		{"server scopes: none registered, asked beyond", []string{"read", "write"}, "", "", "admin", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, func(_ *env, c *oauth.Config) {
				c.Registration, c.ScopesSupported = oauth.RegisterOpen, tc.supported
			})
			body := `{"redirect_uris":["https://agent.example/cb"],"scope":"` + tc.register + `"}`
			r := e.register(body, "")
			if tc.regCode != "" {
				wantError(t, r, 400, tc.regCode)
				return
			}
			reg := r.registration(t)
			b := e.browser()
			b.login("alice")
			_, challenge := pkcePair("s")
			res, page := b.get("/oauth2/authorize?" + authorizeQuery(reg.ClientID, "https://agent.example/cb", tc.ask, challenge))
			if tc.authorized {
				if res.StatusCode != http.StatusOK || !strings.Contains(page, "dynamically registered") {
					t.Fatalf("consent page %d:\n%s", res.StatusCode, page)
				}
				for _, sc := range strings.Fields(tc.ask) {
					if !strings.Contains(page, "<li>"+sc+"</li>") {
						t.Fatalf("consent page does not show %q:\n%s", sc, page)
					}
				}
				return
			}
			u, _ := url.Parse(res.Header.Get("Location"))
			if res.StatusCode != http.StatusSeeOther || u.Query().Get("error") != "invalid_scope" {
				t.Fatalf("%d %s", res.StatusCode, res.Header.Get("Location"))
			}
		})
	}
}

// TestRegistrationOff: by default there is no registration endpoint, and the metadata names
// none.
func TestRegistrationOff(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{"POST", "GET", "OPTIONS"} {
		r := e.do(req{method: m, path: "/oauth2/register", contentType: "application/json", body: `{"redirect_uris":["https://a.example/cb"]}`})
		if r.status != http.StatusNotFound {
			t.Fatalf("%s /oauth2/register: %d %s", m, r.status, r.body)
		}
	}
	md := e.do(req{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	if _, ok := md["registration_endpoint"]; ok {
		t.Fatalf("metadata names a registration endpoint: %v", md)
	}
	with := newEnvWith(t, registrationMode(oauth.RegisterWithToken))
	if md := with.do(req{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t); md["registration_endpoint"] != issuer+"/oauth2/register" {
		t.Fatalf("registration_endpoint = %v", md["registration_endpoint"])
	}
}

// TestSelfRegisteredClientCredentialsScopes: a confidential client that registered itself
// (with an initial access token) gets by client credentials, where no person consents, only
// what an operator explicitly allowed: those of the scopes it registered that its initial
// access token's scopes name (registration-token create --scope, its ScopeLimit), within
// --scopes if set; never a scope it merely asks for, never a default, and nothing at all with a
// token that names no scopes, whatever the operator's own clients hold (re-audit 3A #2). A
// client allowed no scope at all gets no token, not a scopeless one (re-audit 3A #6).
func TestSelfRegisteredClientCredentialsScopes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		supported []string // --scopes
		allowed   []string // the initial access token's scopes; nil: none given
		register  string   // scope registered
		ask       string   // scope asked at the token endpoint
		want      string   // scope granted; "-" for invalid_scope
	}{
		{"token without scopes: registered, asked", nil, nil, "read write", "write", "-"},
		{"token without scopes: an operator's client's scope, asked", nil, nil, "payments:write", "payments:write", "-"},
		{"token without scopes: none asked", nil, nil, "read write", "", "-"},
		{"token without scopes, --scopes: within, asked", []string{"read", "write"}, nil, "read", "read", "-"},
		{"token with scopes: registered, asked", nil, []string{"read", "write"}, "read write", "write", "write"},
		{"token with scopes: none asked: those registered", nil, []string{"read", "deploy", "write"}, "deploy read", "", "deploy read"},
		{"token with scopes: one it did not register, asked", nil, []string{"read", "write"}, "read", "write", "-"},
		{"token with scopes: none registered, asked", nil, []string{"read"}, "", "read", "-"},
		{"token with scopes: none registered, none asked", nil, []string{"read"}, "", "", "-"},
		{"token with scopes, --scopes: within", []string{"read", "admin"}, []string{"admin"}, "admin", "admin", "admin"},
		{"token with empty scopes: none", nil, []string{}, "", "", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnvWith(t, func(_ *env, c *oauth.Config) {
				c.Registration, c.ScopesSupported = oauth.RegisterWithToken, tc.supported
			})
			text, hash, _ := token.NewStored(token.InitialAccessPrefix)
			if err := e.store.CreateRegistrationToken(context.Background(), rescind.RegistrationToken{ID: "iat", Hash: hash,
				CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour), Scopes: tc.allowed}); err != nil {
				t.Fatal(err)
			}
			r := e.register(`{"grant_types":["client_credentials"],"scope":"`+tc.register+`"}`, text)
			if r.status != http.StatusCreated {
				t.Fatalf("registration: %d %s", r.status, r.body)
			}
			reg := r.registration(t)
			tr := e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"client_credentials"}, "scope": {tc.ask}}.Encode(),
				user: reg.ClientID, pass: reg.ClientSecret})
			if tc.want == "-" {
				wantError(t, tr, 400, "invalid_scope")
				return
			}
			if tr.status != 200 {
				t.Fatalf("%d %s; want scope %q", tr.status, tr.body, tc.want)
			}
			if got, _ := tr.json(t)["scope"].(string); got != tc.want {
				t.Fatalf("%d %s; want scope %q", tr.status, tr.body, tc.want)
			}
		})
	}
}

// TestInitialAccessTokenGetsNoOperatorScope: an operator's billing service holds payments:write
// for https://api-b.example/v1. Whoever holds an initial access token made without --scope
// registers a client_credentials client naming payments:write, or naming no scope: neither gets
// payments:write, for api-b (where billing goes) nor for api-a, and no token of theirs is
// active at either with that scope. Re-audit 3A #2.
func TestInitialAccessTokenGetsNoOperatorScope(t *testing.T) {
	e := newEnvWith(t, registrationMode(oauth.RegisterWithToken))
	ctx := context.Background()
	e.addClient(t, rescind.Client{ID: "billing", Name: "Billing service", GrantTypes: []string{rescind.GrantClientCredentials},
		Scopes: []string{"payments:write"}, AllowedResources: []string{resB}})
	text, hash, _ := token.NewStored(token.InitialAccessPrefix)
	if err := e.store.CreateRegistrationToken(ctx, rescind.RegistrationToken{ID: "iat", Hash: hash,
		CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The operator's own client gets it: the scope is real.
	if r := e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"client_credentials"}, "scope": {"payments:write"},
		"resource": {resB}}.Encode(), user: "billing", pass: appSecret}); r.status != 200 {
		t.Fatalf("billing's own token: %d %s", r.status, r.body)
	}
	for _, body := range []string{`{"grant_types":["client_credentials"],"scope":"payments:write"}`, `{"grant_types":["client_credentials"]}`} {
		reg := e.register(body, text).registration(t)
		for _, res := range []string{resB, resA} {
			for _, ask := range []string{"payments:write", ""} {
				tr := e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"client_credentials"}, "scope": {ask},
					"resource": {res}}.Encode(), user: reg.ClientID, pass: reg.ClientSecret})
				if tr.status != 200 {
					continue
				}
				m := tr.json(t)
				if sc, _ := m["scope"].(string); strings.Contains(sc, "payments:write") {
					t.Fatalf("registered %s, asked %q for %s: %s; an initial access token alone got payments:write", body, ask, res, tr.body)
				}
				rs := map[string]string{resB: "rs-b", resA: "rs-a"}[res]
				in := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(m["access_token"].(string)), user: rs, pass: rsSecret})
				if sc, _ := in.json(t)["scope"].(string); strings.Contains(sc, "payments:write") {
					t.Fatalf("introspection by %s: %s", rs, in.body)
				}
			}
		}
	}
}

// TestScopedInitialAccessToken: the scopes of an initial access token bound what its clients
// register (another is invalid_client_metadata) and are kept as each client's operator limit:
// the client's own RFC 7592 update naming another scope does not get it by client credentials,
// and an operator's later narrowing (client update --scope) takes effect at the next request.
func TestScopedInitialAccessToken(t *testing.T) {
	e := newEnvWith(t, registrationMode(oauth.RegisterWithToken))
	ctx := context.Background()
	text, hash, _ := token.NewStored(token.InitialAccessPrefix)
	if err := e.store.CreateRegistrationToken(ctx, rescind.RegistrationToken{ID: "iat", Hash: hash,
		CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Hour), Scopes: []string{"read", "write"}}); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.register(`{"grant_types":["client_credentials"],"scope":"read admin"}`, text), 400, "invalid_client_metadata")
	reg := e.register(`{"grant_types":["client_credentials"],"scope":"read write"}`, text).registration(t)
	if c, err := e.store.GetClient(ctx, reg.ClientID); err != nil || !slices.Equal(c.ScopeLimit, []string{"read", "write"}) {
		t.Fatalf("the registered client's scope limit: %+v, %v; want [read write]", c.ScopeLimit, err)
	}
	ask := func(scope string) resp {
		return e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode(),
			user: reg.ClientID, pass: reg.ClientSecret})
	}
	if r := ask("write"); r.status != 200 {
		t.Fatalf("write: %d %s", r.status, r.body)
	}
	// Its own update to admin: stored as its claim, never granted.
	u := e.do(req{method: "PUT", path: strings.TrimPrefix(reg.RegistrationClientURI, issuer), contentType: "application/json",
		rawAuth: "Bearer " + reg.RegistrationAccessToken,
		body:    `{"client_id":"` + reg.ClientID + `","grant_types":["client_credentials"],"scope":"read write admin"}`})
	if u.status != 200 {
		t.Fatalf("its update: %d %s", u.status, u.body)
	}
	e.clients.Invalidate(reg.ClientID)
	wantError(t, ask("admin"), 400, "invalid_scope")
	// The operator narrows it to read.
	read := []string{"read"}
	if _, err := e.store.UpdateClient(ctx, reg.ClientID, rescind.ClientUpdate{ScopeLimit: &read}); err != nil {
		t.Fatal(err)
	}
	e.clients.Invalidate(reg.ClientID)
	wantError(t, ask("write"), 400, "invalid_scope")
	if r := ask(""); r.status != 200 || r.json(t)["scope"] != "read" {
		t.Fatalf("no scope asked: %d %s; want scope read", r.status, r.body)
	}
}

// TestSelfRegisteredAllowedNoScopeGetsNoToken: an operator's `client update --scope ""` of a
// self-registered client (it allows it none) leaves it no token by client credentials, for any
// audience: invalid_scope, where it had a token before. Re-audit 3A #6.
func TestSelfRegisteredAllowedNoScopeGetsNoToken(t *testing.T) {
	e := newEnvWith(t, registrationMode(oauth.RegisterWithToken))
	ctx := context.Background()
	text, hash, _ := token.NewStored(token.InitialAccessPrefix)
	if err := e.store.CreateRegistrationToken(ctx, rescind.RegistrationToken{ID: "iat", Hash: hash, CreatedAt: e.clock(),
		ExpiresAt: e.clock().Add(time.Hour), Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	reg := e.register(`{"grant_types":["client_credentials"],"scope":"read"}`, text).registration(t)
	ask := func() resp {
		return e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"client_credentials"}, "resource": {resA}}.Encode(),
			user: reg.ClientID, pass: reg.ClientSecret})
	}
	if r := ask(); r.status != 200 || r.json(t)["scope"] != "read" {
		t.Fatalf("before the operator's limit: %d %s", r.status, r.body)
	}
	none := []string{}
	if _, err := e.store.UpdateClient(ctx, reg.ClientID, rescind.ClientUpdate{ScopeLimit: &none}); err != nil {
		t.Fatal(err)
	}
	e.clients.Invalidate(reg.ClientID)
	wantError(t, ask(), 400, "invalid_scope")
	// An operator's own client with no scopes still gets its scopeless tokens.
	if r := e.do(req{path: "/oauth2/token", body: "grant_type=client_credentials", user: "special:id", pass: specialSecret}); r.status != 200 {
		t.Fatalf("an operator's client without scopes: %d %s", r.status, r.body)
	}
}

// TestInitialAccessTokenAllowedResources: the resources an initial access token names
// (registration-token create --allowed-resource) become its clients' allowed resources: a token
// for another is invalid_target, and naming none gets those (never the issuer).
func TestInitialAccessTokenAllowedResources(t *testing.T) {
	e := newEnvWith(t, registrationMode(oauth.RegisterWithToken))
	ctx := context.Background()
	text, hash, _ := token.NewStored(token.InitialAccessPrefix)
	if err := e.store.CreateRegistrationToken(ctx, rescind.RegistrationToken{ID: "iat", Hash: hash, CreatedAt: e.clock(),
		ExpiresAt: e.clock().Add(time.Hour), Scopes: []string{"read"}, AllowedResources: []string{resA}}); err != nil {
		t.Fatal(err)
	}
	reg := e.register(`{"grant_types":["client_credentials"],"scope":"read","token_format":"opaque"}`, text).registration(t)
	if c, err := e.store.GetClient(ctx, reg.ClientID); err != nil || !slices.Equal(c.AllowedResources, []string{resA}) {
		t.Fatalf("the registered client's allowed resources: %v, %v; want [%s]", c.AllowedResources, err, resA)
	}
	ask := func(res ...string) resp {
		return e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"client_credentials"}, "resource": res}.Encode(),
			user: reg.ClientID, pass: reg.ClientSecret})
	}
	wantError(t, ask(resB), 400, "invalid_target")
	wantError(t, ask(issuer), 400, "invalid_target")
	r := ask()
	if r.status != 200 {
		t.Fatalf("naming no resource: %d %s", r.status, r.body)
	}
	if aud := e.audienceOf(t, r.json(t)["access_token"].(string)); !slices.Equal(aud, []string{resA}) {
		t.Fatalf("naming no resource: aud %v, want [%s]", aud, resA)
	}
}

// TestRegistrationUpdateWhileGateBusy: an RFC 7592 update naming the client's secret, checked
// while the secret gate has no place, is answered 503 temporarily_unavailable with Retry-After,
// as a client authentication is, not 500. Re-audit 9 (pre-existing).
func TestRegistrationUpdateWhileGateBusy(t *testing.T) {
	gate := secret.NewGate(secret.GateConfig{Running: 1, Wait: 20 * time.Millisecond, Params: cheap})
	e := newEnvWith(t, func(e *env, c *oauth.Config) {
		c.Registration = oauth.RegisterWithToken
		var err error
		if c.Clients, err = clientreg.New(clientreg.Config{Store: c.Store, Gate: gate}); err != nil {
			t.Fatal(err)
		}
	})
	iat, hash, _ := token.NewStored(token.InitialAccessPrefix)
	if err := e.store.CreateRegistrationToken(context.Background(), rescind.RegistrationToken{ID: "iat", Hash: hash, CreatedAt: e.clock(),
		ExpiresAt: e.clock().Add(time.Hour), Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	reg := e.register(`{"client_name":"Backend","grant_types":["client_credentials"],"scope":"read"}`, iat).registration(t)
	if reg.ClientSecret == "" {
		t.Fatal("no client secret")
	}
	// A slow check holds the gate's one place.
	slow, err := secret.Hash("slow", secret.Params{Memory: 64 * 1024, Time: 4, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		gate.Verify(context.Background(), "slow", slow)
	}()
	t.Cleanup(func() { <-done })
	for start := time.Now(); gate.Running() == 0; time.Sleep(time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the slow check never started")
		}
	}
	u := e.do(req{method: "PUT", path: strings.TrimPrefix(reg.RegistrationClientURI, issuer), contentType: "application/json",
		rawAuth: "Bearer " + reg.RegistrationAccessToken,
		body:    `{"client_id":"` + reg.ClientID + `","client_secret":"` + reg.ClientSecret + `","client_name":"Backend 2","grant_types":["client_credentials"],"scope":"read"}`})
	wantError(t, u, http.StatusServiceUnavailable, "temporarily_unavailable")
	if u.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

// deletingStore deletes client id from its store right after the registration endpoint first
// reads it (the registration access token's check): a DELETE of the registration, or its
// deletion on another instance, landing while an update is under way.
type deletingStore struct {
	rescind.Store
	id   string
	done bool
}

func (s *deletingStore) GetClient(ctx context.Context, id string) (rescind.Client, error) {
	c, err := s.Store.GetClient(ctx, id)
	if err == nil && id == s.id && !s.done {
		s.done = true
		if _, derr := s.Store.DeleteClient(ctx, id, time.Now(), rescind.Revocation{Kind: rescind.RevokeClient, Key: id, ClientID: id,
			RevokedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); derr != nil {
			return c, derr
		}
	}
	return c, err
}

// TestRegistrationUpdateOfADeletedClient: an RFC 7592 update whose client is deleted once its
// registration access token has been checked answers 401 invalid_token, as for a client
// deleted before (§2.1), with and without the client's secret in it, not 500; the client stays
// deleted. Re-audit 10 #2.
func TestRegistrationUpdateOfADeletedClient(t *testing.T) {
	for _, withSecret := range []bool{true, false} {
		t.Run(map[bool]string{true: "with its secret", false: "without"}[withSecret], func(t *testing.T) {
			ds := &deletingStore{}
			e := newEnvWith(t, func(e *env, c *oauth.Config) {
				c.Registration = oauth.RegisterWithToken
				ds.Store = c.Store
				c.Store = ds
			})
			iat, hash, _ := token.NewStored(token.InitialAccessPrefix)
			if err := e.store.CreateRegistrationToken(context.Background(), rescind.RegistrationToken{ID: "iat", Hash: hash, CreatedAt: e.clock(),
				ExpiresAt: e.clock().Add(time.Hour), Scopes: []string{"read"}}); err != nil {
				t.Fatal(err)
			}
			reg := e.register(`{"client_name":"Backend","grant_types":["client_credentials"],"scope":"read"}`, iat).registration(t)
			ds.id = reg.ClientID
			sec := ""
			if withSecret {
				sec = `"client_secret":"` + reg.ClientSecret + `",`
			}
			u := e.do(req{method: "PUT", path: strings.TrimPrefix(reg.RegistrationClientURI, issuer), contentType: "application/json",
				rawAuth: "Bearer " + reg.RegistrationAccessToken,
				body:    `{"client_id":"` + reg.ClientID + `",` + sec + `"client_name":"Backend 2","grant_types":["client_credentials"],"scope":"read"}`})
			if !ds.done {
				t.Fatal("the client was not deleted during the update")
			}
			wantError(t, u, http.StatusUnauthorized, "invalid_token")
			if _, err := e.store.GetClient(context.Background(), reg.ClientID); err == nil {
				t.Fatal("the deleted client is back")
			}
		})
	}
}
