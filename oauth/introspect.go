package oauth

import (
	"net/http"
	"strings"

	"github.com/rescind/rescind/token"
)

// introspection is the RFC 7662 §2.2 response for an active token.
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id"`
	TokenType string `json:"token_type"`
	Exp       int64  `json:"exp"`
	Iat       int64  `json:"iat"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss"`
	Jti       string `json:"jti,omitempty"`
}

var inactive = struct {
	Active bool `json:"active"`
}{false}

// handleIntrospect is the introspection endpoint, RFC 7662 §2. The caller authenticates as a
// confidential client. Anything revoked, expired, unknown or malformed is {"active": false},
// with no further detail (§2.2).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, perr := parseForm(w, r, s.maxBody)
	if perr != nil {
		writeError(w, perr)
		return
	}
	if _, perr := s.authenticateClient(r, form, false); perr != nil {
		writeError(w, perr)
		return
	}
	text := form.Get("token")
	if text == "" {
		writeError(w, errorf(ErrInvalidRequest, http.StatusBadRequest, "token is required"))
		return
	}
	if strings.HasPrefix(text, token.RefreshPrefix) {
		s.introspectRefreshToken(w, r, text)
		return
	}
	at, err := s.parseAccess(r.Context(), text)
	if err != nil || s.dead(at) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	writeJSON(w, http.StatusOK, introspection{
		Active: true, Scope: at.scope, ClientID: at.clientID, TokenType: "Bearer",
		Exp: at.expiry.Unix(), Iat: at.issuedAt.Unix(), Sub: at.subject, Aud: at.audience, Iss: s.issuer, Jti: at.jti,
	})
}

// introspectRefreshToken answers for a refresh token: active while unused, unexpired and its
// grant is not revoked.
func (s *Server) introspectRefreshToken(w http.ResponseWriter, r *http.Request, text string) {
	if !token.IsStored(text, token.RefreshPrefix) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	rt, err := s.store.GetRefreshToken(r.Context(), token.Hash(text))
	if err != nil || !rt.UsedAt.IsZero() || !s.now().Before(rt.ExpiresAt) || s.revoked.GrantRevoked(rt.GrantID) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	g, err := s.store.GetGrant(r.Context(), rt.GrantID)
	if err != nil || !g.RevokedAt.IsZero() {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	writeJSON(w, http.StatusOK, introspection{Active: true, Scope: rt.Scope, ClientID: rt.ClientID, TokenType: "refresh_token",
		Exp: rt.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(), Sub: g.UserID, Iss: s.issuer})
}
