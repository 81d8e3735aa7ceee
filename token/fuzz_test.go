package token

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzOpen: any text is refused or opened without panicking; a text that opens re-seals to a
// token with the same claims.
func FuzzOpen(f *testing.F) {
	k := SealKey{ID: [4]byte{1, 2, 3, 4}, Secret: make([]byte, 32)}
	kr, _ := NewKeyring(k)
	valid, _ := kr.Seal(&Claims{ClientID: "c", Subject: "s", Scope: "read", IssuedAt: time.Unix(1, 0), Expiry: time.Unix(100, 0)})
	withAud, _ := kr.Seal(&Claims{ClientID: "c", Scope: "read", Audience: []string{"https://a.example", "urn:b"}})
	bound, _ := kr.Seal(&Claims{ClientID: "c", Scope: "read", JKT: "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"})
	for _, s := range []string{valid, withAud, bound, valid[:20], AccessPrefix, AccessPrefix + "AQECAwQ", "rsc_rt_x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := kr.Open(text)
		if err != nil {
			return
		}
		again, err := kr.Seal(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := kr.Open(again)
		if err != nil || c2.ClientID != c.ClientID || c2.Scope != c.Scope || c2.ID != c.ID || !slices.Equal(c2.Audience, c.Audience) || c2.JKT != c.JKT {
			t.Fatalf("re-sealed claims differ: %+v %+v %v", c, c2, err)
		}
	})
}

// FuzzVerifyJWT: any text is refused or verified without panicking; only the signer's own
// tokens verify.
func FuzzVerifyJWT(f *testing.F) {
	k, _ := NewSigningKey("k", AlgES256, time.Unix(0, 0))
	s := NewSigner(time.Hour, k)
	valid, _ := s.Sign(AccessClaims{ID: "j"}, TypeAccessToken)
	for _, x := range []string{valid, valid[:len(valid)-3], "eyJhbGciOiJub25lIn0.e30.", "eyJ.eyJ.eyJ", strings.Repeat("eyJ.", 3)} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, text string) {
		payload, err := s.Verify(text, TypeAccessToken, time.Unix(0, 0))
		if err == nil && text != valid && len(payload) == 0 {
			t.Fatal("verified an empty payload")
		}
	})
}

// FuzzDecodeStatusList: any lst decodes or fails without panicking, within the size bound, and
// any index reads or reports out of range.
func FuzzDecodeStatusList(f *testing.F) {
	f.Add("eNrbuRgAAhcBXQ", int64(3), 1)
	f.Add("eNo76fITAAPfAgc", int64(11), 2)
	f.Add("", int64(-1), 8)
	f.Add("eJz7", int64(1<<40), 3)
	f.Fuzz(func(t *testing.T, lst string, idx int64, bits int) {
		raw, err := DecodeStatusList(lst)
		if err != nil {
			return
		}
		if len(raw) > MaxStatusListBytes {
			t.Fatal("oversized list decoded")
		}
		StatusAt(raw, bits, idx)
	})
}
