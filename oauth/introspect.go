package oauth

import (
	"net/http"
	"strings"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/token"
)

// introspection is the RFC 7662 §2.2 response for an active token.
type introspection struct {
	Active    bool           `json:"active"`
	Scope     string         `json:"scope,omitempty"`
	ClientID  string         `json:"client_id"`
	TokenType string         `json:"token_type"`
	Exp       int64          `json:"exp"`
	Iat       int64          `json:"iat"`
	Sub       string         `json:"sub,omitempty"`
	Aud       token.Audience `json:"aud,omitempty"`
	Iss       string         `json:"iss"`
	Jti       string         `json:"jti,omitempty"`
	// Cnf is the DPoP key a bound token is bound to (RFC 9449 §6.2).
	Cnf *token.Confirmation `json:"cnf,omitempty"`
}

var inactive = struct {
	Active bool `json:"active"`
}{false}

// handleIntrospect is the introspection endpoint, RFC 7662 §2. The caller authenticates as a
// confidential client and learns about a token only if it may (RFC 7662 §4, rescind.MayIntrospect):
// an access token is visible to its own client and to resource servers for its audience, a
// refresh token to its own client alone. Anything else (a token the caller may not see, or one
// revoked, expired, unknown or malformed) is exactly {"active": false}, with no further detail
// (§2.2), so a caller cannot tell a token it may not see from one that does not exist.
//
// A refresh token asked about with token_type_hint=access_token is inactive too. RFC 7662 §2.1
// makes the hint a hint, to be searched past when the token is not found with it; but a Rescind
// token's type is in its prefix, so no search is involved: the caller asked whether an access
// token is active, and a refresh token is not one, nor usable at any resource server. Answering
// it active (token_type "refresh_token", no cnf) would let a resource server that checks only
// "active", and introspects with the client's own credentials, take an unbound refresh token of
// a client whose access tokens are DPoP-bound for a bearer access token (§2.2 allows inactive for
// a token the caller may not introspect). Without a hint, or with refresh_token, the token's own
// client gets its answer as before.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	form, perr := parseForm(w, r, s.maxBody)
	if perr != nil {
		writeError(w, perr)
		return
	}
	caller, perr := s.authenticateClient(r, form, false)
	if perr != nil {
		writeError(w, perr)
		return
	}
	text := form.Get("token")
	if text == "" {
		writeError(w, errorf(ErrInvalidRequest, http.StatusBadRequest, "token is required"))
		return
	}
	if strings.HasPrefix(text, token.RefreshPrefix) {
		if form.Get("token_type_hint") == "access_token" {
			writeJSON(w, http.StatusOK, inactive)
			return
		}
		s.introspectRefreshToken(w, r, caller, text)
		return
	}
	at, err := s.parseAccess(r.Context(), text)
	if err != nil || !rescind.MayIntrospect(caller, at.clientID, at.audience) || s.dead(at) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	writeJSON(w, http.StatusOK, introspection{
		Active: true, Scope: at.scope, ClientID: at.clientID, TokenType: tokenType(at.jkt),
		Exp: at.expiry.Unix(), Iat: at.issuedAt.Unix(), Sub: at.subject, Aud: at.audience, Iss: s.issuer, Jti: at.jti,
		Cnf: confirmation(at.jkt),
	})
}

// introspectRefreshToken answers for a refresh token: to its own client alone, active while
// unused, unexpired and its grant is not revoked.
func (s *Server) introspectRefreshToken(w http.ResponseWriter, r *http.Request, caller rescind.Client, text string) {
	if !token.IsStored(text, token.RefreshPrefix) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	rt, err := s.store.GetRefreshToken(r.Context(), token.Hash(text))
	if err != nil || rt.ClientID != caller.ID || !rt.UsedAt.IsZero() || !s.now().Before(rt.ExpiresAt) || s.revoked.GrantRevoked(rt.GrantID) {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	g, err := s.store.GetGrant(r.Context(), rt.GrantID)
	if err != nil || !g.RevokedAt.IsZero() {
		writeJSON(w, http.StatusOK, inactive)
		return
	}
	writeJSON(w, http.StatusOK, introspection{Active: true, Scope: rt.Scope, ClientID: rt.ClientID, TokenType: "refresh_token",
		Exp: rt.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(), Sub: g.UserID, Iss: s.issuer, Cnf: confirmation(rt.JKT)})
}
