package oauth

import (
	"net/http"
	"time"

	"github.com/rescind/rescind"
)

// cutOff answers a token request of a client whose next access token a client-wide cut-off
// would cover, and reports whether it answered. The cut-off of revoke-all --client lies past the
// clock skew allowed between instances (so that it covers what an instance whose clock is ahead
// issued before it): until it has passed, a token issued now would be dead on arrival. The
// client is told so, with when to come back (503 with Retry-After), and nothing is consumed:
// the request is refused before any code is redeemed or refresh token rotated.
func (s *Server) cutOff(w http.ResponseWriter, client rescind.Client) bool {
	cut, ok := s.revoked.ClientCutoff(client.ID)
	if !ok {
		return false
	}
	now := s.now()
	iat := now // as the token will carry it: to the second in a JWT
	if client.TokenFormat == rescind.TokenFormatJWT {
		iat = time.Unix(now.Unix(), 0)
	}
	if iat.After(cut) {
		return false
	}
	writeError(w, &Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable,
		RetryAfter: int(cut.Sub(now)/time.Second) + 1,
		Description: "every token of this client was revoked, up to " + cut.UTC().Format(time.RFC3339) +
			"; new tokens are issued after that moment"})
	return true
}
