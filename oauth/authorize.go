package oauth

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

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
	// OpenID Connect Core 1.0 §3.1.2.1: the nonce echoed in the ID token, max_age in seconds
	// (-1: not given), the login_hint, and the subject of a valid id_token_hint.
	nonce     string
	maxAge    int64
	loginHint string
	hintSub   string
}

// prompts returns the prompt values of the request (a space-separated list, §3.1.2.1).
func (ar *authRequest) prompts() []string { return strings.Fields(ar.prompt) }

func (ar *authRequest) hasPrompt(p string) bool { return slices.Contains(ar.prompts(), p) }

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
	for _, k := range []string{"response_type", "scope", "state", "code_challenge", "code_challenge_method", "prompt", "dpop_jkt",
		"nonce", "max_age", "login_hint", "id_token_hint"} {
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
	allowed := s.clientScopes(c, scope)
	if scope != "" {
		// The OpenID Connect scopes are every code-flow client's to ask for (Core 1.0 §3.1.2.1).
		allowed = append(slices.Clip(allowed), ScopeOpenID, ScopeProfile, ScopeEmail)
	}
	if ar.scopes, err = rescind.ParseScope(scope, allowed); err != nil {
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
	if rerr := s.parseOIDCParams(r, ar, one); rerr != nil {
		return ar, "", rerr
	}
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
	if why := s.mustSignIn(r, ar, user, ok); why != "" {
		if ar.hasPrompt("none") {
			s.redirectErr(w, r, ar, &redirectError{"login_required", why})
			return
		}
		s.pages.SignIn(w, r, "/oauth2/authorize?"+afterSignIn(r.URL.RawQuery))
		return
	}
	grants, err := s.store.ListGrants(r.Context(), rescind.GrantFilter{ClientID: ar.client.ID, UserID: user.ID})
	if err != nil {
		s.pageError(w, r, "listing grants", err)
		return
	}
	for _, g := range grants {
		// Consented audiences only: the grant's Audience also holds what a code or refresh
		// issued for the resources the operator limited the client to, which nobody consented
		// to (re-audit 4 #5).
		if ar.client.SkipsConsent() && !ar.hasPrompt("consent") && !s.committer.GrantRevoked(g.ID) && containsAll(g.Scopes, ar.scopes) &&
			containsAll(g.ConsentedAudience, s.audienceOf(ar.resources)) {
			s.issueCode(w, r, ar, user, g) // already consented to these scopes and resources
			return
		}
	}
	if ar.hasPrompt("none") {
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
	sess, ok := s.pages.Session(r)
	if !ok || sess.UserID != user.ID {
		// The session ended since SignedIn: no grant or code without the session it was made
		// in (its end would not reach them: no sid, no logout token, no grant revocation).
		s.pages.SignIn(w, r, "/oauth2/authorize?"+raw)
		return
	}
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
	sess, ok := s.pages.Session(r)
	if !ok || sess.UserID != user.ID {
		// The session ended since SignedIn: no code without the session it was made in (its
		// end would not reach it: no sid, no logout token, no grant revocation).
		if ar.hasPrompt("none") {
			s.redirectErr(w, r, ar, &redirectError{"login_required", "the user is not logged in"})
			return
		}
		s.pages.SignIn(w, r, "/oauth2/authorize?"+afterSignIn(ar.raw))
		return
	}
	now := s.now()
	// The code records its session (whose end tells its client: back-channel logout) and what
	// its ID token will say of the sign-in: auth_time and nonce.
	err = s.store.CreateCode(r.Context(), rescind.AuthCode{Hash: hash, ClientID: ar.client.ID, UserID: user.ID, SessionID: sess.ID,
		GrantID: g.ID, RedirectURI: ar.redirectURI, RedirectURIGiven: ar.redirectURIGiven, Scope: strings.Join(ar.scopes, " "), Resources: ar.resources,
		Challenge: ar.challenge, ChallengeMethod: ar.method, CreatedAt: now, ExpiresAt: now.Add(s.codeTTL), DPoPJKT: ar.dpopJKT,
		Nonce: ar.nonce, AuthTime: sess.Authenticated()})
	if err != nil {
		s.pageError(w, r, "storing code", err)
		return
	}
	s.redirect(w, r, ar, url.Values{"code": {text}})
}

// maxNonce bounds the nonce, max_age and login_hint parameters.
const maxNonce = 512

// parseOIDCParams reads the OpenID Connect parameters of an authorization request (Core 1.0
// §3.1.2.1): prompt (none alone, or any of login, consent, select_account), nonce, max_age,
// login_hint and id_token_hint (an ID token this server issued, expired or not).
func (s *Server) parseOIDCParams(r *http.Request, ar *authRequest, one func(string) (string, bool)) *redirectError {
	for _, p := range ar.prompts() {
		switch p {
		case "none", "login", "consent", "select_account":
		default:
			return &redirectError{"invalid_request", "prompt " + p + " is not supported"}
		}
	}
	if ar.hasPrompt("none") && len(ar.prompts()) > 1 {
		return &redirectError{"invalid_request", "prompt=none cannot be combined with other values"}
	}
	ar.nonce, _ = one("nonce")
	ar.loginHint, _ = one("login_hint")
	if len(ar.nonce) > maxNonce || len(ar.loginHint) > maxNonce {
		return &redirectError{"invalid_request", "nonce and login_hint are limited to 512 bytes"}
	}
	ar.maxAge = -1
	if v, _ := one("max_age"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return &redirectError{"invalid_request", "max_age must be a non-negative number of seconds"}
		}
		ar.maxAge = n
	}
	if hint, _ := one("id_token_hint"); hint != "" {
		c, err := s.parseIDToken(r.Context(), hint)
		if err != nil {
			return &redirectError{"invalid_request", "id_token_hint is not an ID token this server issued"}
		}
		ar.hintSub = c.Subject
	}
	return nil
}

// mustSignIn says why the person must sign in (again) before a code is issued, or "" if not:
// no one is signed in; prompt=login; the sign-in is older than max_age; or the id_token_hint
// names someone else (Core 1.0 §3.1.2.1, §3.1.2.3).
func (s *Server) mustSignIn(r *http.Request, ar *authRequest, user rescind.User, signedIn bool) string {
	if !signedIn {
		return "the user is not logged in"
	}
	if ar.hasPrompt("login") {
		return "the request asks the user to sign in again"
	}
	if ar.maxAge >= 0 {
		sess, ok := s.pages.Session(r)
		// Compared in seconds: a huge max_age must not overflow a Duration into the past.
		if !ok || int64(s.now().Sub(sess.Authenticated())/time.Second) > ar.maxAge {
			return "the user's authentication is older than max_age"
		}
	}
	if ar.hintSub != "" && ar.hintSub != user.ID {
		return "the signed-in user is not the one id_token_hint names"
	}
	return ""
}

// afterSignIn returns the query of an authorization request to carry on with once the person
// has signed in: without prompt=login and max_age (they just did authenticate), which would
// otherwise ask again (max_age=0 always would). The ID token still says when: auth_time.
func afterSignIn(raw string) string {
	q, err := url.ParseQuery(raw)
	if err != nil {
		return raw
	}
	p := q.Get("prompt")
	if p == "" && !q.Has("max_age") {
		return raw
	}
	q.Del("max_age")
	var keep []string
	for _, v := range strings.Fields(p) {
		if v != "login" && v != "select_account" {
			keep = append(keep, v)
		}
	}
	if len(keep) == 0 {
		q.Del("prompt")
	} else {
		q.Set("prompt", strings.Join(keep, " "))
	}
	return q.Encode()
}
