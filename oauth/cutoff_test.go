package oauth_test

import (
	"context"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/internal/secret"
)

// TestClientCutoffInTheFuture: the cut-off of revoke-all --client lies past the clock skew, so
// that it covers tokens an instance whose clock is ahead issued before it. Until the clock has
// passed it, a token issued to the client would be dead on arrival: the token endpoint refuses
// (503 temporarily_unavailable, Retry-After until the cut-off), before consuming anything, and
// issues live tokens from the first moment the token's iat (to the second in a JWT) is past it.
func TestClientCutoffInTheFuture(t *testing.T) {
	e := newEnv(t)
	e.mu.Lock()
	e.now = e.now.Truncate(time.Second)
	e.mu.Unlock()
	start := e.clock()
	cut := start.Add(61*time.Second + 500*time.Millisecond)
	for _, c := range []string{"app", "jwtapp", "webapp"} {
		e.state.Apply(rescind.Revocation{Kind: rescind.RevokeClient, Key: c, ClientID: c, RevokedAt: cut, ExpiresAt: cut.Add(rescind.MaxAccessTokenTTL)})
	}
	refused := func(name string, r resp, retry int) {
		t.Helper()
		wantError(t, r, 503, "temporarily_unavailable")
		if got := r.header.Get("Retry-After"); got != strconv.Itoa(retry) {
			t.Fatalf("%s: Retry-After %q, want %d", name, got, retry)
		}
	}
	cc := func(client string) resp {
		return e.do(req{path: "/oauth2/token", body: "grant_type=client_credentials", user: client, pass: appSecret})
	}
	redeem := func(code, verifier string) resp {
		return e.do(req{path: "/oauth2/token", body: codeForm(code, "https://app.example/cb", verifier).Encode(), user: "webapp", pass: appSecret})
	}
	refused("opaque, at once", cc("app"), 62)
	refused("JWT, at once", cc("jwtapp"), 62)
	// A code of webapp, issued during the cut-off (a person authorizes the app again), to redeem
	// during and after it.
	e.advance(30 * time.Second)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("cut")
	code := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)).Get("code")
	refused("code redemption, during the cut-off", redeem(code, verifier), 32)

	e.advance(31*time.Second + 500*time.Millisecond) // at the cut-off: a token issued now is covered
	refused("opaque, at the cut-off", cc("app"), 1)
	e.advance(time.Nanosecond)
	tok := cc("app")
	if tok.status != 200 || !e.active(tok.json(t)["access_token"].(string)) {
		t.Fatalf("opaque, just past the cut-off: %d %s, want a live token", tok.status, tok.body)
	}
	e.advance(200 * time.Millisecond) // a JWT's iat is the second, still at the cut-off
	refused("JWT, in the cut-off's second", cc("jwtapp"), 1)
	e.advance(300 * time.Millisecond) // the next second
	if tok := cc("jwtapp"); tok.status != 200 || !e.active(tok.json(t)["access_token"].(string)) {
		t.Fatalf("JWT, the second after the cut-off: %d %s, want a live token", tok.status, tok.body)
	}
	// The code was not consumed by the refused redemption: it redeems now.
	r, tk := e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
	if r.status != 200 || !e.active(tk.access) {
		t.Fatalf("redeeming after the cut-off: %d %s", r.status, r.body)
	}
	// A token of another client is untouched.
	if r := e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"client_credentials"}}.Encode(), user: "other", pass: otherSecret}); r.status != 200 {
		t.Fatalf("another client: %d %s", r.status, r.body)
	}
}

// TestClientCutoffWithDPoP: the token endpoint checks a DPoP proof before the client cut-off. A
// cut-off client that must use DPoP and sends no proof, or one with a stale nonce, is told what
// is wrong with its request (400, which a retry would not cure), not to come back later; with a
// good proof it gets the 503 and Retry-After, with the nonce to use then; after the cut-off, a
// new proof with that nonce gets a DPoP-bound token that is alive.
func TestClientCutoffWithDPoP(t *testing.T) {
	e := newEnv(t)
	h, _ := secret.Hash(appSecret, cheap)
	if err := e.store.CreateClient(context.Background(), rescind.Client{ID: "strict", Name: "Strict", SecretHash: h,
		GrantTypes: []string{rescind.GrantClientCredentials}, RequireDPoP: true}); err != nil {
		t.Fatal(err)
	}
	k := dpopKey(t, dpop.EdDSA)
	// A nonce the server gives (its default policy asks a client that must use DPoP for one).
	nonce := e.tokenRequest("strict", appSecret, ccForm(), e.proof(k, "")).header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("no DPoP-Nonce for a client that must use DPoP")
	}
	cut := e.clock().Add(61 * time.Second)
	e.state.Apply(rescind.Revocation{Kind: rescind.RevokeClient, Key: "strict", ClientID: "strict", RevokedAt: cut, ExpiresAt: cut.Add(rescind.MaxAccessTokenTTL)})

	wantError(t, e.tokenRequest("strict", appSecret, ccForm()), 400, "invalid_dpop_proof")
	wantError(t, e.tokenRequest("strict", appSecret, ccForm(), e.proof(k, "")), 400, "use_dpop_nonce")
	r := e.tokenRequest("strict", appSecret, ccForm(), e.proof(k, nonce))
	wantError(t, r, 503, "temporarily_unavailable")
	if got := r.header.Get("Retry-After"); got != "62" {
		t.Fatalf("Retry-After %q, want 62", got)
	}
	if n := r.header.Get("DPoP-Nonce"); n == "" {
		t.Fatal("the 503 carries no DPoP-Nonce to retry with")
	} else {
		nonce = n
	}
	e.advance(62 * time.Second)
	r = e.tokenRequest("strict", appSecret, ccForm(), e.proof(k, nonce))
	if r.status != 200 {
		t.Fatalf("after the cut-off: %d %s", r.status, r.body)
	}
	if m := r.json(t); m["token_type"] != "DPoP" || !e.active(m["access_token"].(string)) {
		t.Fatalf("after the cut-off: %v, want a live DPoP token", m)
	}
}
