package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Prefixes of the stored opaque credentials.
const (
	RefreshPrefix = "rsc_rt_"
	CodePrefix    = "rsc_ac_"
	// InitialAccessPrefix starts an initial access token for dynamic client registration
	// (RFC 7591 §3); RegistrationAccessPrefix a client's registration access token (RFC 7592 §1).
	InitialAccessPrefix      = "rsc_iat_"
	RegistrationAccessPrefix = "rsc_rat_"
)

// NewStored returns a new random credential with the given prefix (256 random bits) and the
// hash under which it is stored; the credential itself is never stored.
func NewStored(prefix string) (text, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("token: reading random bytes: %w", err)
	}
	text = prefix + base64.RawURLEncoding.EncodeToString(b)
	return text, Hash(text), nil
}

// Hash returns the hex SHA-256 of a stored credential's text: what the store keeps.
func Hash(text string) string {
	sum := sha256.Sum256([]byte(text))
	return hex.EncodeToString(sum[:])
}

// IsStored reports whether text looks like a stored credential with prefix (right prefix, right
// length, base64url), so malformed input is refused without a lookup.
func IsStored(text, prefix string) bool {
	rest, ok := strings.CutPrefix(text, prefix)
	if !ok || len(rest) != 43 {
		return false
	}
	_, err := decodeB64(rest)
	return err == nil
}
