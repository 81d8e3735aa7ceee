package oauth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/token"
)

// browser is a user agent with cookies that does not follow redirects, so tests see each hop.
type browser struct {
	e  *env
	hc *http.Client
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) get(path string) (*http.Response, string) {
	b.e.t.Helper()
	res, err := b.hc.Get(b.e.srv.URL + path)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return res, sb.String()
}

func (b *browser) post(path string, form url.Values) *http.Response {
	b.e.t.Helper()
	res, err := b.hc.PostForm(b.e.srv.URL+path, form)
	if err != nil {
		b.e.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

var hiddenRE = regexp.MustCompile(`name="(csrf_token|request|next)" value="([^"]*)"`)

func hidden(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], unescapeHTML(m[2]))
	}
	return v
}

func unescapeHTML(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

func (b *browser) login(user string) {
	b.e.t.Helper()
	_, page := b.get("/login")
	form := hidden(page)
	form.Set("username", user)
	form.Set("password", alicePassword)
	if res := b.post("/login", form); res.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("login: %d", res.StatusCode)
	}
}

// pkcePair returns a verifier and its S256 challenge.
func pkcePair(seed string) (string, string) {
	v := strings.Repeat(seed, 64)[:64]
	sum := sha256.Sum256([]byte(v))
	return v, base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeQuery(client, redirect, scope, challenge string) string {
	q := url.Values{"response_type": {"code"}, "client_id": {client}, "state": {"st-1"}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}}
	if redirect != "" {
		q.Set("redirect_uri", redirect)
	}
	if scope != "" {
		q.Set("scope", scope)
	}
	return q.Encode()
}

// approve runs the authorization request query as the logged-in browser, allowing on the
// consent page if it is shown, and returns the redirect's query.
func (b *browser) approve(query string) url.Values {
	b.e.t.Helper()
	res, page := b.get("/oauth2/authorize?" + query)
	if res.StatusCode == http.StatusOK { // consent page
		form := hidden(page)
		form.Set("decision", "allow")
		res = b.post("/oauth2/authorize", form)
	}
	if res.StatusCode != http.StatusSeeOther {
		b.e.t.Fatalf("authorize: %d %s", res.StatusCode, page)
	}
	u, err := url.Parse(res.Header.Get("Location"))
	if err != nil {
		b.e.t.Fatal(err)
	}
	return u.Query()
}

type tokens struct {
	access, refresh string
}

func (e *env) exchange(client, sec string, form url.Values) (resp, tokens) {
	e.t.Helper()
	r := e.do(req{path: "/oauth2/token", body: form.Encode(), user: client, pass: sec})
	if client == "spa" {
		form.Set("client_id", "spa")
		r = e.do(req{path: "/oauth2/token", body: form.Encode()})
	}
	var tk tokens
	if r.status == 200 {
		m := r.json(e.t)
		tk.access, _ = m["access_token"].(string)
		tk.refresh, _ = m["refresh_token"].(string)
	}
	return r, tk
}

func codeForm(code, redirect, verifier string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}}
	if redirect != "" {
		f.Set("redirect_uri", redirect)
	}
	return f
}

