package secret

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testParams = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	for _, s := range []string{"", "simple", "a:b%c+d e\u00e9", strings.Repeat("x", 1000)} {
		h, err := Hash(s, testParams)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(h, s) && s != "" {
			t.Fatalf("hash %q contains the secret", h)
		}
		ok, err := Verify(s, h)
		if err != nil || !ok {
			t.Fatalf("Verify(%q) = %v, %v; want true", s, ok, err)
		}
		ok, err = Verify(s+"x", h)
		if err != nil || ok {
			t.Fatalf("Verify(wrong) = %v, %v; want false", ok, err)
		}
	}
}

func TestVerifyMalformed(t *testing.T) {
	for _, h := range []string{"", "plain", "$argon2id$v=19$m=64,t=1,p=1$zz$", "$argon2i$v=19$m=64,t=1,p=1$AAAA$AAAA",
		"$argon2id$v=19$m=99999999,t=1,p=1$AAAA$AAAA", "$argon2id$v=18$m=64,t=1,p=1$AAAA$AAAA"} {
		if _, err := Verify("x", h); !errors.Is(err, ErrMalformedHash) {
			t.Errorf("Verify(%q) err = %v, want ErrMalformedHash", h, err)
		}
	}
}

func TestGenerateUnreserved(t *testing.T) {
	s, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 43 {
		t.Fatalf("len = %d, want 43 (256 bits)", len(s))
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			t.Fatalf("secret %q has a reserved character %q", s, r)
		}
	}
}

func TestBox(t *testing.T) {
	b, err := NewBox(bytes.Repeat([]byte("k"), 32))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := b.Seal([]byte("material"), []byte("kid1"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := b.Open(sealed, []byte("kid1"))
	if err != nil || string(pt) != "material" {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := b.Open(sealed, []byte("kid2")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with other aad: %v", err)
	}
	other, _ := NewBox(bytes.Repeat([]byte("j"), 32))
	if _, err := other.Open(sealed, []byte("kid1")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with other key: %v", err)
	}
	if _, err := b.Open([]byte("short"), nil); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open short: %v", err)
	}
	if _, err := NewBox([]byte("short")); err == nil {
		t.Fatal("NewBox accepted a short key")
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "secrets.key")
	a, err := LoadOrCreateKeyFile(p)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v; want 0600", st.Mode(), err)
	}
	b, err := LoadOrCreateKeyFile(p)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("second load differs: %v", err)
	}
}

func TestNewID(t *testing.T) {
	for range 1000 {
		id, err := NewID()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 26 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("id %q is not 26 lowercase base32 characters", id)
		}
	}
}

// TestDeriveKey: a derived key depends on the secrets key and the purpose, and on nothing else.
func TestDeriveKey(t *testing.T) {
	a, _ := NewBox([]byte("0123456789abcdef0123456789abcdef"))
	a2, _ := NewBox([]byte("0123456789abcdef0123456789abcdef"))
	b, _ := NewBox([]byte("another secrets key, 32 bytes long"))
	k1, err := a.DeriveKey("dpop nonce", 32)
	if err != nil || len(k1) != 32 {
		t.Fatalf("DeriveKey = %x, %v", k1, err)
	}
	same, _ := a2.DeriveKey("dpop nonce", 32)
	otherPurpose, _ := a.DeriveKey("something else", 32)
	otherBox, _ := b.DeriveKey("dpop nonce", 32)
	if string(same) != string(k1) {
		t.Fatal("two instances with one secrets key derive different keys")
	}
	if string(otherPurpose) == string(k1) || string(otherBox) == string(k1) || string(k1) == string(a.key[:]) {
		t.Fatal("a derived key does not depend on its purpose and secrets key alone")
	}
	if _, err := a.DeriveKey("", 32); err == nil {
		t.Fatal("derived a key for no purpose")
	}
}
