package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/pkce"
	"github.com/rescind/rescind/token"
)

// TestPlainPKCEPublicClient: with plain PKCE the verifier is the challenge, which travels in the
// authorization request's URL. A public client authenticates with its client_id alone, so an
// observer of that URL and of the code (a history, a log, a Referer) could present the code "as"
// the client. Public clients are therefore refused plain PKCE, even one registered with
// allow_plain_pkce before that rule; and a code issued with a plain challenge to a public client
// before it, presented again, is refused without counting as theft: the person's grant lives.
// A confidential client allowed plain PKCE keeps it.
func TestPlainPKCEPublicClient(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	code := []string{rescind.GrantAuthorizationCode, rescind.GrantRefreshToken}
	if err := e.store.CreateClient(ctx, rescind.Client{ID: "pubplain", Name: "Public, plain allowed before the rule", Public: true,
		AllowPlainPKCE: true, GrantTypes: code, Scopes: []string{"read"}, RedirectURIs: []string{"https://pp.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login("alice")
	plain := "0123456789012345678901234567890123456789abcdefgh"
	q := url.Values{"response_type": {"code"}, "client_id": {"pubplain"}, "redirect_uri": {"https://pp.example/cb"}, "state": {"s"},
		"scope": {"read"}, "code_challenge": {plain}, "code_challenge_method": {"plain"}}
	res, _ := b.get("/oauth2/authorize?" + q.Encode())
	if loc, _ := url.Parse(res.Header.Get("Location")); res.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("error") != "invalid_request" {
		t.Fatalf("plain PKCE for a public client: %d %q; want a redirect with error=invalid_request", res.StatusCode, res.Header.Get("Location"))
	}
	// The confidential client allowed plain PKCE keeps it.
	q.Set("client_id", "plainok")
	q.Set("redirect_uri", "https://plain.example/cb")
	q.Del("scope") // it has none
	if c := b.approve(q.Encode()).Get("code"); c == "" {
		t.Fatal("plain PKCE for a confidential client allowed it: no code")
	}

	// A code issued with a plain challenge to the public client before the rule.
	g, err := e.store.SaveGrant(ctx, rescind.Grant{ID: "g-plain", ClientID: "pubplain", UserID: "alice-id", Scopes: []string{"read"},
		CreatedAt: e.clock(), LastUsedAt: e.clock()})
	if err != nil {
		t.Fatal(err)
	}
	text, hash, err := token.NewStored(token.CodePrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateCode(ctx, rescind.AuthCode{Hash: hash, ClientID: "pubplain", UserID: "alice-id", GrantID: g.ID,
		RedirectURI: "https://pp.example/cb", RedirectURIGiven: true, Scope: "read", Challenge: plain, ChallengeMethod: pkce.Plain,
		CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {text}, "code_verifier": {plain},
		"redirect_uri": {"https://pp.example/cb"}, "client_id": {"pubplain"}}
	r := e.do(req{path: "/oauth2/token", body: form.Encode()})
	if r.status != 200 {
		t.Fatalf("the app's redemption: %d %s", r.status, r.body)
	}
	access := r.json(t)["access_token"].(string)
	// The observer presents it again, with the verifier it read in the URL.
	wantError(t, e.do(req{path: "/oauth2/token", body: form.Encode()}), 400, "invalid_grant")
	if !e.active(access) || e.state.GrantRevoked(g.ID) {
		t.Fatal("an observer's replay of a public client's plain-PKCE code revoked the person's grant")
	}
}
