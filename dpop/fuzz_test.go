package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzVerify: any DPoP header is refused or accepted without panicking, every refusal is an
// *Error with one of the two codes, and only a proof signed by one of the test's keys is
// accepted (a fuzzer cannot forge a signature, nor make another key's proof pass).
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	nonces, _ := NewNonces([]byte(strings.Repeat("n", 32)), time.Minute)
	// Fixed keys, so that every fuzzing worker knows them: ES256 and EdDSA.
	ec, _ := ecdsa.ParseRawPrivateKey(elliptic.P256(), []byte(strings.Repeat("\x42", 32)))
	var keys []*Key
	for _, k := range []struct {
		priv crypto.Signer
		alg  string
	}{{ec, ES256}, {ed25519.NewKeyFromSeed([]byte(strings.Repeat("s", 32))), EdDSA}} {
		key, err := NewKey(k.priv, k.alg)
		if err != nil {
			f.Fatal(err)
		}
		keys = append(keys, key)
		p, err := key.Proof("POST", tokenURL, ProofOptions{Now: now, Nonce: nonces.Current(now)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
		parts := strings.Split(p, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".e30." + parts[2])
	}
	f.Add("")
	f.Add("a.b.c")
	f.Add(`{"payload":"e30","signatures":[]}`)
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiZHBvcCtqd3QifQ.e30.")
	f.Fuzz(func(t *testing.T, header string) {
		v := &Verifier{Replay: &MemoryCache{Now: clock}, Nonces: nonces, Now: clock}
		p, err := v.Verify(context.Background(), []string{header}, Request{Method: "POST", URL: tokenURL, RequireNonce: true})
		if err == nil {
			if !slices.ContainsFunc(keys, func(k *Key) bool { return k.Thumbprint() == p.JKT }) {
				t.Fatalf("accepted a proof the key did not make: %q -> %+v", header, p)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) || (e.Code != CodeInvalidProof && e.Code != CodeUseNonce) {
			t.Fatalf("refusal %v is not an invalid_dpop_proof or use_dpop_nonce *Error", err)
		}
	})
}

// FuzzNormalizeHTU: any string is normalized or refused without panicking, and a normalized URI
// is its own normal form (so a proof's htu and a request's URL compare the same however often
// either went through it), with no query or fragment.
func FuzzNormalizeHTU(f *testing.F) {
	for _, s := range []string{tokenURL, "HTTPS://AS.example:443/x?y#z", "https://as.example/files/a%2Fb", "https://as.example/a/%2E%2E/c",
		"https://as.example/%7e%41", "https://[::1]:8443/./a/../b", "http://as.example", "https://as.example/a%zz", "https://as.example/a%252F"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeHTU(s)
		if err != nil {
			return
		}
		again, err := normalizeHTU(n)
		if err != nil || again != n {
			t.Fatalf("normalizeHTU(%q) = %q, but normalizing that gives %q, %v", s, n, again, err)
		}
		if strings.ContainsAny(n, "?#") {
			t.Fatalf("normalizeHTU(%q) = %q keeps a query or fragment", s, n)
		}
	})
}
