package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/token"
)

// OpenID Connect scopes (OpenID Connect Core 1.0 §3.1.2.1, §5.4).
const (
	ScopeOpenID  = "openid"
	ScopeProfile = "profile"
	ScopeEmail   = "email"
	// ScopeOfflineAccess asks that the refresh token outlive the sign-in's session (Core 1.0
	// §11; Back-Channel Logout 1.0 §2.7).
	ScopeOfflineAccess = "offline_access"
)

// typIDToken is the typ header of ID tokens ("JWT", as most providers send; RFC 7519 §5.1).
const typIDToken = "JWT"

// signIn is what an ID token says of the sign-in its grant was made in: the session (sid), when
// the person authenticated (auth_time), and the nonce of the authorization request.
type signIn struct {
	sid      string
	authTime time.Time
	nonce    string
}

func hasScope(scope, want string) bool { return slices.Contains(strings.Fields(scope), want) }

// idTokenClaims are the claims of an ID token (OpenID Connect Core 1.0 §2, §5.1).
type idTokenClaims struct {
	Issuer   string `json:"iss"`
	Subject  string `json:"sub"`
	Audience string `json:"aud"`
	Expiry   int64  `json:"exp"`
	IssuedAt int64  `json:"iat"`
	AuthTime int64  `json:"auth_time,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	AtHash   string `json:"at_hash,omitempty"`
	// SID is the session's id (Session.ID: a public identifier, never the cookie secret).
	SID string `json:"sid,omitempty"`
	// AMR says how the person authenticated: with a password (RFC 8176 §2 "pwd").
	AMR []string `json:"amr,omitempty"`
	AZP string   `json:"azp,omitempty"`
	userClaims
}

// userClaims are the standard claims of the profile and email scopes (§5.1, §5.4).
type userClaims struct {
	Name              string `json:"name,omitempty"`
	PreferredUsername string `json:"preferred_username,omitempty"`
	Email             string `json:"email,omitempty"`
	EmailVerified     *bool  `json:"email_verified,omitempty"`
}

// claimsOf returns the claims of u that scope allows.
func claimsOf(u rescind.User, scope string) userClaims {
	var c userClaims
	if hasScope(scope, ScopeProfile) {
		c.Name, c.PreferredUsername = u.Name, u.Username
	}
	if hasScope(scope, ScopeEmail) && u.Email != "" {
		no := false // addresses are not verified (Rescind does not track it)
		c.Email, c.EmailVerified = u.Email, &no
	}
	return c
}

// issueIDToken signs the ID token of a grant's tokens (§3.1.3.3, §12.2 on refresh): for
// client, about userID, with at_hash of accessToken, auth_time, sid and nonce from in.
func (s *Server) issueIDToken(ctx context.Context, client rescind.Client, userID, scope, accessToken string, is issuance, in signIn) (string, error) {
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return "", fmt.Errorf("reading the ID token's user: %w", err)
	}
	if s.idSigner == nil {
		return "", errors.New("oauth: no ID token signer")
	}
	exp := is.now.Add(min(is.ttl, time.Hour)).Unix()
	return s.idSigner.SignFor(client.IDTokenAlgorithm(), typIDToken, func(alg string) any {
		c := idTokenClaims{Issuer: s.issuer, Subject: userID, Audience: client.ID, Expiry: exp, IssuedAt: is.now.Unix(),
			Nonce: in.nonce, SID: in.sid, AMR: []string{"pwd"}, AZP: client.ID, userClaims: claimsOf(u, scope)}
		if !in.authTime.IsZero() {
			c.AuthTime = in.authTime.Unix()
		}
		c.AtHash, _ = halfHash(alg, accessToken)
		return c
	})
}

// idTokenPending answers 503 temporarily_unavailable with Retry-After and reports true if an ID
// token for client cannot be signed now (the first key of its algorithm's chain is not in force
// yet, IDSigner.Ready): said before the code or refresh token is used, so a retry works.
func (s *Server) idTokenPending(w http.ResponseWriter, client rescind.Client) bool {
	if s.idSigner == nil || s.idSigner.Ready(client.IDTokenAlgorithm()) {
		return false
	}
	writeError(w, &Error{Code: "temporarily_unavailable", Status: http.StatusServiceUnavailable, RetryAfter: 30,
		Description: "the key that signs this client's ID tokens is not in force yet; retry"})
	return true
}

// parseIDToken verifies an ID token this server issued (its signature by a published key, its
// type and issuer), expired or not, as an id_token_hint is checked (§3.1.2.1: the hint may have
// expired; RP-Initiated Logout 1.0 §2).
func (s *Server) parseIDToken(ctx context.Context, text string) (idTokenClaims, error) {
	var c idTokenClaims
	if s.signer == nil {
		return c, token.ErrBadJWT
	}
	payload, err := s.signer.Verify(text, typIDToken, s.now())
	if errors.Is(err, token.ErrUnknownKey) && s.refreshSigning != nil {
		if kid, kerr := token.JWTKeyID(text); kerr == nil && s.refreshSigning(ctx, kid) {
			payload, err = s.signer.Verify(text, typIDToken, s.now())
		}
	}
	if err != nil {
		return c, err
	}
	if json.Unmarshal(payload, &c) != nil || c.Issuer != s.issuer || c.Subject == "" || c.Audience == "" {
		return c, token.ErrBadJWT
	}
	return c, nil
}

// handleUserInfo is the UserInfo endpoint (OpenID Connect Core 1.0 §5.3), GET or POST: the
// access token (RFC 6750 §2.1 header, or §2.2 form body on POST; a DPoP-bound one in the DPoP
// scheme with its proof, RFC 9449 §7) must be one of a person's grants with scope openid, and
// is checked exactly as introspection checks it: a revoked or expired token is 401
// invalid_token with a WWW-Authenticate challenge (RFC 6750 §3.1). Its audience must name this
// server (the issuer, as a token has when no resource was requested, or the UserInfo URL): a
// token restricted to other resource servers (RFC 8707 §2) is 401 invalid_token too. The
// claims are those of its scopes.
func (s *Server) handleUserInfo(w http.ResponseWriter, r *http.Request) {
	text, scheme, perr := s.bearerOf(w, r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	challenge := func(code, desc string) *Error {
		c := `Bearer realm="rescind"`
		if scheme == "DPoP" {
			c = `DPoP realm="rescind", algs="` + strings.Join(s.dpopAlgs(), " ") + `"`
		}
		if code != "" {
			c += `, error="` + code + `", error_description="` + desc + `"`
		}
		status := http.StatusUnauthorized
		if code == "insufficient_scope" {
			status = http.StatusForbidden
		}
		if code == "" {
			code = ErrInvalidRequest
		}
		return &Error{Code: code, Status: status, Description: desc, Challenge: c}
	}
	if text == "" {
		writeError(w, challenge("", "an access token is required"))
		return
	}
	at, err := s.parseAccess(r.Context(), text)
	if err != nil || s.dead(at) {
		writeError(w, challenge("invalid_token", "the access token is invalid, expired or revoked"))
		return
	}
	switch {
	case at.jkt != "" && scheme != "DPoP":
		// RFC 9449 §7.2: a bound token presented as a bearer token is refused.
		writeError(w, challenge("invalid_token", "the access token is DPoP-bound: present it in the DPoP scheme with a proof"))
		return
	case at.jkt == "" && scheme == "DPoP":
		writeError(w, challenge("invalid_token", "the access token is not DPoP-bound"))
		return
	case at.jkt != "":
		if _, err := s.dpop.Verify(r.Context(), r.Header.Values("DPoP"), dpop.Request{Method: r.Method, URL: s.issuer + "/oauth2/userinfo",
			AccessToken: text, JKT: at.jkt}); err != nil {
			writeError(w, challenge("invalid_dpop_proof", "the DPoP proof is invalid"))
			return
		}
	}
	if !slices.Contains(at.audience, s.issuer) && !slices.Contains(at.audience, s.issuer+"/oauth2/userinfo") {
		// A token audience-restricted to other resource servers (RFC 8707) is not for this
		// endpoint: else any of them could replay it here to read the person's claims.
		writeError(w, challenge("invalid_token", "the access token's audience is not this server"))
		return
	}
	if at.grantID == "" || !hasScope(at.scope, ScopeOpenID) {
		writeError(w, challenge("insufficient_scope", "the access token lacks the openid scope of a person's grant"))
		return
	}
	u, err := s.store.GetUser(r.Context(), at.subject)
	if errors.Is(err, rescind.ErrNotFound) {
		writeError(w, challenge("invalid_token", "the access token is invalid, expired or revoked"))
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "reading user", "err", err)
		writeError(w, errServer)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Subject string `json:"sub"`
		userClaims
	}{at.subject, claimsOf(u, at.scope)})
}

// bearerOf returns the access token of a resource request and its scheme ("Bearer" or "DPoP"):
// from the Authorization header, or on a POST from the form body's access_token (RFC 6750
// §2.2); "" if there is none. Two ways at once is an error (§2).
func (s *Server) bearerOf(w http.ResponseWriter, r *http.Request) (string, string, *Error) {
	var text, scheme string
	if h := r.Header.Get("Authorization"); h != "" {
		sch, tok, ok := strings.Cut(h, " ")
		switch {
		case ok && strings.EqualFold(sch, "Bearer"):
			scheme = "Bearer"
		case ok && strings.EqualFold(sch, "DPoP"):
			scheme = "DPoP"
		default:
			return "", "", &Error{Code: ErrInvalidRequest, Status: http.StatusUnauthorized, Description: "use the Bearer or DPoP scheme",
				Challenge: `Bearer realm="rescind", error="invalid_request"`}
		}
		text = strings.TrimSpace(tok)
	}
	if r.Method == http.MethodPost && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, perr := parseForm(w, r, s.maxBody)
		if perr != nil {
			return "", "", perr
		}
		if v := form.Get("access_token"); v != "" {
			if text != "" {
				return "", "", &Error{Code: ErrInvalidRequest, Status: http.StatusBadRequest, Description: "the access token was sent more than one way",
					Challenge: `Bearer realm="rescind", error="invalid_request"`}
			}
			text, scheme = v, "Bearer"
		}
	}
	return text, scheme, nil
}

// dpopAlgs returns the algorithms DPoP proofs may use.
func (s *Server) dpopAlgs() []string {
	if s.dpop != nil && s.dpop.Algorithms != nil {
		return s.dpop.Algorithms
	}
	return dpop.SupportedAlgorithms
}
