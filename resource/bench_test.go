package resource

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// BenchmarkJWTFirstSightAlg measures a JWT the middleware has not seen, signed with ES256 or
// EdDSA: parsing, the signature check, the claims, the expiry and status checks and caching the
// verification. Everything but the signature check should cost next to nothing.
func BenchmarkJWTFirstSightAlg(b *testing.B) {
	for _, alg := range []string{"ES256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			as := newFakeAS(b)
			sign := func(c map[string]any) string { return as.token(c) }
			if alg == "EdDSA" {
				pub, priv, _ := ed25519.GenerateKey(rand.Reader)
				as.extra = []jose.JSONWebKey{{Key: pub, KeyID: "ed1", Algorithm: "EdDSA", Use: "sig"}}
				sign = func(c map[string]any) string { return as.sign(c, "at+jwt", "ed1", jose.EdDSA, priv) }
			}
			m := newMW(b, as, Config{})
			toks := make([]string, 256)
			for i := range toks {
				toks[i] = sign(as.claims(int64(i)))
			}
			if _, err := m.Verify(context.Background(), toks[0]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if i%len(toks) == 0 {
					m.verifiedMu.Lock()
					clear(m.verified)
					m.verifiedMu.Unlock()
				}
				if _, err := m.Verify(context.Background(), toks[i%len(toks)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
