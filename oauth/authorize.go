package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/pkce"
	redirectrule "github.com/rescind/rescind/internal/redirect"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/token"
)

// authRequest is a validated authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3).
type authRequest struct {
	client           rescind.Client
	redirectURI      string
	redirectURIGiven bool
	state            string
	scopes           []string
	resources        []string // RFC 8707: the resources the tokens are for; none, the issuer
	challenge        string
	method           string
	prompt           string
	raw              string // the query string, carried through login and consent
	// dpopJKT is the dpop_jkt parameter (RFC 9449 §10): the code is bound to that key.
	dpopJKT string
}

// redirectError is an error sent back to the client's redirect URI (RFC 6749 §4.1.2.1).
type redirectError struct {
	code, desc string
}

// parseAuthRequest validates the query q. A bad client_id or redirect_uri is a page error
// (pageErr): the user must not be redirected to an unverified URI. Every other problem is a
// redirectError for the validated redirect URI.
func (s *Server) parseAuthRequest(r *http.Request, raw string) (ar *authRequest, pageErr string, rerr *redirectError) {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, "The authorization request is malformed.", nil
	}
	one := func(k string) (string, bool) {
		vs := q[k]
		return strings.Join(vs, ""), len(vs) <= 1
	}
	clientID, ok := one("client_id")
	if !ok || clientID == "" {
		return nil, "The request does not name a valid client (client_id).", nil
	}
	var c rescind.Client
	if s.docs != nil && s.docs.IsClientID(clientID) {
		// A Client ID Metadata Document (clientdoc.go): the client is what its document says.
		if c, pageErr = s.documentClient(r, clientID); pageErr != "" {
			return nil, pageErr, nil
		}
	} else if c, err = s.clients.Get(r.Context(), clientID); err != nil {
		if !errors.Is(err, rescind.ErrNotFound) {
			s.log.ErrorContext(r.Context(), "reading client", "err", err)
		}
		return nil, "The request names an unknown client.", nil
	} else if c.Registration == rescind.RegistrationMetadataDocument {
		// The stored copy of a document client is for its tokens; a new authorization needs its
		// document, which this server does not fetch now (metadata documents turned off, or its
		// URL no longer allowed, as a loopback one in development).
		return nil, "This app is identified by a metadata document, which this server does not accept now.", nil
	}
	ar = &authRequest{client: c, raw: raw}
	redirect, ok := one("redirect_uri")
	switch {
	case !ok:
		return nil, "The request has more than one redirect_uri.", nil
	case redirect != "":
		// Exact match (RFC 9700 §4.1.3), but any port for a loopback URI (RFC 8252 §7.3).
		reg, ok := redirectrule.Match(c.RedirectURIs, redirect)
		if !ok {
			return nil, "The redirect_uri is not registered for this client.", nil
		}
		// A URI registered before the registration rules existed is held to them here.
		if err := redirectrule.Validate(reg, s.allowInsecure(c)); err != nil {
			return nil, "The client's registered redirect URI is not allowed: " + err.Error(), nil
		}
		ar.redirectURI, ar.redirectURIGiven = redirect, true
	case len(c.RedirectURIs) == 1:
		if err := redirectrule.Validate(c.RedirectURIs[0], s.allowInsecure(c)); err != nil {
			return nil, "The client's registered redirect URI is not allowed: " + err.Error(), nil
		}
		ar.redirectURI = c.RedirectURIs[0]
	default:
		return nil, "The request must name one of the client's registered redirect URIs.", nil
	}
	ar.state, _ = one("state")
	for _, k := range []string{"response_type", "scope", "state", "code_challenge", "code_challenge_method", "prompt", "dpop_jkt"} {
		if len(q[k]) > 1 {
			return ar, "", &redirectError{"invalid_request", "parameter " + k + " is included more than once"}
		}
	}
	switch rt, _ := one("response_type"); rt {
	case "code":
	case "":
		return ar, "", &redirectError{"invalid_request", "response_type is required"}
	default:
		return ar, "", &redirectError{"unsupported_response_type", "only response_type=code is supported"}
	}
	if !c.AllowsGrant(rescind.GrantAuthorizationCode) {
		return ar, "", &redirectError{"unauthorized_client", "the client may not use the authorization code grant"}
	}
	scope, _ := one("scope")
	if ar.scopes, err = rescind.ParseScope(scope, s.clientScopes(c, scope)); err != nil {
		return ar, "", &redirectError{"invalid_scope", err.Error()}
	}
	var desc string
	if ar.resources, desc = parseResources(q["resource"]); desc != "" {
		return ar, "", &redirectError{ErrInvalidTarget, desc}
	}
	if ar.resources, desc = defaultResources(c, ar.resources); desc != "" {
		return ar, "", &redirectError{ErrInvalidTarget, desc}
	}
	if desc := allowedResources(c, ar.resources); desc != "" {
		return ar, "", &redirectError{ErrInvalidTarget, desc}
	}
	ar.challenge, _ = one("code_challenge")
	ar.method, _ = one("code_challenge_method")
	if err := pkce.CheckChallenge(ar.challenge, ar.method, c.MayUsePlainPKCE()); err != nil {
		return ar, "", &redirectError{"invalid_request", err.Error()}
	}
	if ar.method == "" {
		ar.method = pkce.Plain
	}
	ar.prompt, _ = one("prompt")
	if ar.dpopJKT, _ = one("dpop_jkt"); ar.dpopJKT != "" && !validJKT(ar.dpopJKT) {
		return ar, "", &redirectError{"invalid_request", "dpop_jkt must be the base64url JWK SHA-256 thumbprint (RFC 7638) of the DPoP key (RFC 9449 §10)"}
	}
	return ar, "", nil
}

