package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/token"
)

const tokenURL = issuer + "/oauth2/token"

// dpopKey returns a new DPoP key for alg.
func dpopKey(t *testing.T, alg string) *dpop.Key {
	t.Helper()
	k, err := dpop.GenerateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// proof makes a proof of k for a token request at the env's clock, with nonce if not empty.
func (e *env) proof(k *dpop.Key, nonce string) string {
	e.t.Helper()
	p, err := k.Proof("POST", tokenURL, dpop.ProofOptions{Nonce: nonce, Now: e.clock()})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// tokenRequest sends a token request as client (public if sec is empty) with the DPoP proofs.
func (e *env) tokenRequest(client, sec string, form url.Values, proofs ...string) resp {
	e.t.Helper()
	r := req{path: "/oauth2/token", dpop: proofs}
	if sec == "" {
		form.Set("client_id", client)
	} else {
		r.user, r.pass = client, sec
	}
	r.body = form.Encode()
	return e.do(r)
}

// introspect returns the introspection answer for tok, asked by client.
func (e *env) introspect(client, sec, tok string) map[string]any {
	e.t.Helper()
	r := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(tok), user: client, pass: sec})
	if r.status != 200 {
		e.t.Fatalf("introspect: %d %s", r.status, r.body)
	}
	return r.json(e.t)
}

// jwtClaims decodes the claims of a JWT without checking it.
func jwtClaims(t *testing.T, text string) map[string]any {
	t.Helper()
	parts := strings.Split(text, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", text)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var ccForm = func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }

// TestDPoPClientCredentials: a proof binds the access token, opaque or JWT (RFC 9449 §5, §6):
// token_type DPoP, cnf.jkt in the JWT and in introspection; without a proof the token is a
// bearer token as before.
func TestDPoPClientCredentials(t *testing.T) {
	e := newEnv(t)
	for _, alg := range dpop.SupportedAlgorithms {
		k := dpopKey(t, alg)
		for _, client := range []string{"app", "jwtapp"} {
			r := e.tokenRequest(client, appSecret, ccForm(), e.proof(k, ""))
			if r.status != 200 {
				t.Fatalf("%s %s: %d %s", alg, client, r.status, r.body)
			}
			m := r.json(t)
			if m["token_type"] != "DPoP" {
				t.Fatalf("%s %s: token_type %v, want DPoP", alg, client, m["token_type"])
			}
			at := m["access_token"].(string)
			if client == "jwtapp" {
				cnf, _ := jwtClaims(t, at)["cnf"].(map[string]any)
				if cnf["jkt"] != k.Thumbprint() {
					t.Fatalf("%s: JWT cnf = %v, want jkt %s", alg, cnf, k.Thumbprint())
				}
			}
			in := e.introspect(client, appSecret, at)
			cnf, _ := in["cnf"].(map[string]any)
			if in["active"] != true || in["token_type"] != "DPoP" || cnf["jkt"] != k.Thumbprint() {
				t.Fatalf("%s %s: introspection %v", alg, client, in)
			}
			if r.header.Get("DPoP-Nonce") != "" {
				t.Fatalf("%s: a confidential client was sent a nonce under the default policy", client)
			}
		}
	}
	// Without a proof: a bearer token, as before.
	for _, client := range []string{"app", "jwtapp"} {
		r := e.tokenRequest(client, appSecret, ccForm())
		m := r.json(t)
		in := e.introspect(client, appSecret, m["access_token"].(string))
		if m["token_type"] != "Bearer" || in["token_type"] != "Bearer" || in["cnf"] != nil {
			t.Fatalf("%s without a proof: %v, introspection %v", client, m, in)
		}
		if client == "jwtapp" && jwtClaims(t, m["access_token"].(string))["cnf"] != nil {
			t.Fatal("a bearer JWT has cnf")
		}
	}
}

// TestDPoPProofRefusals: a proof that fails a rule is invalid_dpop_proof and issues nothing;
// revocation and introspection ignore a DPoP header; the metadata lists the algorithms.
func TestDPoPProofRefusals(t *testing.T) {
	e := newEnv(t)
	k := dpopKey(t, dpop.ES256)
	ok := e.proof(k, "")
	if r := e.tokenRequest("app", appSecret, ccForm(), ok); r.status != 200 {
		t.Fatalf("valid proof: %d %s", r.status, r.body)
	}
	wrongURL, _ := k.Proof("POST", issuer+"/oauth2/revoke", dpop.ProofOptions{Now: e.clock()})
	old, _ := k.Proof("POST", tokenURL, dpop.ProofOptions{Now: e.clock().Add(-5 * time.Minute)})
	for name, proofs := range map[string][]string{
		"replayed":       {ok},
		"two headers":    {e.proof(k, ""), e.proof(k, "")},
		"htu of another": {wrongURL},
		"iat too old":    {old},
		"not a JWT":      {"x"},
	} {
		r := e.tokenRequest("app", appSecret, ccForm(), proofs...)
		wantError(t, r, 400, "invalid_dpop_proof")
		if strings.Contains(string(r.body), "access_token") {
			t.Fatalf("%s: issued a token", name)
		}
	}
	// Introspection and revocation take plain client authentication; a DPoP header is ignored.
	at := e.tokenRequest("app", appSecret, ccForm(), e.proof(k, "")).json(t)["access_token"].(string)
	r := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(at), user: "app", pass: appSecret, dpop: []string{"garbage"}})
	if r.status != 200 || r.json(t)["active"] != true {
		t.Fatalf("introspection with a DPoP header: %d %s", r.status, r.body)
	}
	r = e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(at), user: "app", pass: appSecret, dpop: []string{"garbage"}})
	if r.status != 200 || e.active(at) {
		t.Fatalf("revocation of a bound token: %d %s, still active: %v", r.status, r.body, e.active(at))
	}
	md := e.do(req{method: "GET", path: "/.well-known/oauth-authorization-server"}).json(t)
	algs, _ := md["dpop_signing_alg_values_supported"].([]any)
	if len(algs) != 4 || algs[0] != "ES256" {
		t.Fatalf("dpop_signing_alg_values_supported = %v", md["dpop_signing_alg_values_supported"])
	}
}

