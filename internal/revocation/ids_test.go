package revocation

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"testing"

	"github.com/rescind/rescind/internal/secret"
)

var stdGrantIDs = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// canonical decodes s with the standard decoder of enc and accepts it only if it is the one
// text enc gives those bytes (the standard decoders skip newlines, and base32 has no strict mode).
func canonical(enc interface {
	DecodeString(string) ([]byte, error)
	EncodeToString([]byte) string
}, s string) ([]byte, bool) {
	b, err := enc.DecodeString(s)
	return b, err == nil && enc.EncodeToString(b) == s
}

// TestParseIDs: the ids the server makes decode to their 16 bytes; every text that is not
// exactly the canonical form of 16 bytes does not, so no two texts share an id16.
func TestParseIDs(t *testing.T) {
	for range 1000 {
		var b [16]byte
		rand.Read(b[:])
		if id, ok := parseTokenID(base64.RawURLEncoding.EncodeToString(b[:])); !ok || id != id16(b) {
			t.Fatalf("token id of %x: %x, %t", b, id, ok)
		}
		if id, ok := parseGrantID(stdGrantIDs.EncodeToString(b[:])); !ok || id != id16(b) {
			t.Fatalf("grant id of %x: %x, %t", b, id, ok)
		}
	}
	gid, _ := secret.NewID() // how grant ids are made
	if _, ok := parseGrantID(gid); !ok {
		t.Fatalf("a grant id as the server makes it (%s) does not decode", gid)
	}
	jti := base64.RawURLEncoding.EncodeToString(make([]byte, 16)) // AAAA...AA
	for name, bad := range map[string]string{
		"empty":                 "",
		"one short":             jti[:21],
		"one long":              jti + "A",
		"padded":                jti[:20] + "==",
		"standard alphabet":     "+" + jti[1:],
		"trailing bits":         jti[:21] + "B", // B = 1: one of the 4 unused bits set
		"grant id as token id":  gid[:21] + "b", // b (27): unused bits set, whatever gid is
		"upper-case grant id":   "A" + gid[1:],
		"grant trailing bits":   gid[:25] + "b", // b = 1: one of the 2 unused bits set
		"token id as grant id":  jti + "AAAA",
		"grant id with a digit": "1" + gid[1:],
	} {
		_, tokOK := parseTokenID(bad)
		_, grantOK := parseGrantID(bad)
		if b, ok := canonical(base64.RawURLEncoding, bad); ok && len(b) == 16 {
			t.Fatalf("%s: the test case is a valid token id", name)
		}
		if tokOK || (grantOK && name != "token id as grant id") {
			t.Errorf("%s (%q): token %t, grant %t", name, bad, tokOK, grantOK)
		}
	}
	if _, ok := parseGrantID(jti + "AAAA"); ok {
		t.Error("upper-case base32 decoded as a grant id")
	}
}

// FuzzParseIDs: parseTokenID and parseGrantID accept exactly the texts the standard encoders
// write for 16 bytes, and decode them to those bytes.
func FuzzParseIDs(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("AAAAAAAAAAAAAAAAAAAAAB")
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaaa")
	f.Add("aaaaaaaaaaaaaaaaaaaaaaaaab")
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := parseTokenID(s)
		b, valid := canonical(base64.RawURLEncoding, s)
		if want := valid && len(b) == 16; ok != want || (ok && id != id16(b)) {
			t.Fatalf("parseTokenID(%q) = %x, %t; base64url: %x, %t", s, id, ok, b, valid)
		}
		id, ok = parseGrantID(s)
		b, valid = canonical(stdGrantIDs, s)
		if want := valid && len(b) == 16; ok != want || (ok && id != id16(b)) {
			t.Fatalf("parseGrantID(%q) = %x, %t; base32: %x, %t", s, id, ok, b, valid)
		}
	})
}
