package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// splitJWT returns a token's three parts, the header decoded.
func splitJWT(t *testing.T, text string) (map[string]any, string, string) {
	t.Helper()
	parts := strings.Split(text, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", text)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h, parts[1], parts[2]
}

// joinJWT encodes header and joins it with payload and signature (encoded parts).
func joinJWT(t *testing.T, h map[string]any, payload, sig string) string {
	t.Helper()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b) + "." + payload + "." + sig
}

// TestAccessTokensCarryTheirTag: access tokens carry the tag; tokens of other types (status
// lists, ID tokens, security events) do not, and every token still verifies by its signature.
func TestAccessTokensCarryTheirTag(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	for _, alg := range SigningAlgorithms {
		s := NewSigner(time.Hour, testKey(t, "k1", alg, now.Add(-time.Minute)))
		for _, typ := range []string{TypeAccessToken, TypeStatusList, "JWT"} {
			text, err := s.SignWith(alg, benchClaims(0), typ)
			if err != nil {
				t.Fatal(err)
			}
			h, _, _ := splitJWT(t, text)
			if _, has := h[tagParam]; has != (typ == TypeAccessToken) {
				t.Errorf("%s %s: header %v: tag present %v, want %v", alg, typ, h, has, typ == TypeAccessToken)
			}
			if _, err := s.Verify(text, typ, now); err != nil {
				t.Errorf("%s %s: does not verify: %v", alg, typ, err)
			}
		}
	}
}

