package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

const testJKT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"

// TestDPoPBoundRoundTrip: the thumbprint of a DPoP-bound token is sealed in format version 3,
// with or without an audience, and opens unchanged; a bearer token stays in the older versions.
func TestDPoPBoundRoundTrip(t *testing.T) {
	kr, _ := newTestKeyring(t)
	for _, tc := range []struct {
		aud     []string
		jkt     string
		version byte
	}{
		{nil, testJKT, formatDPoP},
		{[]string{"https://api.example", "urn:b"}, testJKT, formatDPoP},
		{nil, "", formatV1},
		{[]string{"https://api.example"}, "", formatVersion},
	} {
		c := sampleClaims(t)
		c.Audience, c.JKT = tc.aud, tc.jkt
		text, err := kr.Seal(c)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := strictB64.DecodeString(strings.TrimPrefix(text, AccessPrefix))
		if raw[0] != tc.version {
			t.Fatalf("aud %q jkt %q: sealed as version %d, want %d", tc.aud, tc.jkt, raw[0], tc.version)
		}
		got, err := kr.Open(text)
		if err != nil {
			t.Fatal(err)
		}
		if got.JKT != tc.jkt || !slices.Equal(got.Audience, tc.aud) || got.Scope != c.Scope || got.ID != c.ID {
			t.Fatalf("sealed %+v, opened %+v", c, got)
		}
	}
	c := sampleClaims(t)
	c.JKT = strings.Repeat("x", MaxJKTLength+1)
	if _, err := kr.Seal(c); err == nil {
		t.Fatal("sealed an oversized thumbprint")
	}
}

// TestDPoPBindingCannotBeStripped: relabelling a bound token as version 2 or 1 (which a reader
// would take for a bearer token) fails authentication, like any other change.
func TestDPoPBindingCannotBeStripped(t *testing.T) {
	kr, _ := newTestKeyring(t)
	c := sampleClaims(t)
	c.JKT = testJKT
	text, _ := kr.Seal(c)
	raw, _ := base64.RawURLEncoding.DecodeString(text[len(AccessPrefix):])
	for _, v := range []byte{formatVersion, formatV1} {
		raw[0] = v
		relabelled := AccessPrefix + base64.RawURLEncoding.EncodeToString(appendCRC(raw[:len(raw)-crcLen]))
		if _, err := kr.Open(relabelled); !errors.Is(err, ErrInvalid) {
			t.Fatalf("bound token relabelled as version %d: %v, want ErrInvalid", v, err)
		}
	}
}

// TestParseClaimsVersion3NeedsThumbprint: version 3 claims must end in a non-empty thumbprint.
func TestParseClaimsVersion3NeedsThumbprint(t *testing.T) {
	c := &Claims{ClientID: "c", Subject: "s", IssuedAt: time.Unix(1, 0), Expiry: time.Unix(2, 0)}
	if _, err := parseClaims(appendClaims(nil, c, formatDPoP), formatDPoP); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty thumbprint: %v, want ErrMalformed", err)
	}
	if _, err := parseClaims(appendClaims(nil, c, formatVersion), formatDPoP); !errors.Is(err, ErrMalformed) {
		t.Fatalf("version 2 claims read as version 3: %v, want ErrMalformed", err)
	}
	c.JKT = testJKT
	got, err := parseClaims(appendClaims(nil, c, formatDPoP), formatDPoP)
	if err != nil || got.JKT != testJKT {
		t.Fatalf("parsed %+v, %v", got, err)
	}
}

// TestJWTConfirmation: a bound JWT access token carries cnf.jkt (RFC 9449 §6.1); a bearer one
// has no cnf member at all.
func TestJWTConfirmation(t *testing.T) {
	b, _ := json.Marshal(AccessClaims{ID: "j", Confirmation: &Confirmation{JKT: testJKT}})
	if !strings.Contains(string(b), `"cnf":{"jkt":"`+testJKT+`"}`) {
		t.Fatalf("bound claims: %s", b)
	}
	b, _ = json.Marshal(AccessClaims{ID: "j"})
	if strings.Contains(string(b), "cnf") {
		t.Fatalf("bearer claims: %s", b)
	}
}
