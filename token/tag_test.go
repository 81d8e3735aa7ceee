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

// ownFormCases returns a signer and texts around its access tokens: tagged tokens of keys whose
// kid JSON writes verbatim or not, and altered copies (tag, payload, header spelling, kid,
// signature length and spelling).
func ownFormCases(t testing.TB, now time.Time) (*Signer, []string) {
	t.Helper()
	var keys []SigningKey
	for i, kid := range []string{"k1", "a<b", `q"k`, "\u00e9t\u00e9", `k\1`} {
		keys = append(keys, testKey(t, kid, SigningAlgorithms[i%len(SigningAlgorithms)], now.Add(-time.Minute)))
	}
	s := NewSigner(time.Hour, keys...)
	var texts []string
	for _, k := range keys {
		text, err := NewSigner(time.Hour, k).Sign(benchClaims(1), TypeAccessToken)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(text, ".")
		hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
		enc := base64.RawURLEncoding.EncodeToString
		flip := func(s string, i int) string { // another base64url character at i
			c := byte('A')
			if s[i] == 'A' {
				c = 'B'
			}
			return s[:i] + string(c) + s[i+1:]
		}
		texts = append(texts, text,
			parts[0]+"."+flip(parts[1], 3)+"."+parts[2],                                      // payload altered
			flip(parts[0], len(parts[0])-6)+"."+parts[1]+"."+parts[2],                        // tag altered
			enc([]byte(strings.Replace(string(hb), `,`, `, `, 1)))+"."+parts[1]+"."+parts[2], // spaced header
			enc([]byte(strings.Replace(string(hb), `"kid":"`+k.ID, `"kid":"k1`, 1)))+"."+parts[1]+"."+parts[2],
			parts[0]+"."+parts[1]+"."+parts[2][:len(parts[2])-4],      // short signature
			parts[0]+"."+parts[1]+"."+parts[2]+"AA",                   // long signature
			parts[0]+"."+parts[1]+"."+flip(parts[2], len(parts[2])-1), // other trailing bits
			parts[0]+"."+parts[1]+".",
		)
	}
	return s, texts
}

// TestOwnFormAsGeneralPath: Authenticate's JSON-free path accepts a text only if the general
// path (the header decoded, the tag header built by encoding/json) accepts it too, with the same
// payload and kid; it does accept the signer's own tokens whose kid JSON writes verbatim, and
// leaves the others to the general path, which accepts them.
func TestOwnFormAsGeneralPath(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	s, texts := ownFormCases(t, now)
	fastOK, generalOK := 0, 0
	for _, at := range []time.Time{now, now.Add(1000 * time.Hour)} { // the second: keys retired
		for _, typ := range []string{TypeAccessToken, TypeStatusList} {
			for i, text := range texts {
				p1, k1, ok1 := s.authenticateOwnForm(text, typ, at)
				p2, k2, ok2 := s.authenticateByHeader(text, typ, at)
				if ok1 && (!ok2 || string(p1) != string(p2) || k1 != k2) {
					t.Fatalf("text %d (%s, %v): the own-form path accepts (kid %q) what the general path does not (%v, kid %q)", i, typ, at, k1, ok2, k2)
				}
				if ok1 {
					fastOK++
				}
				if ok2 {
					generalOK++
				}
				if ok1 && i/9 != 0 {
					t.Fatalf("text %d: the own-form path accepts a token of a key whose kid JSON escapes", i)
				}
				if i%9 == 0 && typ == TypeAccessToken && at == now {
					if !ok2 {
						t.Fatalf("token %d refused by the general path", i/9)
					}
					if plain := i/9 == 0; ok1 != plain {
						t.Fatalf("token %d (kid plain: %v): own-form path %v", i/9, plain, ok1)
					}
				}
			}
		}
	}
	// Besides the tokens themselves, the general path accepts some altered copies (by design,
	// any signature of the right length); the own-form path, those of the plain kid's token.
	if fastOK < 2 || generalOK < 5 {
		t.Fatalf("accepted: %d by the own-form path, %d by the general path", fastOK, generalOK)
	}
}

// FuzzOwnForm alters the signer's tokens at will: whatever the JSON-free path accepts, the
// general path accepts too, with the same payload and kid.
func FuzzOwnForm(f *testing.F) {
	now := time.Unix(1_900_000_000, 0)
	s, texts := ownFormCases(f, now)
	for _, text := range texts {
		f.Add(text)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p1, k1, ok1 := s.authenticateOwnForm(text, TypeAccessToken, now)
		if !ok1 {
			return
		}
		p2, k2, ok2 := s.authenticateByHeader(text, TypeAccessToken, now)
		if !ok2 || string(p1) != string(p2) || k1 != k2 {
			t.Fatalf("own-form path accepts %q (kid %q); general path: %v, kid %q", text, k1, ok2, k2)
		}
	})
}
