package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// v1Token was sealed by the format before audiences (format version 1, commit bb40a7e's
// token/opaque.go) under v1Key: tokens issued before the upgrade must still open, with no
// audience (the issuer's).
const v1Token = "rsc_at_Ad6tvu93yd8urM-O7QxjRWSYzX2tmQwaiqPnTEi6X0ahYiqONb-tZ8Qh3_aykiPCxcG-_9e6GjSyzvrWL4JOBczDy9LErosjmOgnQL6Lc16G8Z-SbZdmtKU_4ogdtezjYV8L4oxm2yFvzvi5Sp8"

func v1Keyring(t testing.TB) *Keyring {
	k := SealKey{ID: [4]byte{0xde, 0xad, 0xbe, 0xef}, Secret: make([]byte, 32)}
	for i := range k.Secret {
		k.Secret[i] = byte(i)
	}
	kr, err := NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestVersion1TokensStillOpen(t *testing.T) {
	kr := v1Keyring(t)
	c, err := kr.Open(v1Token)
	if err != nil {
		t.Fatalf("a version 1 token no longer opens: %v", err)
	}
	iat := time.Unix(1_800_000_000, 123456789)
	if c.ClientID != "client-1" || c.Subject != "alice" || c.GrantID != "g1" || c.Scope != "read write" ||
		!c.IssuedAt.Equal(iat) || !c.Expiry.Equal(iat.Add(time.Hour).Truncate(time.Second)) || c.ID[0] != 1 || c.ID[15] != 16 {
		t.Fatalf("claims = %+v", c)
	}
	if c.Audience != nil {
		t.Fatalf("a version 1 token has audience %v; want none (the issuer)", c.Audience)
	}
	// New tokens are version 2, and carry their audience.
	text, err := kr.Seal(&Claims{ClientID: "c", Audience: []string{"https://api.example"}, IssuedAt: iat, Expiry: iat})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(text[len(AccessPrefix):])
	if raw[0] != 2 {
		t.Fatalf("new token has format version %d", raw[0])
	}
}

func TestAudienceRoundTrip(t *testing.T) {
	kr, _ := newTestKeyring(t)
	for _, aud := range [][]string{nil, {"https://api.example"}, {"https://a.example", "urn:b", ""}} {
		c := sampleClaims(t)
		c.Audience = aud
		text, err := kr.Seal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kr.Open(text)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Audience, aud) || got.Scope != c.Scope || got.GrantID != c.GrantID {
			t.Fatalf("sealed audience %q, opened %q (%+v)", aud, got.Audience, got)
		}
	}
	c := sampleClaims(t)
	c.Audience = make([]string, MaxAudience+1)
	if _, err := kr.Seal(c); err == nil {
		t.Fatal("sealed more than MaxAudience audience values")
	}
}

// TestVersionIsAuthenticated: the version byte is in the authenticated header, so a version 2
// token relabelled as version 1 (to be read without its audience) fails authentication.
func TestVersionIsAuthenticated(t *testing.T) {
	kr, _ := newTestKeyring(t)
	c := sampleClaims(t)
	c.Audience = []string{"https://api.example"}
	text, _ := kr.Seal(c)
	raw, _ := base64.RawURLEncoding.DecodeString(text[len(AccessPrefix):])
	raw[0] = formatV1
	relabelled := AccessPrefix + base64.RawURLEncoding.EncodeToString(appendCRC(raw[:len(raw)-crcLen]))
	if _, err := kr.Open(relabelled); !errors.Is(err, ErrInvalid) {
		t.Fatalf("relabelled token: %v, want ErrInvalid", err)
	}
	raw[0] = 4
	unknown := AccessPrefix + base64.RawURLEncoding.EncodeToString(appendCRC(raw[:len(raw)-crcLen]))
	if _, err := kr.Open(unknown); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 4: %v, want ErrMalformed", err)
	}
}

func TestJWTAudience(t *testing.T) {
	for _, tc := range []struct {
		aud  Audience
		json string
	}{
		{Audience{"https://api.example"}, `"https://api.example"`},
		{Audience{"https://a.example", "https://b.example"}, `["https://a.example","https://b.example"]`},
	} {
		b, err := json.Marshal(tc.aud)
		if err != nil || string(b) != tc.json {
			t.Fatalf("Marshal(%q) = %s, %v; want %s", tc.aud, b, err, tc.json)
		}
		var back Audience
		if err := json.Unmarshal(b, &back); err != nil || !slices.Equal(back, tc.aud) {
			t.Fatalf("Unmarshal(%s) = %q, %v", b, back, err)
		}
	}
	var a Audience
	if err := json.Unmarshal([]byte(`{"x":1}`), &a); err == nil {
		t.Fatal("an object read as an audience")
	}
}

// FuzzParseClaims: any plaintext of either version parses or is refused without panicking, and
// what parses encodes back to exactly the same bytes (one encoding per set of claims).
func FuzzParseClaims(f *testing.F) {
	c := &Claims{ClientID: "c", Subject: "s", GrantID: "g", Scope: "read", IssuedAt: time.Unix(1, 5), Expiry: time.Unix(100, 0),
		Audience: []string{"https://a.example", "urn:x"}}
	f.Add(appendClaims(nil, c, 1), byte(1))
	f.Add(appendClaims(nil, c, 2), byte(2))
	f.Add(append(appendClaims(nil, c, 1), 0xff, 0xff, 0xff, 0xff, 0x0f), byte(2))
	bound := *c
	bound.JKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
	f.Add(appendClaims(nil, &bound, formatDPoP), byte(formatDPoP))
	f.Add(appendClaims(nil, c, formatDPoP), byte(formatDPoP)) // an empty thumbprint: refused
	f.Fuzz(func(t *testing.T, b []byte, v byte) {
		if v < formatV1 || v > formatDPoP {
			return
		}
		got, err := parseClaims(b, v)
		if err != nil {
			return
		}
		if len(got.Audience) > MaxAudience {
			t.Fatalf("parsed %d audience values", len(got.Audience))
		}
		if (v == formatDPoP) != (got.JKT != "") || len(got.JKT) > MaxJKTLength {
			t.Fatalf("version %d parsed with thumbprint %q", v, got.JKT)
		}
		if again := appendClaims(nil, got, v); !bytes.Equal(again, b) {
			t.Fatalf("re-encoded %x, parsed from %x", again, b)
		}
	})
}

// TestSealVersionByAudience: a token without an audience is sealed as version 1, which older
// releases read (and so revoke) during an upgrade; only a token with an audience needs version 2.
func TestSealVersionByAudience(t *testing.T) {
	kr, _ := newTestKeyring(t)
	for _, tc := range []struct {
		aud  []string
		want byte
	}{{nil, formatV1}, {[]string{"https://api.example"}, formatVersion}} {
		text, err := kr.Seal(&Claims{ClientID: "c", Subject: "s", IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour), Audience: tc.aud})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := strictB64.DecodeString(strings.TrimPrefix(text, AccessPrefix))
		if err != nil || raw[0] != tc.want {
			t.Fatalf("audience %v: sealed as version %d, want %d", tc.aud, raw[0], tc.want)
		}
	}
}
