package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/internal/pkce"
	"github.com/rescind/rescind/token"
)

// revokeGrant revokes a grant and everything in it, for the given reason. The record lives as
// long as the tokens issued under the grant (the store knows their latest expiry): nothing here
// sizes it.
//
// The revocation runs to its end whether or not r's client waits for the answer: it is not
// cancelled with r (only bounded by revocationTimeout). When it answers a replayed code or
// refresh token, the replayer may well be the thief, who must not be able to save the grant by
// hanging up.
func (s *Server) revokeGrant(r *http.Request, grantID, actor, reason string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), revocationTimeout)
	defer cancel()
	_, _, err := s.committer.RevokeGrants(ctx, rescind.GrantFilter{GrantID: grantID}, rescind.Revocation{
		RevokedAt: s.now(), Actor: actor, Reason: reason})
	return err
}

// revocationTimeout bounds a grant revocation the server carries out on its own account.
const revocationTimeout = 30 * time.Second

// theft answers a single-use credential (a code, a refresh token) presented again by the client
// it was issued to: the grant it belongs to is revoked (RFC 6749 §4.1.2, RFC 9700 §4.14.2) and
// the event logged and audited as reason.
func (s *Server) theft(w http.ResponseWriter, r *http.Request, client rescind.Client, grantID, reason string) {
	s.log.WarnContext(r.Context(), "security: "+reason+"; revoking the grant", "client_id", client.ID, "grant_id", grantID)
	if err := s.revokeGrant(r, grantID, "client:"+client.ID, reason); err != nil {
		s.log.ErrorContext(r.Context(), "revoking grant after "+reason, "err", err)
		writeError(w, &Error{Code: ErrServerError, Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Description: "the grant could not be revoked; retry"})
		return
	}
	writeError(w, errInvalidGrant)
}

