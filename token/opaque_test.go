package token

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func newTestKeyring(t *testing.T) (*Keyring, SealKey) {
	t.Helper()
	k, err := NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	kr, err := NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	return kr, k
}

func sampleClaims(t *testing.T) *Claims {
	id, err := NewID()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 123456789)
	return &Claims{ID: id, ClientID: "client-1", Subject: "client-1", GrantID: "g", Scope: "read write",
		IssuedAt: now, Expiry: now.Add(time.Hour).Truncate(time.Second)}
}

func TestSealOpenRoundTrip(t *testing.T) {
	kr, _ := newTestKeyring(t)
	c := sampleClaims(t)
	text, err := kr.Seal(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(text, AccessPrefix) {
		t.Fatalf("token %q lacks prefix", text)
	}
	if strings.Contains(text, "client-1") || strings.Contains(text, "read") {
		t.Fatal("token text reveals its claims")
	}
	got, err := kr.Open(text)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != c.ID || got.ClientID != c.ClientID || got.Subject != c.Subject || got.GrantID != c.GrantID ||
		got.Scope != c.Scope || !got.IssuedAt.Equal(c.IssuedAt) || !got.Expiry.Equal(c.Expiry) {
		t.Fatalf("Open = %+v, want %+v", got, c)
	}
	again, _ := kr.Seal(c)
	if again == text {
		t.Fatal("two seals of the same claims are identical: nonce reuse")
	}
}

func TestOpenRejects(t *testing.T) {
	kr, _ := newTestKeyring(t)
	text, err := kr.Seal(sampleClaims(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(text[len(AccessPrefix):])

	// Flip a ciphertext bit and fix the checksum: decryption must fail.
	forged := append([]byte(nil), raw...)
	forged[headerLen+30] ^= 1
	body := forged[:len(forged)-crcLen]
	forgedText := AccessPrefix + base64.RawURLEncoding.EncodeToString(appendCRC(body))

	otherRing, _ := newTestKeyring(t)
	cases := []struct {
		name string
		text string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"no prefix", text[len(AccessPrefix):], ErrMalformed},
		{"other prefix", "rsc_rt_" + text[len(AccessPrefix):], ErrMalformed},
		{"truncated", text[:len(text)-3], ErrMalformed},
		{"bad base64", AccessPrefix + "!!!!", ErrMalformed},
		{"checksum", text[:40] + flip(text[40]) + text[41:], ErrMalformed},
		{"trailing bits", text[:len(text)-1] + flip(text[len(text)-1]), ErrMalformed},
		{"too long", AccessPrefix + strings.Repeat("A", MaxLength), ErrMalformed},
		{"line break", text[:30] + "\r\n" + text[30:], ErrMalformed},
		{"trailing LF", text + "\n", ErrMalformed},
		{"forged", forgedText, ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := kr.Open(tc.text); !errors.Is(err, tc.want) {
				t.Fatalf("Open err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := otherRing.Open(text); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("other keyring: %v, want ErrUnknownKey", err)
	}
}

func TestRotationKeepsOldTokens(t *testing.T) {
	kr, _ := newTestKeyring(t)
	c := sampleClaims(t)
	old, _ := kr.Seal(c)
	k2, _ := NewSealKey()
	k2.CreatedAt = time.Now() // newer than the first key, in force from now
	if err := kr.Add(k2); err != nil {
		t.Fatal(err)
	}
	fresh, _ := kr.Seal(c)
	if kid, _ := KeyID(fresh); kid != k2.ID {
		t.Fatalf("new token sealed by %x, want %x", kid, k2.ID)
	}
	for _, tok := range []string{old, fresh} {
		if _, err := kr.Open(tok); err != nil {
			t.Fatalf("Open after rotation: %v", err)
		}
	}
}

func TestKeyIDText(t *testing.T) {
	k, _ := NewSealKey()
	id, err := ParseKeyID(k.KeyIDString())
	if err != nil || id != k.ID {
		t.Fatalf("ParseKeyID = %x, %v", id, err)
	}
	if _, err := ParseKeyID("zz"); err == nil {
		t.Fatal("ParseKeyID accepted junk")
	}
}

func appendCRC(body []byte) []byte {
	out := append([]byte(nil), body...)
	return appendChecksum(out)
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func BenchmarkSeal(b *testing.B) {
	k, _ := NewSealKey()
	kr, _ := NewKeyring(k)
	c := &Claims{ClientID: "abcdefghijklmnopqrstuv", Subject: "abcdefghijklmnopqrstuv", Scope: "read write",
		IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Seal(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	k, _ := NewSealKey()
	kr, _ := NewKeyring(k)
	c := &Claims{ClientID: "abcdefghijklmnopqrstuv", Subject: "abcdefghijklmnopqrstuv", Scope: "read write",
		IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)}
	text, _ := kr.Seal(c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open(text); err != nil {
			b.Fatal(err)
		}
	}
}

// TestDecodeB64RefusesEveryOtherByte puts each byte outside the base64url alphabet at each place
// of a valid text: every one is refused, CR and LF (which Go's decoders skip) and '=' included,
// so a token has one spelling only.
func TestDecodeB64RefusesEveryOtherByte(t *testing.T) {
	valid := base64.RawURLEncoding.EncodeToString([]byte("sixteen bytes!!!?"))
	if got, err := decodeB64(valid); err != nil || string(got) != "sixteen bytes!!!?" {
		t.Fatalf("valid text: %q, %v", got, err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for c := range 256 {
		if strings.IndexByte(alphabet, byte(c)) >= 0 {
			continue
		}
		for i := 0; i <= len(valid); i++ {
			text := valid[:i] + string([]byte{byte(c)}) + valid[i:]
			if got, err := decodeB64(text); err == nil {
				t.Fatalf("byte %#x at %d accepted: decoded to %q", c, i, got)
			}
		}
	}
	// 17 bytes are 23 characters whose last 2 bits are padding: setting one is another
	// spelling of the same bytes.
	last := strings.IndexByte(alphabet, valid[len(valid)-1])
	if last%4 != 0 {
		t.Fatalf("test text %q: trailing bits not zero", valid)
	}
	if got, err := decodeB64(valid[:len(valid)-1] + alphabet[last+1:last+2]); err == nil {
		t.Fatalf("non-zero trailing bits accepted: %q", got)
	}
}
