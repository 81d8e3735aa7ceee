package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rescind/rescind"
)

// TestAuthorizeRedirectRules: at the authorization endpoint a loopback redirect URI matches
// with any port (RFC 8252 §7.3) and nothing else may differ; the code is bound to the URI
// actually used; and a client registered before the registration rules existed (a
// javascript: URI, plain http off loopback) gets an error page, never a redirect.
func TestAuthorizeRedirectRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	code := []string{rescind.GrantAuthorizationCode}
	for _, c := range []rescind.Client{
		{ID: "native", Name: "Native", Public: true, GrantTypes: code, RedirectURIs: []string{"http://127.0.0.1/cb", "http://[::1]/cb"}},
		{ID: "legacy-js", Name: "Legacy", Public: true, GrantTypes: code, RedirectURIs: []string{"javascript:alert(1)//"}},
		{ID: "legacy-http", Name: "Legacy http", Public: true, GrantTypes: code, RedirectURIs: []string{"http://evil.example/cb"}},
		{ID: "dev-http", Name: "Dev http", Public: true, GrantTypes: code, RedirectURIs: []string{"http://dev.example/cb"}, AllowInsecureRedirect: true},
	} {
		if err := e.store.CreateClient(ctx, c); err != nil { // as if registered before the rules
			t.Fatal(err)
		}
	}
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("n")
	for _, tc := range []struct {
		client, redirect string
		ok               bool
	}{
		{"native", "http://127.0.0.1:51234/cb", true},
		{"native", "http://127.0.0.1/cb", true},
		{"native", "http://[::1]:61000/cb", true},
		{"native", "http://127.0.0.1:51234/cb/../other", false},
		{"native", "http://127.0.0.1:51234/cb?x=1", false},
		{"native", "http://localhost:51234/cb", false},
		{"native", "https://127.0.0.1:51234/cb", false},
		{"webapp", "https://app.example:8443/cb", false}, // not loopback: exact only
		{"legacy-js", "javascript:alert(1)//", false},
		{"legacy-js", "", false},
		{"legacy-http", "http://evil.example/cb", false},
		{"dev-http", "http://dev.example/cb", true},
	} {
		t.Run(tc.client+" "+tc.redirect, func(t *testing.T) {
			res, page := b.get("/oauth2/authorize?" + authorizeQuery(tc.client, tc.redirect, "", challenge))
			if !tc.ok {
				if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
					t.Fatalf("%d Location %q; want an error page and no redirect", res.StatusCode, res.Header.Get("Location"))
				}
				if strings.HasPrefix(tc.client, "legacy") && !strings.Contains(page, "not allowed") {
					t.Fatalf("the page does not say why: %s", page)
				}
				return
			}
			if res.StatusCode == http.StatusOK {
				form := hidden(page)
				form.Set("decision", "allow")
				res = b.post("/oauth2/authorize", form)
			}
			loc := res.Header.Get("Location")
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, tc.redirect+"?") {
				t.Fatalf("%d %q; want a redirect to %s", res.StatusCode, loc, tc.redirect)
			}
			if tc.client != "native" {
				return
			}
			u, _ := url.Parse(loc)
			// The code is bound to the URI used, port included (RFC 6749 §4.1.3).
			form := codeForm(u.Query().Get("code"), "http://127.0.0.1:9999/cb", verifier)
			form.Set("client_id", "native")
			if r := e.do(req{path: "/oauth2/token", body: form.Encode()}); r.status != 400 {
				t.Fatalf("exchange with another port: %d %s", r.status, r.body)
			}
		})
	}
	// The code exchanged with the redirect URI used, port and all. The client is public: the
	// person is asked again.
	res, page := b.get("/oauth2/authorize?" + authorizeQuery("native", "http://127.0.0.1:40000/cb", "", challenge))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("a public client's second request: %d; want the consent page", res.StatusCode)
	}
	form := hidden(page)
	form.Set("decision", "allow")
	res = b.post("/oauth2/authorize", form)
	u, _ := url.Parse(res.Header.Get("Location"))
	form = codeForm(u.Query().Get("code"), "http://127.0.0.1:40000/cb", verifier)
	form.Set("client_id", "native")
	if r := e.do(req{path: "/oauth2/token", body: form.Encode()}); r.status != 200 {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
}
