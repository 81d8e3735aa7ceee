package token

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestKeyringLifecycle: a published key that is not yet in force opens tokens but does not seal;
// at its activation it seals; a retired key opens nothing, and a stale copy of it (not retired)
// does not bring it back; an old key retires by itself RetireAfter past its replacement.
func TestKeyringLifecycle(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	clock := t0
	a, _ := NewSealKey()
	a.CreatedAt, a.ActivatesAt = t0, t0
	kr, err := NewKeyring(a)
	if err != nil {
		t.Fatal(err)
	}
	kr.RetireAfter, kr.Now = time.Hour, func() time.Time { return clock }
	c := &Claims{ClientID: "c", IssuedAt: t0, Expiry: t0.Add(time.Hour)}
	sealedBy := func() [4]byte {
		t.Helper()
		text, err := kr.Seal(c)
		if err != nil {
			t.Fatal(err)
		}
		kid, _ := KeyID(text)
		return kid
	}
	b, _ := NewSealKey()
	b.CreatedAt, b.ActivatesAt = t0.Add(time.Minute), t0.Add(6*time.Minute)
	if err := kr.Add(b); err != nil {
		t.Fatal(err)
	}
	clock = t0.Add(5 * time.Minute)
	if sealedBy() != a.ID {
		t.Fatal("a key sealed before its activation")
	}
	byA, _ := kr.Seal(c)
	clock = t0.Add(6 * time.Minute)
	if sealedBy() != b.ID {
		t.Fatal("the new key does not seal at its activation")
	}
	byB, _ := kr.Seal(c)
	if _, err := kr.Open(byA); err != nil {
		t.Fatalf("the old key's token after rotation: %v", err)
	}

	// An activation only moves earlier: a stale copy of b with its old activation changes nothing.
	late := b
	late.ActivatesAt = t0.Add(time.Hour)
	kr.Add(late)
	if sealedBy() != b.ID {
		t.Fatal("a stale copy delayed the activation")
	}

	// An emergency rotation (c, in force at once), then retire b: its tokens are refused, and a
	// copy of b that is not retired does not revive it.
	cKey, _ := NewSealKey()
	cKey.CreatedAt, cKey.ActivatesAt = t0.Add(7*time.Minute), t0.Add(7*time.Minute)
	kr.Add(cKey)
	clock = t0.Add(8 * time.Minute)
	if sealedBy() != cKey.ID {
		t.Fatal("the emergency key does not seal")
	}
	retired := b
	retired.RetiredAt = clock
	kr.Add(retired)
	kr.Add(b)
	if _, err := kr.Open(byB); !errors.Is(err, ErrRetiredKey) {
		t.Fatalf("a retired key's token: %v, want ErrRetiredKey", err)
	}
	if !kr.Has(b.ID) {
		t.Fatal("a retired key is unknown (every token naming it would reload the keys)")
	}

	// a was taken over from at minute 6: it is accepted until RetireAfter past that.
	clock = t0.Add(6*time.Minute + time.Hour - time.Second)
	if _, err := kr.Open(byA); err != nil {
		t.Fatalf("the old key's token before its retirement: %v", err)
	}
	clock = t0.Add(6*time.Minute + time.Hour)
	if _, err := kr.Open(byA); !errors.Is(err, ErrRetiredKey) {
		t.Fatalf("the old key's token past its retirement: %v, want ErrRetiredKey", err)
	}
}

