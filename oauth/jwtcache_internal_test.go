package oauth

import (
	"testing"
	"time"

	"github.com/rescind/rescind/token"
)

// TestJWTCacheBoundedAndKeepsHot: the cache holds at most two generations; a token used in the
// previous generation moves to the current one and stays, one not used again goes; an entry is
// not used once its key has retired by itself (RetireAfter past its replacement).
func TestJWTCacheBoundedAndKeepsHot(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	k1, _ := token.NewSigningKey("k1", token.AlgES256, t0)
	signer := token.NewSigner(time.Hour, k1)
	c := newJWTCache(4)
	key := func(i int) [32]byte { return jwtKey(string(rune('a' + i))) }
	hot := &accessToken{jti: "hot"}
	c.put(key(0), verifiedJWT{at: hot, kid: "k1"})
	for i := 1; i < 20; i++ {
		c.put(key(i), verifiedJWT{at: &accessToken{jti: "cold"}, kid: "k1"})
		if at, ok := c.get(key(0), signer, t0); !ok || at != hot {
			t.Fatalf("after %d more tokens, the one in use is gone", i)
		}
		if n := c.len(); n > 2*4 {
			t.Fatalf("%d entries held; at most 2 generations of 4", n)
		}
	}
	if _, ok := c.get(key(1), signer, t0); ok {
		t.Fatal("a token not used for two generations is still held")
	}
	if _, ok := c.get(key(19), signer, t0); !ok {
		t.Fatal("the newest token is not held")
	}
	// Rotation: k1 stays trusted for RetireAfter past k2's activation, then its entries go.
	k2, _ := token.NewSigningKey("k2", token.AlgEdDSA, t0.Add(time.Minute))
	signer.Add(k2)
	if _, ok := c.get(key(0), signer, t0.Add(time.Hour)); !ok {
		t.Fatal("an entry of the replaced key went before the key retired")
	}
	if _, ok := c.get(key(0), signer, t0.Add(time.Minute+time.Hour)); ok {
		t.Fatal("an entry of a key that retired by itself is still used")
	}
}
