package token

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSignVerifyRotateRetire(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	k1, err := NewSigningKey("k1", AlgES256, t0)
	if err != nil {
		t.Fatal(err)
	}
	s := NewSigner(time.Hour, k1)
	clock := t0
	s.Now = func() time.Time { return clock }
	tok, err := s.Sign(AccessClaims{Issuer: "https://as", Subject: "u", ID: "j1"}, TypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := s.Verify(tok, TypeAccessToken, t0)
	var c AccessClaims
	if err != nil || json.Unmarshal(payload, &c) != nil || c.ID != "j1" {
		t.Fatalf("Verify = %s, %v", payload, err)
	}
	if _, err := s.Verify(tok, TypeStatusList, t0); !errors.Is(err, ErrBadJWT) {
		t.Fatal("wrong typ accepted")
	}
	// Rotate to an EdDSA key: the old key verifies until RetireAfter past the rotation.
	k2, _ := NewSigningKey("k2", AlgEdDSA, t0.Add(time.Minute))
	s.Add(k2)
	clock = t0.Add(time.Minute)
	tok2, _ := s.Sign(AccessClaims{ID: "j2"}, TypeAccessToken)
	if !strings.Contains(string(mustHeader(t, tok2)), `"kid":"k2"`) {
		t.Fatal("new tokens not signed by the newest key")
	}
	if _, err := s.Verify(tok, TypeAccessToken, t0.Add(30*time.Minute)); err != nil {
		t.Fatalf("old key refused before retirement: %v", err)
	}
	if len(s.JWKS(t0.Add(30*time.Minute)).Keys) != 2 {
		t.Fatal("old key not published before retirement")
	}
	later := t0.Add(time.Minute + time.Hour + time.Second)
	if _, err := s.Verify(tok, TypeAccessToken, later); !errors.Is(err, ErrBadJWT) {
		t.Fatal("retired key still verifies")
	}
	if ks := s.JWKS(later).Keys; len(ks) != 1 || ks[0].KeyID != "k2" {
		t.Fatalf("JWKS after retirement = %v", ks)
	}
	// Tampering, truncation, a key the signer does not hold.
	other, _ := NewSigningKey("k2", AlgEdDSA, t0)
	forged, _ := NewSigner(time.Hour, other).Sign(AccessClaims{ID: "x"}, TypeAccessToken)
	for name, bad := range map[string]string{"truncated": tok2[:len(tok2)-5], "forged": forged, "garbage": "eyJ.a.b", "empty": ""} {
		if _, err := s.Verify(bad, TypeAccessToken, t0); !errors.Is(err, ErrBadJWT) {
			t.Fatalf("%s accepted", name)
		}
	}
	der, _ := k1.MarshalPrivate()
	if _, err := ParsePrivate(der); err != nil {
		t.Fatal(err)
	}
}

func mustHeader(t *testing.T, tok string) []byte {
	t.Helper()
	h, err := strictB64.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return h
}