// TestCodeFlowRotationAndReuse walks the code flow with PKCE, refreshes twice, and shows that
// reusing a rotated refresh token kills the whole family.
func TestCodeFlowRotationAndReuse(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	verifier, challenge := pkcePair("v")

	// Not logged in: sent to the login page, which returns to the request.
	res, _ := b.get("/oauth2/authorize?" + authorizeQuery("webapp", "https://app.example/cb", "read", challenge))
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login?next=") {
		t.Fatalf("unauthenticated authorize: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	b.login("alice")
	q := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge))
	if q.Get("state") != "st-1" || q.Get("iss") != "https://as.example" || !strings.HasPrefix(q.Get("code"), token.CodePrefix) {
		t.Fatalf("redirect = %v", q)
	}
	r, t1 := e.exchange("webapp", appSecret, codeForm(q.Get("code"), "https://app.example/cb", verifier))
	if r.status != 200 || !strings.HasPrefix(t1.refresh, token.RefreshPrefix) || r.json(t)["scope"] != "read" {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	if !e.active(t1.access) || !e.active(t1.refresh) {
		t.Fatal("new tokens inactive")
	}

	refresh := func(rt string) (resp, tokens) {
		return e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	r, t2 := refresh(t1.refresh)
	if r.status != 200 || t2.refresh == t1.refresh {
		t.Fatalf("first refresh: %d %s", r.status, r.body)
	}
	r, t3 := refresh(t2.refresh)
	if r.status != 200 {
		t.Fatalf("second refresh: %d %s", r.status, r.body)
	}
	if e.active(t1.refresh) {
		t.Fatal("rotated refresh token still active")
	}
	if !e.active(t3.access) || !e.active(t3.refresh) {
		t.Fatal("current tokens inactive")
	}
	// Reuse of the first refresh token: refused, and the whole family dies.
	r, _ = refresh(t1.refresh)
	wantError(t, r, 400, "invalid_grant")
	for name, tok := range map[string]string{"t1 access": t1.access, "t2 access": t2.access, "t3 access": t3.access, "t3 refresh": t3.refresh} {
		if e.active(tok) {
			t.Fatalf("%s active after refresh token reuse", name)
		}
	}
	r, _ = refresh(t3.refresh)
	wantError(t, r, 400, "invalid_grant")

	// A new consent makes a new grant; a returning user with that consent is not asked again.
	q = b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge))
	res, _ = b.get("/oauth2/authorize?" + authorizeQuery("webapp", "https://app.example/cb", "read", challenge))
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "code=") {
		t.Fatalf("returning user asked for consent again: %d", res.StatusCode)
	}
}

func TestAuthorizeErrors(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	_, challenge := pkcePair("c")
	verifier, _ := pkcePair("c")
	q := func(mod func(url.Values)) string {
		v, _ := url.ParseQuery(authorizeQuery("webapp", "https://app.example/cb", "read", challenge))
		mod(v)
		return v.Encode()
	}
	pageCases := map[string]string{
		"unknown client":         q(func(v url.Values) { v.Set("client_id", "ghost") }),
		"missing client":         q(func(v url.Values) { v.Del("client_id") }),
		"unregistered redirect":  q(func(v url.Values) { v.Set("redirect_uri", "https://evil.example/cb") }),
		"redirect prefix":        q(func(v url.Values) { v.Set("redirect_uri", "https://app.example/cb/x") }),
		"ambiguous redirect":     q(func(v url.Values) { v.Del("redirect_uri") }),
		"duplicate redirect_uri": q(func(v url.Values) { v.Add("redirect_uri", "https://app.example/other") }),
	}
	for name, query := range pageCases {
		t.Run(name, func(t *testing.T) {
			res, page := b.get("/oauth2/authorize?" + query)
			if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" || !strings.Contains(page, "<h1>") {
				t.Fatalf("%d %q; want an error page and no redirect", res.StatusCode, res.Header.Get("Location"))
			}
		})
	}
	redirectCases := []struct {
		name, query, code string
	}{
		{"missing response_type", q(func(v url.Values) { v.Del("response_type") }), "invalid_request"},
		{"token response_type", q(func(v url.Values) { v.Set("response_type", "token") }), "unsupported_response_type"},
		{"missing challenge", q(func(v url.Values) { v.Del("code_challenge"); v.Del("code_challenge_method") }), "invalid_request"},
		{"plain refused", q(func(v url.Values) { v.Set("code_challenge", verifier); v.Set("code_challenge_method", "plain") }), "invalid_request"},
		{"no method means plain", q(func(v url.Values) { v.Del("code_challenge_method") }), "invalid_request"},
		{"scope too wide", q(func(v url.Values) { v.Set("scope", "read admin") }), "invalid_scope"},
		{"duplicate state", q(func(v url.Values) { v.Add("state", "x") }), "invalid_request"},
		{"client without the code grant", authorizeQuery("cconly", "", "", challenge), "unauthorized_client"},
		{"prompt none without consent", authorizeQuery("plainok", "", "", challenge) + "&prompt=none", "consent_required"},
	}
	for _, tc := range redirectCases {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := b.get("/oauth2/authorize?" + tc.query)
			loc, _ := url.Parse(res.Header.Get("Location"))
			if res.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("error") != tc.code {
				t.Fatalf("%d %q; want a redirect with error=%s", res.StatusCode, res.Header.Get("Location"), tc.code)
			}
			if st := loc.Query().Get("state"); st != "st-1" && tc.name != "duplicate state" {
				t.Fatalf("state = %q, want it returned unchanged", st)
			}
		})
	}
	t.Run("deny", func(t *testing.T) {
		_, page := b.get("/oauth2/authorize?" + authorizeQuery("plainok", "", "", challenge))
		form := hidden(page)
		form.Set("decision", "deny")
		res := b.post("/oauth2/authorize", form)
		loc, _ := url.Parse(res.Header.Get("Location"))
		if loc.Query().Get("error") != "access_denied" || loc.Host != "plain.example" {
			t.Fatalf("deny: %s", res.Header.Get("Location"))
		}
	})
	t.Run("consent without CSRF token", func(t *testing.T) {
		_, page := b.get("/oauth2/authorize?" + authorizeQuery("plainok", "", "", challenge))
		form := hidden(page)
		form.Set("decision", "allow")
		form.Set("csrf_token", "forged")
		if res := b.post("/oauth2/authorize", form); res.StatusCode != http.StatusForbidden {
			t.Fatalf("forged CSRF: %d", res.StatusCode)
		}
	})
	t.Run("plain allowed for a client that opts in", func(t *testing.T) {
		v, _ := url.ParseQuery(authorizeQuery("plainok", "", "", verifier))
		v.Set("code_challenge_method", "plain")
		qv := b.approve(v.Encode())
		r, _ := e.exchange("plainok", appSecret, codeForm(qv.Get("code"), "", verifier))
		if r.status != 200 {
			t.Fatalf("plain PKCE exchange: %d %s", r.status, r.body)
		}
	})
}

