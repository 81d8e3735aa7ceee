package revocation

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// TestTokenRefAnswersAsIsRevoked: a token parsed once (NewTokenRef, or NewTokenRefID from its
// bytes) is revoked exactly when IsRevoked says so, for ids in the server's forms and others,
// by token, grant and client cut-off.
func TestTokenRefAnswersAsIsRevoked(t *testing.T) {
	s := NewState()
	jti, gid := idText(1), grantText(1)
	s.Apply(
		rescind.Revocation{Kind: rescind.RevokeToken, Key: jti, ExpiresAt: t0.Add(time.Hour)},
		rescind.Revocation{Kind: rescind.RevokeToken, Key: "by-hand", ExpiresAt: t0.Add(time.Hour)},
		rescind.Revocation{Kind: rescind.RevokeGrant, Key: gid, ExpiresAt: t0.Add(time.Hour)},
		rescind.Revocation{Kind: rescind.RevokeGrant, Key: "grant-by-hand", ExpiresAt: t0.Add(time.Hour)},
		rescind.Revocation{Kind: rescind.RevokeClient, Key: "cut", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)},
	)
	revoked := 0
	for _, jt := range []string{jti, idText(2), "by-hand", "", "other"} {
		for _, g := range []string{"", gid, grantText(2), "grant-by-hand", "grant-other"} {
			for _, c := range []string{"cut", "client"} {
				for _, at := range []time.Time{t0, t0.Add(time.Nanosecond)} {
					want := s.IsRevoked(jt, g, c, at)
					ref := NewTokenRef(jt, g, c, at)
					if got := s.Revoked(&ref); got != want {
						t.Fatalf("Revoked(NewTokenRef(%q, %q, %q, %v)) = %t; IsRevoked = %t", jt, g, c, at, got, want)
					}
					if want {
						revoked++
					}
				}
			}
		}
	}
	if revoked == 0 || revoked == 5*5*2*2 {
		t.Fatalf("%d of 100 cases revoked: the cases do not tell revoked from not", revoked)
	}
	for _, i := range []int{1, 2} {
		b, _ := base64.RawURLEncoding.DecodeString(idText(i))
		ref := NewTokenRefID([16]byte(b), "", "client", t0)
		if got, want := s.Revoked(&ref), s.IsRevoked(idText(i), "", "client", t0); got != want {
			t.Fatalf("NewTokenRefID of token %d: %t; IsRevoked: %t", i, got, want)
		}
	}
}