// singleUseFailed answers the failure of consuming a single-use credential and reports whether
// there was one. Losing a race to a concurrent redemption is reuse, hence theft.
func (s *Server) singleUseFailed(w http.ResponseWriter, r *http.Request, client rescind.Client, err error, grantID, reason string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, rescind.ErrReused):
		s.theft(w, r, client, grantID, reason)
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
//
// The code is looked up, not consumed, until the request has shown it may redeem it: only the
// client it was issued to, at its redirect URI and with the PKCE verifier of its challenge. A
// presentation by anyone else is refused and changes nothing, so seeing a code is not enough to
// burn its grant. The same client presenting it again, with its verifier, is the replay RFC 6749
// §4.1.2 describes (the code was stolen, or its redemption was): the grant is revoked. Public
// clients authenticate with their client_id alone, which is why the verifier is required
// before a replay counts (RFC 9700 §2.1.1 binds the code to the transaction by PKCE), and why
// only an S256 one: a plain verifier is the challenge, in the authorization URL for all to see.
//
// The token's audience is the resources the authorization request named, or those of them the
// token request names (RFC 8707 §2.2); checked before the code is consumed. A code of an openid
// sign-in whose session ended by the time it is redeemed is refused without offline_access
// (Back-Channel Logout 1.0 §2.7), and gets no ID token with it.
func (s *Server) handleAuthorizationCode(w http.ResponseWriter, r *http.Request, form url.Values, client rescind.Client, resources []string, proof *dpop.Proof) {
	code := form.Get("code")
	if code == "" {
		writeError(w, errorf(ErrInvalidRequest, http.StatusBadRequest, "code is required"))
		return
	}
	if !token.IsStored(code, token.CodePrefix) {
		writeError(w, errInvalidGrant)
		return
	}
	hash := token.Hash(code)
	ac, err := s.store.GetCode(r.Context(), hash)
	if errors.Is(err, rescind.ErrNotFound) {
		writeError(w, errInvalidGrant)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "reading code", "err", err)
		writeError(w, errServer)
		return
	}
	if ac.ClientID != client.ID {
		s.log.WarnContext(r.Context(), "security: authorization code presented by another client; refused, nothing changed",
			"client_id", client.ID)
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
	if ac.DPoPJKT != "" && jktOf(proof) != ac.DPoPJKT {
		writeError(w, errCodeKey) // RFC 9449 §10: not consumed; the holder of the key keeps it
		return
	}
	if !ac.UsedAt.IsZero() {
		if client.Public && ac.ChallengeMethod != pkce.S256 {
			// A public client's plain verifier is its challenge, which travelled in the
			// authorization URL (codes issued before public clients were refused plain PKCE):
			// presenting it proves nothing, so it is no evidence of theft.
			writeError(w, errInvalidGrant)
			return
		}
		s.theft(w, r, client, ac.GrantID, "authorization code reuse") // RFC 6749 §4.1.2
		return
	}
	audience, perr := narrowResources(client, resources, ac.Resources)
	if perr != nil {
		writeError(w, perr)
		return
	}
	is := s.newIssuance(client, proof)
	if !is.now.Before(ac.ExpiresAt) || s.revoked.GrantRevoked(ac.GrantID) {
		writeError(w, errInvalidGrant)
		return
	}
	g, err := s.store.GetGrant(r.Context(), ac.GrantID)
	if err != nil || !g.RevokedAt.IsZero() {
		if err != nil && !errors.Is(err, rescind.ErrNotFound) {
			s.log.ErrorContext(r.Context(), "reading grant", "err", err)
			writeError(w, errServer)
			return
		}
		writeError(w, errInvalidGrant)
		return
	}
	// Consumed only now, atomically: of two concurrent redemptions one wins and the other is a
	// replay. The same transaction records the expiry of the access token about to be issued
	// on the grant, which sizes the grant's revocation record, and its audience if the grant
	// lacks it (a code from before the operator limited the client's resources).
	if hasScope(ac.Scope, ScopeOpenID) && s.idTokenPending(w, client) {
		return // the code is not consumed: the client may retry
	}
	_, err = s.store.RedeemCode(r.Context(), hash, is.now, is.exp, s.audienceToRecord(g, audience))
	if s.singleUseFailed(w, r, client, err, ac.GrantID, "authorization code reuse") {
		return
	}
	// A logout may have committed since the code was read (it deletes the session's unused
	// codes, but not one whose redemption committed first): the session is read again now that
	// the redemption is durable, as a refresh does after its rotation. Ended, the sign-in is
	// over: without offline_access, invalid_grant (Back-Channel Logout 1.0 §2.7, as a refresh
	// token of it would be refused); with it, tokens but no ID token, which would assert the
	// ended sid (re-audit 4 #2). The refresh token issued keeps the sid, so that its refreshes
	// are checked against the ended session too. A logout committed after this read comes
	// after the answer, and its logout token covers what the answer carries.
	ended, ok := s.signInEnded(w, r, ac.SessionID, ac.Scope, is.now, "code")
	if !ok {
		return
	}
	s.issueGrantTokens(w, r, client, grantIssue{grantID: ac.GrantID, userID: ac.UserID, scope: ac.Scope, refreshScope: ac.Scope,
		audience: audience, refreshResources: ac.Resources,
		in: signIn{sid: ac.SessionID, authTime: ac.AuthTime, nonce: ac.Nonce}, noIDToken: ended}, is)
}