// TestRequireDPoP: a client registered with RequireDPoP gets invalid_dpop_proof without a
// proof, and, under the default policy, use_dpop_nonce with the nonce to retry with (§8).
func TestRequireDPoP(t *testing.T) {
	e := newEnv(t)
	h, _ := secret.Hash(appSecret, cheap)
	if err := e.store.CreateClient(context.Background(), rescind.Client{ID: "strict", Name: "Strict", SecretHash: h,
		GrantTypes: []string{rescind.GrantClientCredentials}, RequireDPoP: true}); err != nil {
		t.Fatal(err)
	}
	wantError(t, e.tokenRequest("strict", appSecret, ccForm()), 400, "invalid_dpop_proof")
	k := dpopKey(t, dpop.EdDSA)
	r := e.tokenRequest("strict", appSecret, ccForm(), e.proof(k, ""))
	wantError(t, r, 400, "use_dpop_nonce")
	nonce := r.header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
	}
	r = e.tokenRequest("strict", appSecret, ccForm(), e.proof(k, nonce))
	if r.status != 200 || r.json(t)["token_type"] != "DPoP" || r.header.Get("DPoP-Nonce") == "" {
		t.Fatalf("with the nonce: %d %s (DPoP-Nonce %q)", r.status, r.body, r.header.Get("DPoP-Nonce"))
	}
	// A nonce of another server (another key) is refused the same way.
	other, _ := dpop.NewNonces([]byte(strings.Repeat("o", 32)), 0)
	wantError(t, e.tokenRequest("strict", appSecret, ccForm(), e.proof(k, other.Current(e.clock()))), 400, "use_dpop_nonce")
	// The nonce changes with time: after two periods the old one is refused, with the new one.
	e.advance(11 * time.Minute)
	r = e.tokenRequest("strict", appSecret, ccForm(), e.proof(k, nonce))
	wantError(t, r, 400, "use_dpop_nonce")
	if n := r.header.Get("DPoP-Nonce"); n == "" || n == nonce {
		t.Fatalf("new nonce %q after two periods (old %q)", n, nonce)
	}
}

