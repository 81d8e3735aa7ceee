package oauth_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/rescind/rescind/token"
)

// TestJWTCacheKeepsChecks: a JWT verified once is answered from the cache of verified claims,
// but the cache never answers for its status: revocation, expiry and the retirement of the key
// that signed it each make the cached token inactive, and a token that differs from a cached one
// in one character of its signature is not taken for it.
func TestJWTCacheKeepsChecks(t *testing.T) {
	t.Run("revoked", func(t *testing.T) {
		e := newEnv(t)
		tok := e.issue("jwtapp", appSecret, "")
		if !e.active(tok) || !e.active(tok) {
			t.Fatal("a fresh JWT is inactive")
		}
		if r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(tok), user: "jwtapp", pass: appSecret}); r.status != 200 {
			t.Fatalf("revoke: %d %s", r.status, r.body)
		}
		if e.active(tok) {
			t.Fatal("a revoked JWT is active: the cache answered for its status")
		}
	})
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t)
		tok := e.issue("jwtapp", appSecret, "")
		if !e.active(tok) {
			t.Fatal("a fresh JWT is inactive")
		}
		e.advance(time.Hour)
		if e.active(tok) {
			t.Fatal("an expired JWT is active")
		}
	})
	t.Run("key retired", func(t *testing.T) {
		e := newEnv(t)
		tok := e.issue("jwtapp", appSecret, "")
		if !e.active(tok) {
			t.Fatal("a fresh JWT is inactive")
		}
		k2, _ := token.NewSigningKey("k2", token.AlgES256, e.clock())
		e.signer.Add(k2)
		e.signer.Add(token.SigningKey{ID: "k1", Alg: token.AlgES256, CreatedAt: e.clock().Add(-time.Minute), RetiredAt: e.clock()})
		if e.active(tok) {
			t.Fatal("a JWT of a retired key is active: its cached verification outlived the key")
		}
		fresh := e.issue("jwtapp", appSecret, "")
		if !e.active(fresh) {
			t.Fatal("a JWT of the new key is inactive")
		}
	})
	t.Run("altered signature", func(t *testing.T) {
		e := newEnv(t)
		tok := e.issue("jwtapp", appSecret, "")
		if !e.active(tok) {
			t.Fatal("a fresh JWT is inactive")
		}
		c := tok[len(tok)-3]
		alt := byte('A')
		if c == 'A' {
			alt = 'B'
		}
		if forged := tok[:len(tok)-3] + string(alt) + tok[len(tok)-2:]; e.active(forged) {
			t.Fatal("a JWT with an altered signature is active")
		}
	})
}