func TestCodeGrantErrors(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("g")
	newCode := func() string {
		return b.approve(authorizeQuery("webapp", "https://app.example/cb", "read write", challenge)).Get("code")
	}
	t.Run("bad verifier", func(t *testing.T) {
		other, _ := pkcePair("x")
		r, _ := e.exchange("webapp", appSecret, codeForm(newCode(), "https://app.example/cb", other))
		wantError(t, r, 400, "invalid_grant")
	})
	t.Run("missing verifier", func(t *testing.T) {
		r, _ := e.exchange("webapp", appSecret, codeForm(newCode(), "https://app.example/cb", ""))
		wantError(t, r, 400, "invalid_grant")
	})
	t.Run("redirect URI mismatch", func(t *testing.T) {
		r, _ := e.exchange("webapp", appSecret, codeForm(newCode(), "https://app.example/other", verifier))
		wantError(t, r, 400, "invalid_grant")
	})
	t.Run("redirect URI omitted though the request had it", func(t *testing.T) {
		r, _ := e.exchange("webapp", appSecret, codeForm(newCode(), "", verifier))
		wantError(t, r, 400, "invalid_grant")
	})
	t.Run("wrong client", func(t *testing.T) {
		r, _ := e.exchange("plainok", appSecret, codeForm(newCode(), "https://app.example/cb", verifier))
		wantError(t, r, 400, "invalid_grant")
	})
	t.Run("expired code", func(t *testing.T) {
		c := newCode()
		e.advance(61 * time.Second)
		defer e.advance(-61 * time.Second)
		r, _ := e.exchange("webapp", appSecret, codeForm(c, "https://app.example/cb", verifier))
		wantError(t, r, 400, "invalid_grant")
	})
	t.Run("malformed code", func(t *testing.T) {
		r, _ := e.exchange("webapp", appSecret, codeForm("nonsense", "https://app.example/cb", verifier))
		wantError(t, r, 400, "invalid_grant")
	})
	t.Run("code reuse revokes what the code issued", func(t *testing.T) {
		c := newCode()
		r, tk := e.exchange("webapp", appSecret, codeForm(c, "https://app.example/cb", verifier))
		if r.status != 200 {
			t.Fatalf("first exchange: %d %s", r.status, r.body)
		}
		r, _ = e.exchange("webapp", appSecret, codeForm(c, "https://app.example/cb", verifier))
		wantError(t, r, 400, "invalid_grant")
		if e.active(tk.access) || e.active(tk.refresh) {
			t.Fatal("tokens issued from a reused code are still active")
		}
	})
	t.Run("public client with PKCE", func(t *testing.T) {
		code := b.approve(authorizeQuery("spa", "", "read", challenge)).Get("code")
		r, tk := e.exchange("spa", "", codeForm(code, "", verifier))
		if r.status != 200 || tk.refresh == "" {
			t.Fatalf("public exchange: %d %s", r.status, r.body)
		}
		// The public client refreshes with client_id alone.
		r = e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}, "client_id": {"spa"}}.Encode()})
		if r.status != 200 {
			t.Fatalf("public refresh: %d %s", r.status, r.body)
		}
	})
	t.Run("refresh errors", func(t *testing.T) {
		_, tk := e.exchange("webapp", appSecret, codeForm(newCode(), "https://app.example/cb", verifier))
		r, _ := e.exchange("plainok", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}})
		wantError(t, r, 400, "invalid_grant")
		if !e.active(tk.refresh) {
			t.Fatal("another client's attempt used up the refresh token")
		}
		r, _ = e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}, "scope": {"read admin"}})
		wantError(t, r, 400, "invalid_scope")
		r, narrow := e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}, "scope": {"read"}})
		if r.status != 200 || r.json(t)["scope"] != "read" {
			t.Fatalf("narrowing refresh: %d %s", r.status, r.body)
		}
		// The narrowed refresh keeps the full grant for the next refresh.
		r, _ = e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {narrow.refresh}, "scope": {"read write"}})
		if r.status != 200 {
			t.Fatalf("refresh after narrowing: %d %s", r.status, r.body)
		}
		r, _ = e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}})
		wantError(t, r, 400, "invalid_request")
	})
}