// handleRefreshToken serves grant_type=refresh_token (RFC 6749 §6) with rotation: every use
// returns a new refresh token and invalidates the old one; its own client presenting a used one
// (reuse) revokes the whole grant (RFC 9700 §4.14.2). Another client presenting it is refused
// and changes nothing. A refresh may narrow the scope and the resources (RFC 8707 §2.2), never
// widen them; the new refresh token keeps the old one's. A bound refresh token (RFC 9449 §5) is
// used only with a proof made with its key; without one it is refused and left as it was. A
// refresh token of an openid sign-in whose session ended is refused without offline_access
// (Back-Channel Logout 1.0 §2.7), and gets no ID token with it.
func (s *Server) handleRefreshToken(w http.ResponseWriter, r *http.Request, form url.Values, client rescind.Client, resources []string, proof *dpop.Proof) {
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
		s.log.WarnContext(r.Context(), "security: refresh token presented by another client; refused, nothing changed",
			"client_id", client.ID)
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
	if !rt.UsedAt.IsZero() {
		s.theft(w, r, client, rt.GrantID, "refresh token reuse") // RFC 9700 §4.14.2
		return
	}
	audience, perr := narrowResources(client, resources, rt.Resources)
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
	is := s.newIssuance(client, proof)
	in := signIn{sid: rt.SessionID, authTime: rt.AuthTime}
	ended, ok := s.signInEnded(w, r, rt.SessionID, rt.Scope, is.now, "refresh token")
	if !ok {
		return
	}
	if ended {
		in = signIn{}
	}
	if hasScope(rt.Scope, ScopeOpenID) && !ended && s.idTokenPending(w, client) {
		return // the refresh token is not rotated: the client may retry
	}
	// The rotation records the new access token's expiry on the grant in the same transaction,
	// and its audience if the grant lacks it (a grant from before the operator limited the
	// client's resources, whose tokens now go to those: narrowResources).
	_, err = s.store.RotateRefreshToken(r.Context(), hash, rescind.RefreshToken{Hash: nextHash, GrantID: rt.GrantID, ClientID: client.ID,
		Scope: rt.Scope, Resources: rt.Resources, CreatedAt: is.now, ExpiresAt: is.now.Add(s.refreshTTL), JKT: refreshBinding(client, rt.JKT, is.jkt),
		SessionID: rt.SessionID, AuthTime: rt.AuthTime}, is.now, is.exp, s.audienceToRecord(g, audience))
	if s.singleUseFailed(w, r, client, err, rt.GrantID, "refresh token reuse") {
		return
	}
	// A logout may have committed between the check above and the rotation (no transaction
	// ties them): the session is read again now that the rotation is durable. Ended, the answer
	// is what it would have been had the logout come first, so nothing issued after a logout
	// names its session (re-audit 3A #3); a logout committed after this read comes after the
	// answer, and its logout token covers what the answer carries.
	if !ended {
		if ended, ok = s.signInEnded(w, r, rt.SessionID, rt.Scope, is.now, "refresh token"); !ok {
			return
		}
		if ended {
			in = signIn{}
		}
	}
	// The refreshed ID token keeps the sign-in's sid and auth_time (OpenID Connect Core 1.0 §12.2)
	// while that sign-in's session lives. Once it ended (signed out, expired) there is no ID
	// token (§12.2: the response "might not contain an id_token"): a new one would assert a
	// sign-in that is over, and let the relying party revive the session it was told ended
	// (Back-Channel Logout 1.0 §2.7).
	s.respondGrantTokens(w, r, client, grantIssue{grantID: rt.GrantID, userID: g.UserID, scope: scope, audience: audience,
		in: in, noIDToken: ended}, next, is)
}

