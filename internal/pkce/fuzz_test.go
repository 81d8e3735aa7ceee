package pkce

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"
)

// FuzzPKCE: any challenge, method and verifier are checked without panicking; a valid verifier
// always verifies against its own S256 challenge, and never against another's.
func FuzzPKCE(f *testing.F) {
	f.Add(challenge, S256, verifier)
	f.Add(verifier, Plain, verifier)
	f.Add("", "", "")
	f.Add("x", "S512", "\x00")
	f.Fuzz(func(t *testing.T, ch, method, v string) {
		CheckChallenge(ch, method, true)
		ok := Verify(ch, method, v)
		if !validValue(v) {
			if ok {
				t.Fatalf("invalid verifier %q verified", v)
			}
			return
		}
		sum := sha256.Sum256([]byte(v))
		own := base64.RawURLEncoding.EncodeToString(sum[:])
		if CheckChallenge(own, S256, false) != nil || !Verify(own, S256, v) {
			t.Fatalf("verifier %q does not verify against its own challenge", v)
		}
		if ok && method == S256 && ch != own {
			t.Fatalf("verifier %q verified against a foreign challenge %q", v, ch)
		}
	})
}