// TestCascades covers the documented cascade rules.
func TestCascades(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("k")
	grantTokens := func() tokens {
		code := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)).Get("code")
		r, tk := e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
		if r.status != 200 {
			t.Fatalf("exchange: %d %s", r.status, r.body)
		}
		return tk
	}
	revoke := func(tok string) {
		t.Helper()
		if r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(tok), user: "webapp", pass: appSecret}); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
	}
	t.Run("revoking a refresh token revokes the grant", func(t *testing.T) {
		a := grantTokens()
		r, second := e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.refresh}})
		if r.status != 200 {
			t.Fatal(r.status)
		}
		revoke(second.refresh)
		if e.active(a.access) || e.active(second.access) || e.active(second.refresh) {
			t.Fatal("grant tokens survive the revocation of its refresh token")
		}
	})
	t.Run("revoking an access token revokes only it", func(t *testing.T) {
		a := grantTokens()
		r, other := e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.refresh}})
		if r.status != 200 {
			t.Fatal(r.status)
		}
		revoke(other.access)
		if e.active(other.access) {
			t.Fatal("revoked access token active")
		}
		if !e.active(other.refresh) {
			t.Fatal("revoking an access token killed the grant (the setting is off)")
		}
	})
	t.Run("revoking on the apps page revokes the grant", func(t *testing.T) {
		a := grantTokens()
		res, page := b.get("/account/apps")
		if res.StatusCode != 200 || !strings.Contains(page, "Web App") {
			t.Fatalf("apps page: %d", res.StatusCode)
		}
		form := hidden(page)
		m := regexp.MustCompile(`name="grant_id" value="([^"]+)"`).FindStringSubmatch(page)
		form.Set("grant_id", m[1])
		if res := b.post("/account/apps/revoke", form); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke: %d", res.StatusCode)
		}
		if e.active(a.access) || e.active(a.refresh) {
			t.Fatal("tokens survive revocation on the apps page")
		}
		if _, page := b.get("/account/apps"); strings.Contains(page, "Web App") {
			t.Fatal("revoked app still listed")
		}
	})
	t.Run("another user cannot revoke my grant", func(t *testing.T) {
		a := grantTokens()
		bob := e.browser()
		bob.login("bob")
		_, page := bob.get("/account/apps")
		form := hidden(page)
		gs, _ := e.store.ListGrants(t.Context(), grantFilterUser("alice-id"))
		form.Set("grant_id", gs[len(gs)-1].ID)
		bob.post("/account/apps/revoke", form)
		if !e.active(a.access) {
			t.Fatal("bob revoked alice's grant")
		}
	})
}

func grantFilterUser(id string) rescind.GrantFilter { return rescind.GrantFilter{UserID: id} }
