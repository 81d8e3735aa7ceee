package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/internal/pkce"
	"github.com/rescind/rescind/token"
)

// grantMargin extends a revoked grant's record past the longest access token of its client.
const grantMargin = time.Minute

// GrantRecordTTL returns how long a revocation record of a grant of a client whose token
// lifetime is clientTTL (zero: the default) must live: past its longest access token.
func (s *Server) GrantRecordTTL(clientTTL time.Duration) time.Duration {
	return GrantRecordTTL(s.TokenTTL(clientTTL))
}

// GrantRecordTTL returns how long a revocation record of a grant whose access tokens live
// tokenTTL must live: past the longest of them.
func GrantRecordTTL(tokenTTL time.Duration) time.Duration {
	return tokenTTL + grantMargin
}

// revokeGrant revokes a grant and everything in it, for the given reason.
func (s *Server) revokeGrant(r *http.Request, client rescind.Client, grantID, actor, reason string) error {
	now := s.now()
	_, _, err := s.committer.RevokeGrants(r.Context(), rescind.GrantFilter{GrantID: grantID}, rescind.Revocation{
		RevokedAt: now, ExpiresAt: now.Add(s.GrantRecordTTL(client.TokenTTL)), Actor: actor, Reason: reason})
	return err
}

// singleUseFailed answers the failure of redeeming a single-use credential (a code, a refresh
// token) and reports whether there was one. A credential presented again is theft: the grant it
// belongs to is revoked and the event logged and audited as reason.
func (s *Server) singleUseFailed(w http.ResponseWriter, r *http.Request, client rescind.Client, err error, grantID, reason string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, rescind.ErrReused):
		s.log.WarnContext(r.Context(), "security: "+reason+"; revoking the grant", "client_id", client.ID, "grant_id", grantID)
		if err := s.revokeGrant(r, client, grantID, "client:"+client.ID, reason); err != nil {
			s.log.ErrorContext(r.Context(), "revoking grant after "+reason, "err", err)
		}
		writeError(w, errInvalidGrant)
	case errors.Is(err, rescind.ErrNotFound):
		writeError(w, errInvalidGrant)
	default:
		s.log.ErrorContext(r.Context(), "redeeming a single-use credential", "err", err)
		writeError(w, errServer)
	}
	return true
}

var errInvalidGrant = errorf(ErrInvalidGrant, http.StatusBadRequest, "the authorization grant is invalid, expired, revoked or was issued to another client")

// handleAuthorizationCode serves grant_type=authorization_code (RFC 6749 §4.1.3, RFC 7636 §4.6).
func (s *Server) handleAuthorizationCode(w http.ResponseWriter, r *http.Request, form url.Values, client rescind.Client, proof *dpop.Proof) {
	code := form.Get("code")
	if code == "" {
		writeError(w, errorf(ErrInvalidRequest, http.StatusBadRequest, "code is required"))
		return
	}
	if !token.IsStored(code, token.CodePrefix) {
		writeError(w, errInvalidGrant)
		return
	}
	ac, err := s.store.RedeemCode(r.Context(), token.Hash(code), s.now())
	// RFC 6749 §4.1.2: a code used twice revokes every token issued from it.
	if s.singleUseFailed(w, r, client, err, ac.GrantID, "authorization code reuse") {
		return
	}
	if ac.ClientID != client.ID {
		writeError(w, errInvalidGrant)
		return
	}
	redirect := form.Get("redirect_uri")
	if (ac.RedirectURIGiven || redirect != "") && redirect != ac.RedirectURI {
		writeError(w, errorf(ErrInvalidGrant, http.StatusBadRequest, "redirect_uri does not match the authorization request"))
		return
	}
	if !pkce.Verify(ac.Challenge, ac.ChallengeMethod, form.Get("code_verifier")) {
		writeError(w, errorf(ErrInvalidGrant, http.StatusBadRequest, "code_verifier is missing or does not match the code challenge"))
		return
	}
	if s.revoked.GrantRevoked(ac.GrantID) {
		writeError(w, errInvalidGrant)
		return
	}
	s.issueGrantTokens(w, r, client, ac.GrantID, ac.UserID, ac.Scope, ac.Scope, proof)
}

