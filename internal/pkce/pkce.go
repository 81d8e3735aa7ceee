// Package pkce checks Proof Key for Code Exchange values (RFC 7636): a code challenge and its
// method at the authorization endpoint (§4.2, §4.3; S256, or plain for a client allowed it) and
// a code verifier against the challenge at the token endpoint (§4.6).
package pkce

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
)

// Methods (RFC 7636 §4.2).
const (
	S256  = "S256"
	Plain = "plain"
)

// validValue reports whether v is 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." /
// "_" / "~", the syntax of both the verifier (§4.1) and, for these methods, the challenge.
func validValue(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// CheckChallenge validates a code challenge and its method at the authorization endpoint.
// allowPlain says whether the client may use "plain".
func CheckChallenge(challenge, method string, allowPlain bool) error {
	if challenge == "" {
		return errors.New("code_challenge is required (PKCE, RFC 7636)")
	}
	switch method {
	case S256:
		if len(challenge) != 43 || !validValue(challenge) {
			return errors.New("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
		}
	case Plain, "":
		if !allowPlain {
			return errors.New("code_challenge_method must be S256")
		}
		if !validValue(challenge) {
			return errors.New("code_challenge must be 43 to 128 unreserved characters")
		}
	default:
		return errors.New("unsupported code_challenge_method")
	}
	return nil
}

// Verify reports whether verifier matches the challenge made with method (RFC 7636 §4.6),
// comparing in constant time. An absent method means "plain" (§4.3); any other method fails.
func Verify(challenge, method, verifier string) bool {
	if !validValue(verifier) {
		return false
	}
	var want string
	switch method {
	case S256:
		sum := sha256.Sum256([]byte(verifier))
		want = base64.RawURLEncoding.EncodeToString(sum[:])
	case Plain, "":
		want = verifier
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}
