package oauth

import (
	"errors"
	"net/http"
	"strings"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/token"
)

// handleRevoke is the revocation endpoint, RFC 7009 §2.
//
// The hint is only a hint (§2.1): the token is found whatever it says. An unknown, malformed,
// expired or already revoked token gets 200 (§2.2). A token issued to another client is not
// revoked, and the request is refused (§2.1). The 200 is sent only once the revocation is
// committed and synced.
func (s *Server) handleRevoke(w http.ResponseWriter, r *http.Request) {
	form, perr := parseForm(w, r, s.maxBody)
	if perr != nil {
		writeError(w, perr)
		return
	}
	client, perr := s.authenticateClient(r, form, true)
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
		s.revokeRefreshToken(w, r, client, text)
		return
	}
	// A client that authenticated itself may name its JWT by the token's tag; a public one
	// proves nothing but its id, so for it the token's signature is the credential.
	parse := s.parseAccessToRevoke
	if client.Public {
		parse = s.parseAccess
	}
	claims, err := parse(r.Context(), text)
	if err != nil {
		revoked(w) // not a token of ours: nothing to revoke (§2.2)
		return
	}
	if claims.clientID != client.ID {
		s.log.WarnContext(r.Context(), "revocation of another client's token refused", "client_id", client.ID)
		writeError(w, errorf(ErrUnauthorizedClient, http.StatusBadRequest, "the token was not issued to this client"))
		return
	}
	now := s.now()
	if s.dead(claims) {
		revoked(w)
		return
	}
	if s.grantWithAccess && claims.grantID != "" {
		if err := s.revokeGrant(r, claims.grantID, "client:"+client.ID, "access token revoked (grant cascade)"); err != nil {
			s.log.ErrorContext(r.Context(), "revoking grant", "err", err)
			writeError(w, &Error{Code: ErrServerError, Status: http.StatusServiceUnavailable, RetryAfter: 1,
				Description: "the revocation could not be recorded; retry"})
			return
		}
		revoked(w)
		return
	}
	rev := rescind.Revocation{Kind: rescind.RevokeToken, Key: claims.jti, ClientID: claims.clientID, RevokedAt: now, ExpiresAt: claims.expiry,
		Subject: claims.subject, StatusList: claims.statusList, StatusIdx: claims.statusIdx, Audience: claims.audience,
		Actor: "client:" + client.ID, Reason: "revocation endpoint"}
	if err := s.committer.Revoke(r.Context(), rev); err != nil {
		if r.Context().Err() != nil {
			return // the client went away; it got no acknowledgement
		}
		s.log.ErrorContext(r.Context(), "committing revocation", "err", err)
		writeError(w, &Error{Code: ErrServerError, Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Description: "the revocation could not be recorded; retry"})
		return
	}
	revoked(w)
}

// revokeRefreshToken revokes a refresh token, which revokes its whole grant: every access and
// refresh token issued under it.
func (s *Server) revokeRefreshToken(w http.ResponseWriter, r *http.Request, client rescind.Client, text string) {
	if !token.IsStored(text, token.RefreshPrefix) {
		revoked(w)
		return
	}
	rt, err := s.store.GetRefreshToken(r.Context(), token.Hash(text))
	if errors.Is(err, rescind.ErrNotFound) {
		revoked(w)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "reading refresh token", "err", err)
		writeError(w, errServer)
		return
	}
	if rt.ClientID != client.ID {
		s.log.WarnContext(r.Context(), "revocation of another client's token refused", "client_id", client.ID)
		writeError(w, errorf(ErrUnauthorizedClient, http.StatusBadRequest, "the token was not issued to this client"))
		return
	}
	if s.revoked.GrantRevoked(rt.GrantID) {
		revoked(w)
		return
	}
	if err := s.revokeGrant(r, rt.GrantID, "client:"+client.ID, "refresh token revoked"); err != nil {
		s.log.ErrorContext(r.Context(), "revoking grant", "err", err)
		writeError(w, &Error{Code: ErrServerError, Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Description: "the revocation could not be recorded; retry"})
		return
	}
	revoked(w)
}

// revoked writes the RFC 7009 §2.2 success response: 200 with an empty body.
func revoked(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}