// TestSignerLifecycle: a new key is in the JWKS at once but signs from its activation; a retired
// key leaves the JWKS and verifies nothing; an unknown kid is reported as such.
func TestSignerLifecycle(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	clock := t0
	a, _ := NewSigningKey("a", AlgES256, t0)
	s := NewSigner(time.Hour, a)
	s.Now = func() time.Time { return clock }
	b, _ := NewSigningKey("b", AlgES256, t0.Add(time.Minute))
	b.ActivatesAt = t0.Add(6 * time.Minute)
	s.Add(b)
	clock = t0.Add(2 * time.Minute)
	kids := func() []string {
		var out []string
		for _, k := range s.JWKS(clock).Keys {
			out = append(out, k.KeyID)
		}
		return out
	}
	if got := kids(); len(got) != 2 || got[0] != "b" || got[1] != "a" {
		t.Fatalf("JWKS before activation = %v; want b (published early) and a", got)
	}
	kidOf := func(tok string) string {
		t.Helper()
		var h struct {
			Kid string `json:"kid"`
		}
		if err := json.Unmarshal(mustHeader(t, tok), &h); err != nil {
			t.Fatal(err)
		}
		return h.Kid
	}
	before, _ := s.Sign(AccessClaims{ID: "1"}, TypeAccessToken)
	if kidOf(before) != "a" {
		t.Fatal("signed with a key before its activation")
	}
	clock = t0.Add(6 * time.Minute)
	after, _ := s.Sign(AccessClaims{ID: "2"}, TypeAccessToken)
	if kidOf(after) != "b" {
		t.Fatal("the new key does not sign at its activation")
	}
	for _, tok := range []string{before, after} {
		if _, err := s.Verify(tok, TypeAccessToken, clock); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	b.RetiredAt = clock
	s.Add(b)
	b.RetiredAt = time.Time{}
	s.Add(b) // a stale copy does not revive it
	if got := kids(); len(got) != 1 || got[0] != "a" {
		t.Fatalf("JWKS after retirement = %v; want a only", got)
	}
	if _, err := s.Verify(after, TypeAccessToken, clock); !errors.Is(err, ErrBadJWT) || errors.Is(err, ErrUnknownKey) {
		t.Fatalf("retired key's token: %v; want ErrBadJWT, not ErrUnknownKey", err)
	}
	other, _ := NewSigningKey("z", AlgES256, t0)
	foreign, _ := NewSigner(time.Hour, other).Sign(AccessClaims{ID: "3"}, TypeAccessToken)
	if _, err := s.Verify(foreign, TypeAccessToken, clock); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("unknown kid: %v; want ErrUnknownKey", err)
	}
}

