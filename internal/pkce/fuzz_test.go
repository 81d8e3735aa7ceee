package pkce

import (
	"crypto/sha256"
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
)

// The oracle below is written from RFC 7636 alone, not from this package's code.

// rfcVerifier is the ABNF of §4.1: code-verifier = 43*128unreserved, with
// unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
var rfcVerifier = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// rfcS256 computes BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) (§4.2) the way Appendix A
// describes base64url without padding: standard base64, '=' removed, '+' to '-', '/' to '_'.
func rfcS256(v string) string {
	sum := sha256.Sum256([]byte(v))
	s := base64.StdEncoding.EncodeToString(sum[:])
	s = strings.Split(s, "=")[0]
	s = strings.ReplaceAll(s, "+", "-")
	return strings.ReplaceAll(s, "/", "_")
}

// rfcAccepts is §4.6: the server verifies by transforming the verifier with the method the
// challenge was made with (S256, or plain: absent means plain, §4.3) and comparing.
func rfcAccepts(ch, method, v string) bool {
	if !rfcVerifier.MatchString(v) {
		return false
	}
	switch method {
	case "S256":
		return ch == rfcS256(v)
	case "plain", "":
		return ch == v
	}
	return false
}

// FuzzPKCE: for any challenge, method and verifier, Verify agrees with RFC 7636 §4.6, and
// CheckChallenge accepts every challenge a valid verifier produces with S256.
func FuzzPKCE(f *testing.F) {
	f.Add(challenge, S256, verifier)
	f.Add(verifier, Plain, verifier)
	f.Add(verifier, "", verifier)
	f.Add(verifier, "S512", verifier)
	f.Add("", "", "")
	f.Add("x", "S512", "\x00")
	f.Fuzz(func(t *testing.T, ch, method, v string) {
		CheckChallenge(ch, method, true) // must not panic, whatever it says
		if got, want := Verify(ch, method, v), rfcAccepts(ch, method, v); got != want {
			t.Fatalf("Verify(%q, %q, %q) = %v, RFC 7636 says %v", ch, method, v, got, want)
		}
		if rfcVerifier.MatchString(v) {
			if err := CheckChallenge(rfcS256(v), S256, false); err != nil {
				t.Fatalf("the S256 challenge of verifier %q refused: %v", v, err)
			}
		}
	})
}