// TestAuthenticateByTag: Authenticate accepts a token of the signer's by its tag, whatever its
// signature of the right length, and nothing else: no other payload, kid, alg or typ under that
// tag, no tag of a retired key; a token without a tag still needs its signature.
func TestAuthenticateByTag(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	k1, k2 := testKey(t, "k1", AlgES256, now.Add(-2*time.Minute)), testKey(t, "k2", AlgES256, now.Add(-time.Minute))
	s := NewSigner(time.Hour, k1, k2) // k2 signs; k1 still verifies
	s.Now = func() time.Time { return now }
	tok, err := s.Sign(benchClaims(1), TypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Sign(benchClaims(2), TypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	h, payload, sig := splitJWT(t, tok)
	oh, opayload, _ := splitJWT(t, other)
	rawHeader, _, _ := strings.Cut(tok, ".")
	enc := base64.RawURLEncoding
	garbage := enc.EncodeToString(make([]byte, 64))

	if p, kid, err := s.Authenticate(tok, TypeAccessToken, now); err != nil || kid != "k2" || enc.EncodeToString(p) != payload {
		t.Fatalf("the token itself: kid %q, %v", kid, err)
	}
	// Another signature of the right length: the same header and claims, so the same token for
	// a revocation; the signature check (VerifyKey) refuses it.
	forged := rawHeader + "." + payload + "." + garbage
	if _, _, err := s.Authenticate(forged, TypeAccessToken, now); err != nil {
		t.Errorf("the token's header and claims with another signature: %v", err)
	}
	if _, _, err := s.VerifyKey(forged, TypeAccessToken, now); !errors.Is(err, ErrBadJWT) {
		t.Errorf("VerifyKey of another signature: %v, want ErrBadJWT", err)
	}

	// Headers as the signer writes them (its key order), with one value changed: each is
	// refused for that value, not for its spelling.
	hdr := func(alg, kid, typ string, tag any) string {
		b, err := json.Marshal(jwsHeader{Alg: alg, Kid: kid, Typ: typ, Tag: mustJSON(t, tag)})
		if err != nil {
			t.Fatal(err)
		}
		return enc.EncodeToString(b)
	}
	tag := h[tagParam].(string)
	if hdr(AlgES256, "k2", TypeAccessToken, tag) != rawHeader {
		t.Fatalf("the test writes headers otherwise than the signer: %s", mustDecode(t, rawHeader))
	}
	noTag := clone(h)
	delete(noTag, tagParam)
	withExtra := clone(h)
	withExtra["x5u"] = "https://elsewhere.example/"
	refused := map[string]string{
		"another token's claims under this tag":      rawHeader + "." + opayload + "." + sig,
		"the header re-encoded, its keys reordered":  joinJWT(t, h, payload, garbage),
		"the header with one more parameter":         joinJWT(t, withExtra, payload, garbage),
		"the header with a space":                    enc.EncodeToString(append(mustDecode(t, rawHeader), ' ')) + "." + payload + "." + garbage,
		"another token's tag":                        hdr(AlgES256, "k2", TypeAccessToken, oh[tagParam]) + "." + payload + "." + sig,
		"the tag under the other key's kid":          hdr(AlgES256, "k1", TypeAccessToken, tag) + "." + payload + "." + sig,
		"the tag under another typ":                  hdr(AlgES256, "k2", "application/at+jwt", tag) + "." + payload + "." + sig,
		"the tag under another alg":                  hdr(AlgEdDSA, "k2", TypeAccessToken, tag) + "." + payload + "." + garbage,
		"a tag one character off":                    hdr(AlgES256, "k2", TypeAccessToken, flipFirst(tag)) + "." + payload + "." + sig,
		"a tag that is not a string":                 hdr(AlgES256, "k2", TypeAccessToken, 1) + "." + payload + "." + sig,
		"a signature one byte short":                 rawHeader + "." + payload + "." + enc.EncodeToString(make([]byte, 63)),
		"no tag and another signature":               joinJWT(t, noTag, payload, garbage),
		"the claims with one more character of data": rawHeader + "." + payload + "A." + sig,
	}
	for name, text := range refused {
		if _, _, err := s.Authenticate(text, TypeAccessToken, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// Without its tag, the token is still recognised by its signature (tokens signed before tags).
	untagged := joinJWT(t, noTag, payload, sig)
	if _, _, err := s.VerifyKey(untagged, TypeAccessToken, now); err == nil {
		t.Fatal("the header changed, yet the old signature verifies")
	}
	plain, err := signJWS(AlgES256, "k2", TypeAccessToken, k2.Private, nil, mustDecode(t, payload))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Authenticate(plain, TypeAccessToken, now); err != nil {
		t.Errorf("a token without a tag, by its signature: %v", err)
	}

	// A retired key's tag authenticates nothing.
	retired := k2
	retired.RetiredAt = now
	s.Add(retired)
	if _, _, err := s.Authenticate(tok, TypeAccessToken, now); err == nil {
		t.Error("a token of a retired key accepted by its tag")
	}
}

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func clone(h map[string]any) map[string]any {
	c := make(map[string]any, len(h))
	for k, v := range h {
		c[k] = v
	}
	return c
}

// flipFirst changes the first character of s to another base64url character.
func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkAuthenticate measures recognising an access token of the signer's by its tag, against
// BenchmarkVerifyJWT's signature checks.
func BenchmarkAuthenticate(b *testing.B) {
	s := NewSigner(time.Hour, testKey(b, "k1", AlgES256, time.Unix(1_800_000_000, 0)))
	tok, err := s.Sign(benchClaims(0), TypeAccessToken)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Unix(1_900_000_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Authenticate(tok, TypeAccessToken, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestOthersRtgParameter: a token of another issuer may carry a parameter named rtg of any type
// (RFC 7515 §4: unknown parameters are ignored); ParseJWS reads it as it reads any other.
func TestOthersRtgParameter(t *testing.T) {
	for _, h := range []string{`{"alg":"ES256","rtg":1}`, `{"alg":"ES256","Rtg":{"a":[1]}}`, `{"alg":"ES256","rtg":null}`} {
		text := base64.RawURLEncoding.EncodeToString([]byte(h)) + ".e30." + base64.RawURLEncoding.EncodeToString(make([]byte, 64))
		if _, err := ParseJWS(text); err != nil {
			t.Errorf("header %s: %v", h, err)
		}
	}
}
