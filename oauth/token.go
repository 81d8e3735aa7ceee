package oauth

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/token"
)

// tokenResponse is the successful token response of RFC 6749 §5.1.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// IDToken is the OpenID Connect ID token (OpenID Connect Core 1.0 §3.1.3.3).
	IDToken string `json:"id_token,omitempty"`
}

// handleToken is the token endpoint, RFC 6749 §3.2: the client credentials (§4.4),
// authorization code (§4.1.3, with PKCE) and refresh token (§6) grants; other grant types are
// refused with unsupported_grant_type. Public clients authenticate with client_id alone and may
// use only the code and refresh grants.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	form, perr := parseForm(w, r, s.maxBody, "resource") // RFC 8707 §2: resource may be repeated
	if perr != nil {
		writeError(w, perr)
		return
	}
	gt := form.Get("grant_type")
	switch gt {
	case "":
		writeError(w, errorf(ErrInvalidRequest, http.StatusBadRequest, "grant_type is required"))
		return
	case rescind.GrantClientCredentials, rescind.GrantAuthorizationCode, rescind.GrantRefreshToken:
	default:
		writeError(w, errorf(ErrUnsupportedGrantType, http.StatusBadRequest, "the grant type is not supported"))
		return
	}
	client, perr := s.authenticateClient(r, form, gt != rescind.GrantClientCredentials)
	if perr != nil {
		writeError(w, perr)
		return
	}
	if !client.AllowsGrant(gt) {
		writeError(w, errorf(ErrUnauthorizedClient, http.StatusBadRequest, "the client is not allowed to use this grant type"))
		return
	}
	resources, desc := parseResources(form["resource"])
	if desc != "" {
		writeError(w, invalidTarget(desc))
		return
	}
	// The DPoP proof is checked first, as part of the request's validity (a bad proof gets its
	// own error, which a retry would not cure); then the client cut-off, before anything is
	// consumed: a cut-off client is told when to come back (503), its code or refresh token
	// still unused, and it sends a new proof then (with the nonce this answer carries).
	proof, perr := s.tokenProof(w, r, client) // RFC 9449 §5
	if perr != nil {
		writeError(w, perr)
		return
	}
	if s.cutOff(w, client) {
		return
	}
	switch gt {
	case rescind.GrantAuthorizationCode:
		s.handleAuthorizationCode(w, r, form, client, resources, proof)
		return
	case rescind.GrantRefreshToken:
		s.handleRefreshToken(w, r, form, client, resources, proof)
		return
	}
	// Client credentials: the resources requested become the audience, if the client may ask
	// for them (RFC 8707 §2); none requested, those the client is limited to, else the issuer.
	resources, desc = defaultResources(client, resources)
	if desc == "" {
		desc = allowedResources(client, resources)
	}
	if desc != "" {
		writeError(w, invalidTarget(desc))
		return
	}
	allowed := s.clientCredentialsScopes(client)
	if len(allowed) == 0 && client.SelfRegistered() {
		// A self-registered client no scope was allowed to (an operator's limit of none, a
		// token made without --scope, no scope registered) gets no token at all: a token
		// with no scope is still active for any audience (re-audit 3A #6).
		writeError(w, errorf(ErrInvalidScope, http.StatusBadRequest,
			"no scope is allowed to this client by client credentials: an operator allows scopes with registration-token create --scope or client update --scope"))
		return
	}
	scope, perr := grantScope(form.Get("scope"), allowed)
	if perr != nil {
		writeError(w, perr)
		return
	}
	resp, err := s.issueAccessToken(r.Context(), client, "", client.ID, scope, resources, s.newIssuance(client, proof))
	if err != nil {
		s.log.ErrorContext(r.Context(), "issuing access token", "err", err)
		writeError(w, errServer)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// issuance is when an access token is issued, its lifetime and its expiry, and the DPoP key it
// is bound to.
type issuance struct {
	now, exp time.Time
	ttl      time.Duration
	// jkt is the thumbprint of the key of the request's DPoP proof (RFC 9449 §6); "" without one.
	jkt string
}

// newIssuance fixes the lifetime of an access token of client issued now: the client's ttl, else
// the server's, never more than rescind.MaxAccessTokenTTL. exp is truncated to the second, as
// tokens carry it: a grant records this very value before its token is issued. With a proof,
// the token is bound to its key.
func (s *Server) newIssuance(client rescind.Client, proof *dpop.Proof) issuance {
	now := s.now()
	ttl := s.TokenTTL(client.TokenTTL)
	return issuance{now: now, exp: now.Add(ttl).Truncate(time.Second), ttl: ttl, jkt: jktOf(proof)}
}

// issueAccessToken issues an access token in the client's format: opaque (sealed, nothing
// written) or JWT (RFC 9068, with a status list entry), issued and expiring as is says.
// audience lists the RFC 8707 resources; empty means the issuer. Both formats carry it, so
// introspection knows who may see the token. A token of an issuance with jkt is bound to that
// DPoP key (RFC 9449 §6) and of token_type DPoP.
func (s *Server) issueAccessToken(ctx context.Context, client rescind.Client, grantID, subject, scope string, audience []string, is issuance) (tokenResponse, error) {
	now, ttl, exp := is.now, is.ttl, is.exp
	audience = s.audienceOf(audience)
	var text string
	if client.TokenFormat == rescind.TokenFormatJWT {
		var err error
		if text, err = s.issueJWT(ctx, client, grantID, subject, scope, audience, is.jkt, now, exp); err != nil {
			return tokenResponse{}, err
		}
	} else {
		id, err := token.NewID()
		if err != nil {
			return tokenResponse{}, err
		}
		claims := &token.Claims{ID: id, ClientID: client.ID, GrantID: grantID, Subject: subject, Scope: scope, IssuedAt: now, Expiry: exp,
			Audience: audience, JKT: is.jkt}
		if text, err = s.keys.Seal(claims); err != nil {
			return tokenResponse{}, err
		}
	}
	s.metrics.TokenIssued()
	return tokenResponse{AccessToken: text, TokenType: tokenType(is.jkt), ExpiresIn: int64(ttl / time.Second), Scope: scope}, nil
}

// grantScope validates a requested scope (RFC 6749 §3.3) against the client's allowed scopes. An
// absent scope gets all of them.
func grantScope(requested string, allowed []string) (string, *Error) {
	scopes, err := rescind.ParseScope(requested, allowed)
	if err != nil {
		return "", errorf(ErrInvalidScope, http.StatusBadRequest, err.Error())
	}
	return strings.Join(scopes, " "), nil
}