// audienceToRecord returns what the grant g must record, with the issuance of an access token
// whose audience is aud (the issuer's if empty), so that the token's audience is within the
// grant's and the grant's revocation record names every audience its tokens have (MayReceive
// decides who hears of it by that record): nil if g records all of aud already, else the
// grant's audience (the issuer's for a grant recorded before audiences were) and aud. The store
// adds it to the grant in the transaction that redeems the code or rotates the refresh token,
// before the token exists (re-audit 3A #1).
func (s *Server) audienceToRecord(g rescind.Grant, aud []string) []string {
	have, aud := s.grantAudience(g), s.audienceOf(aud)
	if containsAll(have, aud) {
		return nil
	}
	out := slices.Clone(have)
	for _, a := range aud {
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// signInEnded reports whether the OpenID sign-in (session sid) a code or refresh token of scope
// was issued in has ended at now. If it has and scope lacks offline_access, the token dies with
// the session (Back-Channel Logout 1.0 §2.7; the session's end is durable, so is this): it
// answers invalid_grant, naming what (kind) was presented, and ok is false; ok is false too
// after a 5xx. A token of no sign-in (sid "", or no openid) has not ended.
func (s *Server) signInEnded(w http.ResponseWriter, r *http.Request, sid, scope string, now time.Time, kind string) (ended, ok bool) {
	if sid == "" || !hasScope(scope, ScopeOpenID) {
		return false, true
	}
	live, err := s.sessionLive(r.Context(), sid, now)
	if err != nil {
		s.log.ErrorContext(r.Context(), "reading session", "err", err)
		writeError(w, errServer)
		return false, false
	}
	if !live && !hasScope(scope, ScopeOfflineAccess) {
		writeError(w, errorf(ErrInvalidGrant, http.StatusBadRequest, "the session this "+kind+" was issued in has ended"))
		return true, false
	}
	return !live, true
}

// sessionLive reports whether the session id (where a sign-in happened) is still live at now:
// not ended on any instance (the committer's record) and still stored and active.
func (s *Server) sessionLive(ctx context.Context, id string, now time.Time) (bool, error) {
	if s.revoked.SessionEnded(id) {
		return false, nil
	}
	sess, err := s.store.GetSessionByID(ctx, id)
	if errors.Is(err, rescind.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading session: %w", err)
	}
	return sess.Active(now), nil
}

// grantIssue is what the tokens issued under a grant carry.
type grantIssue struct {
	grantID, userID string
	// scope and audience are the access token's.
	scope    string
	audience []string
	// refreshScope and refreshResources are a new refresh token's: the code's in full.
	refreshScope     string
	refreshResources []string
	// in is what the ID token says of the sign-in (OpenID Connect), with scope openid.
	in signIn
	// noIDToken: the sign-in's session ended, so no ID token is issued even with scope openid.
	noIDToken bool
}

// issueGrantTokens issues an access token of the grant and, if the client may refresh, a new
// refresh token family member with the code's full scope and resources; an issuance with a
// DPoP key binds both to it as RFC 9449 §5 says (the refresh token only for a public client).
func (s *Server) issueGrantTokens(w http.ResponseWriter, r *http.Request, client rescind.Client, gi grantIssue, is issuance) {
	var refresh string
	if client.AllowsGrant(rescind.GrantRefreshToken) {
		text, hash, err := token.NewStored(token.RefreshPrefix)
		if err != nil {
			writeError(w, errServer)
			return
		}
		if err := s.store.CreateRefreshToken(r.Context(), rescind.RefreshToken{Hash: hash, GrantID: gi.grantID, ClientID: client.ID,
			Scope: gi.refreshScope, Resources: gi.refreshResources, CreatedAt: is.now, ExpiresAt: is.now.Add(s.refreshTTL),
			JKT: refreshBinding(client, "", is.jkt), SessionID: gi.in.sid, AuthTime: gi.in.authTime}); err != nil {
			s.log.ErrorContext(r.Context(), "storing refresh token", "err", err)
			writeError(w, errServer)
			return
		}
		refresh = text
	}
	s.respondGrantTokens(w, r, client, gi, refresh, is)
}

// respondGrantTokens issues the access token of a grant whose TokensExpireAt already covers
// is.exp, and answers with it and refresh.
// With scope openid, the answer has an ID token too (OpenID Connect Core 1.0 §3.1.3.3).
func (s *Server) respondGrantTokens(w http.ResponseWriter, r *http.Request, client rescind.Client, gi grantIssue, refresh string, is issuance) {
	resp, err := s.issueAccessToken(r.Context(), client, gi.grantID, gi.userID, gi.scope, gi.audience, is)
	if errors.Is(err, rescind.ErrNotFound) {
		// The grant was revoked since the redemption or rotation: its JWT's status entry could
		// not be recorded, and the token is not issued (see Store.RecordGrantTokenStatus).
		writeError(w, errInvalidGrant)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "issuing access token", "err", err)
		writeError(w, errServer)
		return
	}
	resp.RefreshToken = refresh
	if hasScope(gi.scope, ScopeOpenID) && !gi.noIDToken {
		if resp.IDToken, err = s.issueIDToken(r.Context(), client, gi.userID, gi.scope, resp.AccessToken, is, gi.in); err != nil {
			s.log.ErrorContext(r.Context(), "issuing ID token", "err", err)
			writeError(w, errServer)
			return
		}
	}
	if err := s.store.TouchGrant(r.Context(), gi.grantID, is.now); err != nil {
		s.log.WarnContext(r.Context(), "recording grant use", "err", err)
	}
	writeJSON(w, http.StatusOK, resp)
}