// allowInsecure reports whether client c may be redirected to a plain-http URI off loopback:
// if it was registered so, and, for a client that registered itself, while the server allows it
// (Config.AllowInsecureRedirect).
func (s *Server) allowInsecure(c rescind.Client) bool {
	return c.AllowInsecureRedirect && (!c.SelfRegistered() || s.insecureRedir)
}

// redirect sends the user agent to the client's redirect URI with params, keeping any query the
// registered URI has, plus state and iss (RFC 9207).
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, ar *authRequest, params url.Values) {
	u, err := url.Parse(ar.redirectURI)
	if err != nil {
		s.pages.ShowError(w, r, http.StatusBadRequest, "The client's redirect URI is invalid.")
		return
	}
	q := u.Query()
	for k, vs := range params {
		q[k] = vs
	}
	if ar.state != "" {
		q.Set("state", ar.state)
	}
	q.Set("iss", s.issuer)
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (s *Server) redirectErr(w http.ResponseWriter, r *http.Request, ar *authRequest, e *redirectError) {
	s.redirect(w, r, ar, url.Values{"error": {e.code}, "error_description": {e.desc}})
}

// pageError answers a failure of the store on a browser route: logged, and an error page that
// says nothing of it.
func (s *Server) pageError(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.log.ErrorContext(r.Context(), what, "err", err)
	s.pages.ShowError(w, r, http.StatusInternalServerError, "The server could not complete this request. Please try again.")
}

// handleAuthorize is the authorization endpoint (RFC 6749 §4.1.1). It sends a person who is not
// logged in to the login page, skips consent for scopes already granted to a confidential or
// first-party client, and otherwise shows the consent page: a public client that is not
// first-party is asked for every time, since anyone can claim its id and redirect URI (RFC 8252
// §8.6, RFC 9700 §2.1).
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	ar, pageErr, rerr := s.parseAuthRequest(r, r.URL.RawQuery)
	if pageErr != "" {
		s.pages.ShowError(w, r, http.StatusBadRequest, pageErr)
		return
	}
	if rerr != nil {
		s.redirectErr(w, r, ar, rerr)
		return
	}
	user, ok := s.pages.SignedIn(r)
	if !ok {
		if ar.prompt == "none" {
			s.redirectErr(w, r, ar, &redirectError{"login_required", "the user is not logged in"})
			return
		}
		s.pages.SignIn(w, r, "/oauth2/authorize?"+r.URL.RawQuery)
		return
	}
	grants, err := s.store.ListGrants(r.Context(), rescind.GrantFilter{ClientID: ar.client.ID, UserID: user.ID})
	if err != nil {
		s.pageError(w, r, "listing grants", err)
		return
	}
	for _, g := range grants {
		if ar.client.SkipsConsent() && !s.committer.GrantRevoked(g.ID) && containsAll(g.Scopes, ar.scopes) &&
			containsAll(s.grantAudience(g), s.audienceOf(ar.resources)) {
			s.issueCode(w, r, ar, user, g) // already consented to these scopes and resources
			return
		}
	}
	if ar.prompt == "none" {
		s.redirectErr(w, r, ar, &redirectError{"consent_required", "the user has not consented to this request"})
		return
	}
	s.pages.ShowConsent(w, r, ar.client, user, ar.scopes, ar.resources, ar.raw)
}