// TestDPoPCodeFlowPublicClient: a public client's tokens are bound, its refresh token too (RFC
// 9449 §5): refreshing it needs a proof made with the same key; a refusal leaves the token
// usable by its holder. Public clients must use the server's nonce by default (§8).
func TestDPoPCodeFlowPublicClient(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("d")
	q := b.approve(authorizeQuery("spa", "https://spa.example/cb", "read", challenge))
	k, other := dpopKey(t, dpop.ES256), dpopKey(t, dpop.ES256)
	code := codeForm(q.Get("code"), "https://spa.example/cb", verifier)

	r := e.tokenRequest("spa", "", code, e.proof(k, ""))
	wantError(t, r, 400, "use_dpop_nonce") // the code is not used up by this
	nonce := r.header.Get("DPoP-Nonce")
	r = e.tokenRequest("spa", "", codeForm(q.Get("code"), "https://spa.example/cb", verifier), e.proof(k, nonce))
	if r.status != 200 {
		t.Fatalf("code exchange with the nonce: %d %s", r.status, r.body)
	}
	m := r.json(t)
	rt := m["refresh_token"].(string)
	if m["token_type"] != "DPoP" {
		t.Fatalf("token_type %v", m["token_type"])
	}
	// A public client may not introspect: the store says what the refresh token is bound to.
	if stored, err := e.store.GetRefreshToken(context.Background(), token.Hash(rt)); err != nil || stored.JKT != k.Thumbprint() {
		t.Fatalf("stored refresh token %+v, %v; want jkt %s", stored, err, k.Thumbprint())
	}
	refresh := func(tok string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}
	}

	// Without a proof, or with another key's: invalid_grant, and the token is not used up.
	wantError(t, e.tokenRequest("spa", "", refresh(rt)), 400, "invalid_grant")
	wantError(t, e.tokenRequest("spa", "", refresh(rt), e.proof(other, nonce)), 400, "invalid_grant")
	if stored, err := e.store.GetRefreshToken(context.Background(), token.Hash(rt)); err != nil || !stored.UsedAt.IsZero() {
		t.Fatalf("a refused refresh used up the refresh token: %+v, %v", stored, err)
	}
	// With the key: a new pair, both bound to it.
	r = e.tokenRequest("spa", "", refresh(rt), e.proof(k, nonce))
	if r.status != 200 {
		t.Fatalf("refresh with the key: %d %s", r.status, r.body)
	}
	m = r.json(t)
	rt2 := m["refresh_token"].(string)
	if m["token_type"] != "DPoP" || e.introspect("rs", rsSecret, m["access_token"].(string))["cnf"] == nil {
		t.Fatalf("refreshed access token not bound: %v", m)
	}
	// The binding is kept down the rotation chain.
	wantError(t, e.tokenRequest("spa", "", refresh(rt2)), 400, "invalid_grant")
	if r := e.tokenRequest("spa", "", refresh(rt2), e.proof(k, nonce)); r.status != 200 {
		t.Fatalf("second refresh: %d %s", r.status, r.body)
	}
}

// TestDPoPCodeFlowConfidentialClient: a confidential client's access tokens are bound by a
// proof, its refresh tokens are not (§5: its authentication constrains them already).
func TestDPoPCodeFlowConfidentialClient(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("c")
	q := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge))
	k := dpopKey(t, dpop.PS256)
	r := e.tokenRequest("webapp", appSecret, codeForm(q.Get("code"), "https://app.example/cb", verifier), e.proof(k, ""))
	if r.status != 200 || r.json(t)["token_type"] != "DPoP" {
		t.Fatalf("code exchange: %d %s", r.status, r.body)
	}
	rt := r.json(t)["refresh_token"].(string)
	if in := e.introspect("webapp", appSecret, rt); in["cnf"] != nil {
		t.Fatalf("a confidential client's refresh token is bound: %v", in)
	}
	r = e.tokenRequest("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if r.status != 200 || r.json(t)["token_type"] != "Bearer" {
		t.Fatalf("refresh without a proof: %d %s", r.status, r.body)
	}
}

// TestIntrospectionHintAccessToken: a refresh token asked about as an access token
// (token_type_hint=access_token) is inactive, even to its own client, so that a resource server
// introspecting with the client's credentials cannot take a confidential client's unbound
// refresh token for an access token (audit 18 finding 3); without a hint, or with
// refresh_token, the client learns of it as before, and an access token is found whatever the
// hint says.
func TestIntrospectionHintAccessToken(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("c")
	q := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge))
	r := e.tokenRequest("webapp", appSecret, codeForm(q.Get("code"), "https://app.example/cb", verifier), e.proof(dpopKey(t, dpop.ES256), ""))
	if r.status != 200 || r.json(t)["token_type"] != "DPoP" {
		t.Fatalf("code exchange: %d %s", r.status, r.body)
	}
	at, rt := r.json(t)["access_token"].(string), r.json(t)["refresh_token"].(string)
	for _, tc := range []struct {
		name, tok, hint string
		tokenType       string // of an active answer; "" for exactly {"active":false}
	}{
		{"refresh token, no hint", rt, "", "refresh_token"},
		{"refresh token, hint refresh_token", rt, "refresh_token", "refresh_token"},
		{"refresh token, hint access_token", rt, "access_token", ""},
		{"access token, hint access_token", at, "access_token", "DPoP"},
		{"access token, hint refresh_token", at, "refresh_token", "DPoP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := "token=" + url.QueryEscape(tc.tok)
			if tc.hint != "" {
				body += "&token_type_hint=" + tc.hint
			}
			r := e.do(req{path: "/oauth2/introspect", body: body, user: "webapp", pass: appSecret})
			if tc.tokenType == "" {
				if r.status != 200 || string(r.body) != `{"active":false}` {
					t.Fatalf("%d %s; want {\"active\":false}", r.status, r.body)
				}
				return
			}
			if m := r.json(t); r.status != 200 || m["active"] != true || m["token_type"] != tc.tokenType {
				t.Fatalf("%d %s; want active, token_type %s", r.status, r.body, tc.tokenType)
			}
		})
	}
}