// handleRefreshToken serves grant_type=refresh_token (RFC 6749 §6) with rotation: every use
// returns a new refresh token and invalidates the old one; presenting a used one (reuse) revokes
// the whole grant (RFC 9700 §4.14.2). A bound refresh token (RFC 9449 §5) is used only with a
// proof made with its key; without one it is refused and left as it was.
func (s *Server) handleRefreshToken(w http.ResponseWriter, r *http.Request, form url.Values, client rescind.Client, proof *dpop.Proof) {
	text := form.Get("refresh_token")
	if text == "" {
		writeError(w, errorf(ErrInvalidRequest, http.StatusBadRequest, "refresh_token is required"))
		return
	}
	if !token.IsStored(text, token.RefreshPrefix) {
		writeError(w, errInvalidGrant)
		return
	}
	hash := token.Hash(text)
	rt, err := s.store.GetRefreshToken(r.Context(), hash)
	if errors.Is(err, rescind.ErrNotFound) {
		writeError(w, errInvalidGrant)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "reading refresh token", "err", err)
		writeError(w, errServer)
		return
	}
	if rt.ClientID != client.ID {
		writeError(w, errInvalidGrant) // another client's token: not rotated, not revoked
		return
	}
	if rt.JKT != "" && jktOf(proof) != rt.JKT {
		writeError(w, errRefreshKey) // not rotated: the token's holder (with the key) keeps it
		return
	}
	// A refresh may narrow the scope, never widen it (RFC 6749 §6).
	scope, perr := grantScope(form.Get("scope"), strings.Fields(rt.Scope))
	if perr != nil {
		writeError(w, perr)
		return
	}
	if s.revoked.GrantRevoked(rt.GrantID) {
		writeError(w, errInvalidGrant)
		return
	}
	g, err := s.store.GetGrant(r.Context(), rt.GrantID)
	if err != nil || !g.RevokedAt.IsZero() {
		writeError(w, errInvalidGrant)
		return
	}
	next, nextHash, err := token.NewStored(token.RefreshPrefix)
	if err != nil {
		writeError(w, errServer)
		return
	}
	now := s.now()
	_, err = s.store.RotateRefreshToken(r.Context(), hash, rescind.RefreshToken{Hash: nextHash, GrantID: rt.GrantID, ClientID: client.ID,
		Scope: rt.Scope, CreatedAt: now, ExpiresAt: now.Add(s.refreshTTL), JKT: refreshBinding(client, rt.JKT, proof)}, now)
	// RFC 9700 §4.14.2: a rotated refresh token presented again revokes the whole grant.
	if s.singleUseFailed(w, r, client, err, rt.GrantID, "refresh token reuse") {
		return
	}
	s.respondGrantTokens(w, r, client, rt.GrantID, g.UserID, scope, next, jktOf(proof))
}

// issueGrantTokens issues an access token of the grant and, if the client may refresh, a new
// refresh token family member with the grant's full scope; with a proof, both are bound to its
// key as RFC 9449 §5 says (the refresh token only for a public client).
func (s *Server) issueGrantTokens(w http.ResponseWriter, r *http.Request, client rescind.Client, grantID, userID, scope, refreshScope string, proof *dpop.Proof) {
	var refresh string
	if client.AllowsGrant(rescind.GrantRefreshToken) {
		text, hash, err := token.NewStored(token.RefreshPrefix)
		if err != nil {
			writeError(w, errServer)
			return
		}
		now := s.now()
		if err := s.store.CreateRefreshToken(r.Context(), rescind.RefreshToken{Hash: hash, GrantID: grantID, ClientID: client.ID,
			Scope: refreshScope, CreatedAt: now, ExpiresAt: now.Add(s.refreshTTL), JKT: refreshBinding(client, "", proof)}); err != nil {
			s.log.ErrorContext(r.Context(), "storing refresh token", "err", err)
			writeError(w, errServer)
			return
		}
		refresh = text
	}
	s.respondGrantTokens(w, r, client, grantID, userID, scope, refresh, jktOf(proof))
}

func (s *Server) respondGrantTokens(w http.ResponseWriter, r *http.Request, client rescind.Client, grantID, userID, scope, refresh, jkt string) {
	resp, err := s.issueAccessToken(r.Context(), client, grantID, userID, scope, nil, jkt)
	if err != nil {
		s.log.ErrorContext(r.Context(), "issuing access token", "err", err)
		writeError(w, errServer)
		return
	}
	resp.RefreshToken = refresh
	if err := s.store.TouchGrant(r.Context(), grantID, s.now()); err != nil {
		s.log.WarnContext(r.Context(), "recording grant use", "err", err)
	}
	writeJSON(w, http.StatusOK, resp)
}