// grantAudience returns the audiences g's tokens may have: those recorded, or the issuer's for a
// grant recorded before audiences were.
func (s *Server) grantAudience(g rescind.Grant) []string {
	if len(g.Audience) == 0 {
		return []string{s.issuer}
	}
	return g.Audience
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// handleConsent takes the person's decision on the consent page: the authorization request it
// carries is validated again, as if it had just arrived.
func (s *Server) handleConsent(w http.ResponseWriter, r *http.Request) {
	raw, allow, ok := s.pages.ReadConsent(w, r)
	if !ok {
		return
	}
	ar, pageErr, rerr := s.parseAuthRequest(r, raw)
	if pageErr != "" {
		s.pages.ShowError(w, r, http.StatusBadRequest, pageErr)
		return
	}
	if rerr != nil {
		s.redirectErr(w, r, ar, rerr)
		return
	}
	user, ok := s.pages.SignedIn(r)
	if !ok {
		s.pages.SignIn(w, r, "/oauth2/authorize?"+raw)
		return
	}
	if !allow {
		s.redirectErr(w, r, ar, &redirectError{"access_denied", "the user denied the request"})
		return
	}
	id, err := secret.NewID()
	if err != nil {
		s.pageError(w, r, "grant id", err)
		return
	}
	// The grant's audience grows by this consent's resources (the issuer if none). A grant
	// recorded before audiences were has tokens for the issuer: it keeps the issuer.
	audience := s.audienceOf(ar.resources)
	grants, err := s.store.ListGrants(r.Context(), rescind.GrantFilter{ClientID: ar.client.ID, UserID: user.ID})
	if err != nil {
		s.pageError(w, r, "listing grants", err)
		return
	}
	for _, g := range grants {
		if len(g.Audience) == 0 && !slices.Contains(audience, s.issuer) {
			audience = append(audience, s.issuer)
		}
	}
	now := s.now()
	sess, _ := s.pages.Session(r)
	g, err := s.store.SaveGrant(r.Context(), rescind.Grant{ID: id, ClientID: ar.client.ID, UserID: user.ID,
		Scopes: ar.scopes, Audience: audience, CreatedAt: now, LastUsedAt: now, SessionID: sess.ID})
	if err != nil {
		s.pageError(w, r, "saving grant", err)
		return
	}
	s.issueCode(w, r, ar, user, g)
}

// issueCode stores a single-use code bound to the client, redirect URI and PKCE challenge
// (RFC 6749 §4.1.2), and to the DPoP key of dpop_jkt if the request named one (RFC 9449 §10),
// and redirects with it.
func (s *Server) issueCode(w http.ResponseWriter, r *http.Request, ar *authRequest, user rescind.User, g rescind.Grant) {
	if ar.client.Registration == rescind.RegistrationMetadataDocument {
		// The token endpoint, the connected apps page and revocation know the client from the
		// store: keep the copy of its document there.
		if err := s.storeDocumentClient(r.Context(), ar.client); err != nil {
			s.pageError(w, r, "storing a metadata document client", err)
			return
		}
	}
	text, hash, err := token.NewStored(token.CodePrefix)
	if err != nil {
		s.pageError(w, r, "code", err)
		return
	}
	now := s.now()
	sess, _ := s.pages.Session(r)
	err = s.store.CreateCode(r.Context(), rescind.AuthCode{Hash: hash, ClientID: ar.client.ID, UserID: user.ID, SessionID: sess.ID,
		GrantID: g.ID, RedirectURI: ar.redirectURI, RedirectURIGiven: ar.redirectURIGiven, Scope: strings.Join(ar.scopes, " "), Resources: ar.resources,
		Challenge: ar.challenge, ChallengeMethod: ar.method, CreatedAt: now, ExpiresAt: now.Add(s.codeTTL), DPoPJKT: ar.dpopJKT})
	if err != nil {
		s.pageError(w, r, "storing code", err)
		return
	}
	s.redirect(w, r, ar, url.Values{"code": {text}})
}
