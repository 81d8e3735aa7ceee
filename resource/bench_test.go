package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
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

// BenchmarkSignatureCheckFloor measures the signature check alone, with the standard library,
// for each algorithm a JWT access token may carry: the floor of a first sight, whatever the
// middleware does around it (1e9/ns_op checks per second per core at most).
func BenchmarkSignatureCheckFloor(b *testing.B) {
	msg := sha256.Sum256([]byte("eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0"))
	b.Run("ES256", func(b *testing.B) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sig, _ := ecdsa.SignASN1(rand.Reader, k, msg[:])
		for b.Loop() {
			if !ecdsa.VerifyASN1(&k.PublicKey, msg[:], sig) {
				b.Fatal("not verified")
			}
		}
	})
	b.Run("EdDSA", func(b *testing.B) {
		pub, priv, _ := ed25519.GenerateKey(rand.Reader)
		sig := ed25519.Sign(priv, msg[:])
		for b.Loop() {
			if !ed25519.Verify(pub, msg[:], sig) {
				b.Fatal("not verified")
			}
		}
	})
}
