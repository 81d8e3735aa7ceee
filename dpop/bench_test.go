package dpop

import (
	"context"
	"testing"
)

// BenchmarkVerify measures checking one fresh proof at a token endpoint: parsing, the ES256
// signature, the thumbprint and the replay cache.
func BenchmarkVerify(b *testing.B) {
	key, _ := GenerateKey(ES256)
	proofs := make([]string, 4096)
	for i := range proofs {
		proofs[i], _ = key.Proof("POST", tokenURL, ProofOptions{})
	}
	req := Request{Method: "POST", URL: tokenURL}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		v := &Verifier{Replay: &MemoryCache{}} // a fresh cache: every proof is new
		if _, err := v.Verify(context.Background(), []string{proofs[i%len(proofs)]}, req); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkProof measures making one proof (a client's cost).
func BenchmarkProof(b *testing.B) {
	key, _ := GenerateKey(ES256)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := key.Proof("POST", tokenURL, ProofOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