// TestDPoPBoundCode: a code whose authorization request named dpop_jkt (RFC 9449 §10) is
// redeemed only with a proof made with that key; a redemption without one, or with another key's,
// is invalid_grant and leaves the code to its holder.
func TestDPoPBoundCode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	k, other := dpopKey(t, dpop.ES256), dpopKey(t, dpop.EdDSA)
	if _, err := e.store.SaveGrant(ctx, rescind.Grant{ID: "g-dpop", ClientID: "spa", UserID: "alice-id", Scopes: []string{"read"},
		CreatedAt: e.clock(), LastUsedAt: e.clock()}); err != nil {
		t.Fatal(err)
	}
	verifier, challenge := pkcePair("j")
	code, hash, err := token.NewStored(token.CodePrefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateCode(ctx, rescind.AuthCode{Hash: hash, ClientID: "spa", UserID: "alice-id", GrantID: "g-dpop",
		RedirectURI: "https://spa.example/cb", Scope: "read", Challenge: challenge, ChallengeMethod: "S256",
		CreatedAt: e.clock(), ExpiresAt: e.clock().Add(time.Minute), DPoPJKT: k.Thumbprint()}); err != nil {
		t.Fatal(err)
	}
	form := func() url.Values { return codeForm(code, "", verifier) }
	// The public client's nonce first (the default policy).
	nonce := e.tokenRequest("spa", "", form(), e.proof(k, "")).header.Get("DPoP-Nonce")
	wantError(t, e.tokenRequest("spa", "", form()), 400, "invalid_grant")
	wantError(t, e.tokenRequest("spa", "", form(), e.proof(other, nonce)), 400, "invalid_grant")
	if ac, err := e.store.GetCode(ctx, hash); err != nil || !ac.UsedAt.IsZero() {
		t.Fatalf("a refused redemption used the code up: %+v, %v", ac, err)
	}
	r := e.tokenRequest("spa", "", form(), e.proof(k, nonce))
	if r.status != 200 || r.json(t)["token_type"] != "DPoP" {
		t.Fatalf("with the key's proof: %d %s", r.status, r.body)
	}
	if !e.active(r.json(t)["access_token"].(string)) {
		t.Fatal("the grant was revoked")
	}
}

// TestDPoPJKTAtAuthorize: dpop_jkt at the authorization endpoint (RFC 9449 §10) binds the code
// to the key it names; a malformed or repeated one is invalid_request at the redirect URI.
func TestDPoPJKTAtAuthorize(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	k, other := dpopKey(t, dpop.ES256), dpopKey(t, dpop.ES256)
	verifier, challenge := pkcePair("a")
	base := authorizeQuery("spa", "https://spa.example/cb", "read", challenge)
	for name, extra := range map[string]string{
		"not base64url": "&dpop_jkt=" + url.QueryEscape("not a thumbprint!"),
		"not 32 bytes":  "&dpop_jkt=" + b64url(make([]byte, 20)),
		"padded":        "&dpop_jkt=" + base64.URLEncoding.EncodeToString(make([]byte, 32)),
		"given twice":   "&dpop_jkt=" + k.Thumbprint() + "&dpop_jkt=" + other.Thumbprint(),
	} {
		if q := b.approve(base + extra); q.Get("error") != "invalid_request" || q.Get("code") != "" {
			t.Fatalf("%s: redirect %v; want error=invalid_request", name, q)
		}
	}
	q := b.approve(base + "&dpop_jkt=" + k.Thumbprint())
	code := q.Get("code")
	if ac, err := e.store.GetCode(context.Background(), token.Hash(code)); err != nil || ac.DPoPJKT != k.Thumbprint() {
		t.Fatalf("stored code %+v, %v; want dpop_jkt %s", ac, err, k.Thumbprint())
	}
	form := func() url.Values { return codeForm(code, "https://spa.example/cb", verifier) }
	nonce := e.tokenRequest("spa", "", form(), e.proof(other, "")).header.Get("DPoP-Nonce")
	wantError(t, e.tokenRequest("spa", "", form(), e.proof(other, nonce)), 400, "invalid_grant")
	if r := e.tokenRequest("spa", "", form(), e.proof(k, nonce)); r.status != 200 || r.json(t)["token_type"] != "DPoP" {
		t.Fatalf("with the key of dpop_jkt: %d %s", r.status, r.body)
	}
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