// TestSignerChains: each chain of keys has its own key in force, rotation and retirement;
// SignWith(alg) uses the key in force of chain "" when it is of alg, else that of chain alg;
// the JWKS lists every live key of every chain with its alg; a key verifies under its own
// algorithm only.
func TestSignerChains(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	clock := t0
	es := testKey(t, "es", AlgES256, t0)
	rs := testKey(t, "rs", AlgRS256, t0)
	rs.Chain = AlgRS256
	ed := testKey(t, "ed", AlgEdDSA, t0)
	ed.Chain = AlgEdDSA
	s := NewSigner(time.Hour, es, rs, ed)
	s.Now = func() time.Time { return clock }
	kidOf := func(tok string) string {
		t.Helper()
		kid, err := JWTKeyID(tok)
		if err != nil {
			t.Fatal(err)
		}
		return kid
	}
	signWith := func(alg string) string {
		t.Helper()
		tok, err := s.SignWith(alg, AccessClaims{ID: "1"}, "JWT")
		if err != nil {
			t.Fatalf("SignWith(%s): %v", alg, err)
		}
		return kidOf(tok)
	}
	for alg, want := range map[string]string{AlgES256: "es", AlgRS256: "rs", AlgEdDSA: "ed"} {
		if got := signWith(alg); got != want {
			t.Fatalf("SignWith(%s) signed with %s; want %s", alg, got, want)
		}
	}
	if tok, _ := s.Sign(AccessClaims{ID: "1"}, TypeAccessToken); kidOf(tok) != "es" {
		t.Fatal("Sign does not use chain \"\"")
	}
	if _, err := s.SignWith(AlgPS256, AccessClaims{}, "JWT"); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("SignWith(PS256): %v; want ErrNoSigningKey", err)
	}
	// The JWKS: every key, each with its alg and use sig, chain "" first.
	var got []string
	for _, k := range s.JWKS(clock).Keys {
		got = append(got, k.KeyID+":"+k.Algorithm+":"+k.Use)
	}
	if want := []string{"es:ES256:sig", "ed:EdDSA:sig", "rs:RS256:sig"}; !slices.Equal(got, want) {
		t.Fatalf("JWKS = %v; want %v", got, want)
	}
	// A rotation of the RS256 chain leaves the others alone: the new key is published at once,
	// signs from its activation, and the old one is retiring.
	rs2 := testKey(t, "rs2", AlgRS256, t0.Add(time.Minute))
	rs2.Chain, rs2.ActivatesAt = AlgRS256, t0.Add(6*time.Minute)
	s.Add(rs2)
	clock = t0.Add(2 * time.Minute)
	if signWith(AlgRS256) != "rs" || signWith(AlgES256) != "es" {
		t.Fatal("a pending RS256 key signs before its activation")
	}
	clock = t0.Add(6 * time.Minute)
	if signWith(AlgRS256) != "rs2" || signWith(AlgES256) != "es" || signWith(AlgEdDSA) != "ed" {
		t.Fatal("the RS256 rotation did not take effect in its chain alone")
	}
	clock = t0.Add(7 * time.Minute)
	old, _ := s.SignWith(AlgRS256, AccessClaims{ID: "2"}, "JWT")
	// Retiring the RS256 key in force: the chain has no key left to sign RS256 with, the others
	// still sign, and its token is refused.
	rs2.RetiredAt = clock
	s.Add(rs2)
	if _, err := s.Verify(old, "JWT", clock); !errors.Is(err, ErrBadJWT) {
		t.Fatalf("a retired RS256 key's token: %v", err)
	}
	if kid, ok := s.ActiveWith(AlgRS256); ok {
		t.Fatalf("retired chain still signs RS256 with %s", kid)
	}
	if signWith(AlgES256) != "es" {
		t.Fatal("retiring an RS256 key changed the ES256 key")
	}
	// Chain "" of another algorithm: SignWith(ES256) falls to chain ES256.
	es2 := testKey(t, "es2", AlgES256, t0)
	es2.Chain = AlgES256
	ed0 := testKey(t, "ed0", AlgEdDSA, t0)
	s2 := NewSigner(time.Hour, ed0, es2)
	if tok, _ := s2.Sign(AccessClaims{}, TypeAccessToken); kidOf(tok) != "ed0" {
		t.Fatal("Sign does not use chain \"\"")
	}
	if tok, _ := s2.SignWith(AlgES256, AccessClaims{}, "JWT"); kidOf(tok) != "es2" {
		t.Fatal("SignWith(ES256) does not use chain ES256 when chain \"\" is EdDSA")
	}
}

// TestSignerPinsAlgorithm: a token of the RS256 key whose header names another algorithm the key
// could verify (PS256, the same RSA key) is refused, as is an ES256 token relabelled EdDSA.
func TestSignerPinsAlgorithm(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	rs := testKey(t, "k1", AlgRS256, now)
	s := NewSigner(time.Hour, rs)
	payload := `{"jti":"x"}`
	for _, alg := range []jose.SignatureAlgorithm{jose.PS256, jose.RS384} {
		text := joseSign(t, alg, rs.Private, payload, nil)
		if _, err := s.Verify(text, TypeAccessToken, now); !errors.Is(err, ErrBadJWT) {
			t.Fatalf("%s token of the RS256 key: %v; want ErrBadJWT", alg, err)
		}
	}
	if _, err := s.Verify(joseSign(t, jose.RS256, rs.Private, payload, nil), TypeAccessToken, now); err != nil {
		t.Fatalf("the same content signed RS256: %v", err)
	}
}
