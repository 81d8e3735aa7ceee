package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// TestRevokeJWTByItsTag: the revocation endpoint recognises a JWT of this server's by its tag,
// so a token's header and claims under another signature revoke that token (they are that
// token); but claims changed under a token's tag (another token's id and status entry, as a
// client holding one token might try against the others) revoke nothing, and the token named
// stays active.
func TestRevokeJWTByItsTag(t *testing.T) {
	e := newEnv(t)
	mine, victim, third := e.issue("jwtapp", appSecret, ""), e.issue("jwtapp", appSecret, ""), e.issue("jwtapp", appSecret, "")
	revoke := func(text string) {
		t.Helper()
		r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(text), user: "jwtapp", pass: appSecret})
		if r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
	}
	parts := func(text string) []string { return strings.Split(text, ".") }

	// The victim's claims under my header (my tag) and my signature: refused, the victim lives.
	m, v := parts(mine), parts(victim)
	revoke(m[0] + "." + v[1] + "." + m[2])
	if !e.active(victim) || !e.active(mine) {
		t.Fatal("claims under another token's tag revoked a token")
	}
	// My tag moved into the victim's header: refused too.
	var mh, vh map[string]any
	json.Unmarshal(mustB64(t, m[0]), &mh)
	json.Unmarshal(mustB64(t, v[0]), &vh)
	vh["rtg"] = mh["rtg"]
	b, _ := json.Marshal(vh)
	revoke(base64.RawURLEncoding.EncodeToString(b) + "." + v[1] + "." + v[2])
	if !e.active(victim) {
		t.Fatal("a token revoked under another token's tag")
	}

	// A token's own header and claims with another signature are that token: revoked.
	th := parts(third)
	revoke(th[0] + "." + th[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)))
	if e.active(third) {
		t.Fatal("the token's header and claims with another signature did not revoke it")
	}
	// Introspection still checks signatures: the victim's header and claims with another
	// signature are not active there, though the victim is.
	if e.active(v[0]+"."+v[1]+"."+base64.RawURLEncoding.EncodeToString(make([]byte, 64))) || !e.active(victim) {
		t.Fatal("introspection accepted a text without the token's signature")
	}
	revoke(victim)
	if e.active(victim) {
		t.Fatal("the victim's own token did not revoke it")
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRevokeByTagNeedsAnAuthenticatedClient: a public client proves nothing but its id, so the
// token itself is its credential: its revocation of a JWT checks the signature, and the token's
// header and claims under another signature revoke nothing.
func TestRevokeByTagNeedsAnAuthenticatedClient(t *testing.T) {
	e := newEnv(t)
	tok := e.mintJWT(t, "spa", "", nil)
	p := strings.Split(tok, ".")
	revoke := func(text string) {
		t.Helper()
		r := e.do(req{path: "/oauth2/revoke", body: "client_id=spa&token=" + url.QueryEscape(text)})
		if r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
	}
	revoke(p[0] + "." + p[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64)))
	if !e.active(tok) {
		t.Fatal("a public client revoked a JWT without its signature")
	}
	revoke(tok)
	if e.active(tok) {
		t.Fatal("the public client's own token, signed, was not revoked")
	}
}

// TestTagNotRememberedAsVerified: what the revocation endpoint authenticated by a tag is never
// kept as verified: another client sends a token's header and claims without its signature
// (refused: not its token), and introspection of that text still says inactive.
func TestTagNotRememberedAsVerified(t *testing.T) {
	e := newEnv(t)
	victim := e.issue("jwtapp", appSecret, "")
	p := strings.Split(victim, ".")
	unsigned := p[0] + "." + p[1] + "." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
	r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(unsigned), user: "app", pass: appSecret})
	if r.status != 400 {
		t.Fatalf("another client's revocation: %d %s", r.status, r.body)
	}
	if e.active(unsigned) {
		t.Fatal("the text without its signature is active at introspection: the tag's check was kept as verified")
	}
	if !e.active(victim) {
		t.Fatal("the victim was revoked")
	}
}
