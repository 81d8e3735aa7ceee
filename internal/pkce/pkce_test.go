package pkce

import (
	"encoding/base64"
	"testing"
)

// The example of RFC 7636 Appendix B.
const (
	verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestVerify(t *testing.T) {
	if !Verify(challenge, S256, verifier) {
		t.Fatal("RFC 7636 Appendix B example does not verify")
	}
	for _, v := range []string{"", verifier + "x", verifier[:42], verifier[:40] + "!!!"} {
		if Verify(challenge, S256, v) {
			t.Errorf("verifier %q accepted", v)
		}
	}
	if !Verify(verifier, Plain, verifier) || !Verify(verifier, "", verifier) || Verify(challenge, Plain, verifier) {
		t.Error("plain method")
	}
}

func TestCheckChallenge(t *testing.T) {
	cases := []struct {
		challenge, method string
		plain, ok         bool
	}{
		{challenge, S256, false, true},
		{"", S256, false, false},
		{challenge[:40], S256, false, false},
		{verifier, Plain, false, false},
		{verifier, "", false, false},
		{verifier, Plain, true, true},
		{challenge, "S512", true, false},
		{"short", Plain, true, false},
	}
	for _, c := range cases {
		if err := CheckChallenge(c.challenge, c.method, c.plain); (err == nil) != c.ok {
			t.Errorf("CheckChallenge(%q, %q, %v) = %v", c.challenge, c.method, c.plain, err)
		}
	}
}

// TestVerifyRFCExample checks the transformation against the octets printed in RFC 7636
// Appendix B, independently of any base64 code: the verifier's 32 random octets, and the
// challenge those octets give.
func TestVerifyRFCExample(t *testing.T) {
	octets := []byte{116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173,
		187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121}
	if got := base64.RawURLEncoding.EncodeToString(octets); got != verifier {
		t.Fatalf("Appendix B verifier: %q, want %q", got, verifier)
	}
	if !Verify(challenge, S256, verifier) || Verify(challenge, "S512", verifier) || Verify(verifier, "S512", verifier) {
		t.Fatal("S256 must verify the Appendix B pair, and no unknown method may verify anything")
	}
}
