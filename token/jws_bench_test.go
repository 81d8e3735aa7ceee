package token

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// benchClaims are the claims of a typical JWT access token of a grant.
func benchClaims(i int) AccessClaims {
	return AccessClaims{Issuer: "https://auth.example.com", Subject: "u2ihbmmwo4wcq6p6xcobmvxl5u", Audience: Audience{"https://auth.example.com"},
		Expiry: 1_900_003_600, IssuedAt: 1_900_000_000, ID: "AAECAwQFBgcICQoLDA0OD" + strconv.Itoa(i%10), ClientID: "mz7xu2d5mdscqfwjs6q5nq6xpe",
		Scope: "read write", GrantID: "o6n2m5ncqhbtn7axgavkb2mc6e",
		Status: &Status{StatusList: StatusListRef{Idx: 4711, URI: "https://auth.example.com/oauth2/statuslists/n3uwfgnyuzfnqk3l5yy3hcs5ny"}}}
}

// BenchmarkSignJWT measures signing a JWT access token (claims encoded, header, signature), with
// each algorithm (RS256 with an RSAKeyBits key: ID tokens and SETs only, never access tokens).
func BenchmarkSignJWT(b *testing.B) {
	for _, alg := range SigningAlgorithms {
		b.Run(alg, func(b *testing.B) {
			s := NewSigner(time.Hour, testKey(b, "k1", alg, time.Unix(1_800_000_000, 0)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.SignWith(alg, benchClaims(i), TypeAccessToken); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkVerifyJWT measures verifying a JWT access token the signer issued: parsing, the
// signature check and decoding the payload.
func BenchmarkVerifyJWT(b *testing.B) {
	for _, alg := range SigningAlgorithms {
		b.Run(alg, func(b *testing.B) {
			s := NewSigner(time.Hour, testKey(b, "k1", alg, time.Unix(1_800_000_000, 0)))
			tok, err := s.SignWith(alg, benchClaims(0), TypeAccessToken)
			if err != nil {
				b.Fatal(err)
			}
			now := time.Unix(1_900_000_000, 0)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Verify(tok, TypeAccessToken, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyJWTRandomNonce measures verifying an ES256 token of the signer's key that it
// did not sign itself deterministically (signed with a random nonce, as older releases did): it
// is signed again, found different, then verified.
func BenchmarkVerifyJWTRandomNonce(b *testing.B) {
	k, err := NewSigningKey("k1", AlgES256, time.Unix(1_800_000_000, 0))
	if err != nil {
		b.Fatal(err)
	}
	s := NewSigner(time.Hour, k)
	payload, _ := json.Marshal(benchClaims(0))
	j, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.Private}, (&jose.SignerOptions{}).WithType(TypeAccessToken).WithHeader("kid", "k1"))
	if err != nil {
		b.Fatal(err)
	}
	obj, err := j.Sign(payload)
	if err != nil {
		b.Fatal(err)
	}
	tok, _ := obj.CompactSerialize()
	now := time.Unix(1_900_000_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(tok, TypeAccessToken, now); err != nil {
			b.Fatal(err)
		}
	}
}
