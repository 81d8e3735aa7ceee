package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientdoc"
	"github.com/rescind/rescind/internal/clientip"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/redirect"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/token"
)

// Dynamic client registration (RFC 7591) at POST /oauth2/register, and its management protocol
// (RFC 7592) at /oauth2/register/{client_id}, the registration_client_uri.
//
// In RegisterWithToken mode a registration must carry an initial access token (RFC 7591 §3,
// made by `rescind registration-token create`, stored as a hash) as a bearer token; in
// RegisterOpen mode anyone may register, public clients only (token_endpoint_auth_method
// "none", whatever the request asks), a bounded number an hour per source address. Redirect URIs obey the rules of every
// registration (package internal/redirect). Each registered client gets a registration access
// token (RFC 7592 §1), stored as a hash and shown once, with which it may read (GET), replace
// (PUT) and delete (DELETE) its registration; deleting revokes everything it holds, by the same
// path as an operator's deletion.

// Registration modes (Config.Registration).
const (
	RegisterOff       = "off"
	RegisterWithToken = "token"
	RegisterOpen      = "open"
)

// Errors of RFC 7591 §3.2.2.
const (
	ErrInvalidRedirectURI    = "invalid_redirect_uri"
	ErrInvalidClientMetadata = "invalid_client_metadata"
)

// Bounds of a registration.
const (
	maxRegistrationBody = 64 << 10
	maxRedirectURIs     = 20
	maxScopes           = 100
	maxClientName       = 200
	// defaultClientName is the name of a client that registered without one.
	defaultClientName = "Unnamed app"
)

// clientMetadata is the client metadata (RFC 7591 §2) a registration request names, as sent:
// what Rescind understands of it. token_format is Rescind's own: "jwt" for RFC 9068 access
// tokens.
type clientMetadata struct {
	RedirectURIs            []string
	TokenEndpointAuthMethod string
	GrantTypes              []string
	ResponseTypes           []string
	ClientName              string
	Scope                   string
	TokenFormat             string
	// ClientID and ClientSecret are sent with an update (RFC 7592 §2.2).
	ClientID, ClientSecret string
	hasSecret              bool
}

// registrationResponse is the client information response (RFC 7591 §3.2.1, RFC 7592 §3).
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string   `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	Scope                   string   `json:"scope,omitempty"`
	TokenFormat             string   `json:"token_format,omitempty"`
}

func metadataError(desc string) *Error {
	return errorf(ErrInvalidClientMetadata, http.StatusBadRequest, desc)
}

// invalidToken is the RFC 6750 §3.1 answer to a missing or wrong bearer token at the
// registration endpoints.
func invalidToken(desc string) *Error {
	return &Error{Code: "invalid_token", Status: http.StatusUnauthorized, Description: desc,
		Challenge: `Bearer error="invalid_token", error_description="` + desc + `"`}
}

// readMetadata reads a registration request's body: a JSON object of client metadata. Members
// Rescind does not know are ignored (RFC 7591 §2); a known one of the wrong type is refused.
func readMetadata(w http.ResponseWriter, r *http.Request) (clientMetadata, *Error) {
	var md clientMetadata
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return md, metadataError("the request body must be a JSON object of client metadata (Content-Type: application/json)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRegistrationBody))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return md, &Error{Code: ErrInvalidClientMetadata, Status: http.StatusRequestEntityTooLarge, Description: "the request body is too large"}
		}
		return md, metadataError("the request body could not be read")
	}
	if !utf8.Valid(body) { // json.Unmarshal would replace what is not UTF-8 silently
		return md, metadataError("the request body must be UTF-8")
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return md, metadataError("the request body must be one JSON object of client metadata")
	}
	field := func(name string, dst any, what string) *Error {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return metadataError(name + " must be " + what)
		}
		return nil
	}
	var secretValue *string
	for _, f := range []struct {
		name string
		dst  any
		what string
	}{
		{"redirect_uris", &md.RedirectURIs, "an array of strings"},
		{"token_endpoint_auth_method", &md.TokenEndpointAuthMethod, "a string"},
		{"grant_types", &md.GrantTypes, "an array of strings"},
		{"response_types", &md.ResponseTypes, "an array of strings"},
		{"client_name", &md.ClientName, "a string"},
		{"scope", &md.Scope, "a string of space-separated scopes"},
		{"token_format", &md.TokenFormat, `"opaque" or "jwt"`},
		{"client_id", &md.ClientID, "a string"},
		{"client_secret", &secretValue, "a string"},
	} {
		if perr := field(f.name, f.dst, f.what); perr != nil {
			return md, perr
		}
	}
	if secretValue != nil {
		md.ClientSecret, md.hasSecret = *secretValue, true
	}
	return md, nil
}

// registeredClient is what a registration's metadata makes of a client: its fields that the
// metadata sets, validated as every registration is.
type registeredClient struct {
	name                    string
	public                  bool
	grantTypes, redirects   []string
	scopes, responseTypes   []string
	tokenFormat, authMethod string
	// scopeLimit is the scopes of the initial access token of the registration, if it names
	// some (rescind.RegistrationToken.Scopes): the client's ScopeLimit.
	scopeLimit []string
	// allowedResources is the initial access token's AllowedResources: the client's.
	allowedResources []string
}

// validateMetadata applies the registration rules to md. In open mode only public clients
// register: the authentication method is "none" whatever is asked (client_secret_basic is the
// default otherwise). Omitted values get RFC 7591 §2's defaults (authorization_code, response
// type code).
func (s *Server) validateMetadata(md clientMetadata, open bool) (registeredClient, *Error) {
	var rc registeredClient
	rc.authMethod = md.TokenEndpointAuthMethod
	switch rc.authMethod {
	case "":
		rc.authMethod = rescind.AuthMethodBasic
		if open {
			rc.authMethod = rescind.AuthMethodNone
		}
	case rescind.AuthMethodNone, rescind.AuthMethodBasic, rescind.AuthMethodPost:
	default:
		return rc, metadataError("token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
	}
	if open && rc.authMethod != rescind.AuthMethodNone {
		// Open registration makes public clients only: a request for a secret is answered with
		// none, as RFC 7591 §3.2.1 lets a server replace a value (and as MCP clients that ask
		// for client_secret_post then read back), never with a secret anyone could obtain.
		rc.authMethod = rescind.AuthMethodNone
	}
	rc.public = rc.authMethod == rescind.AuthMethodNone
	gts := md.GrantTypes
	if len(gts) == 0 {
		gts = []string{rescind.GrantAuthorizationCode}
	}
	for _, gt := range gts {
		switch gt {
		case rescind.GrantAuthorizationCode, rescind.GrantRefreshToken, rescind.GrantClientCredentials:
		default:
			return rc, metadataError(fmt.Sprintf("grant type %s is not supported: use authorization_code, refresh_token or client_credentials", quoteValue(gt)))
		}
		if !slices.Contains(rc.grantTypes, gt) {
			rc.grantTypes = append(rc.grantTypes, gt)
		}
	}
	if rc.public && slices.Contains(rc.grantTypes, rescind.GrantClientCredentials) {
		return rc, metadataError("a public client cannot use client_credentials (RFC 6749 §4.4)")
	}
	code := slices.Contains(rc.grantTypes, rescind.GrantAuthorizationCode)
	rc.responseTypes = md.ResponseTypes
	if len(rc.responseTypes) == 0 && code {
		rc.responseTypes = []string{"code"}
	}
	for _, rt := range rc.responseTypes {
		if rt != "code" {
			return rc, metadataError(fmt.Sprintf("response type %s is not supported: only code", quoteValue(rt)))
		}
	}
	if len(rc.responseTypes) > 0 != code { // RFC 7591 §2.1: the two must agree
		return rc, metadataError("response_types code and grant_types authorization_code go together (RFC 7591 §2.1)")
	}
	rc.responseTypes = slices.Compact(rc.responseTypes)
	if code && len(md.RedirectURIs) == 0 {
		return rc, errorf(ErrInvalidRedirectURI, http.StatusBadRequest, "redirect_uris is required for the authorization_code grant")
	}
	if len(md.RedirectURIs) > maxRedirectURIs {
		return rc, errorf(ErrInvalidRedirectURI, http.StatusBadRequest, fmt.Sprintf("at most %d redirect URIs", maxRedirectURIs))
	}
	if err := redirect.ValidateAll(md.RedirectURIs, s.insecureRedir); err != nil {
		return rc, errorf(ErrInvalidRedirectURI, http.StatusBadRequest, err.Error())
	}
	rc.redirects = slices.Clone(md.RedirectURIs)
	if rc.redirects == nil {
		rc.redirects = []string{}
	}
	var perr *Error
	if rc.name, perr = clientName(md.ClientName); perr != nil {
		return rc, perr
	}
	if rc.scopes, perr = s.registeredScopes(md.Scope); perr != nil {
		return rc, perr
	}
	switch md.TokenFormat {
	case "":
		rc.tokenFormat = s.selfTokenFormat
	case rescind.TokenFormatOpaque:
		rc.tokenFormat = rescind.TokenFormatOpaque
	case rescind.TokenFormatJWT:
		if s.signer == nil {
			return rc, metadataError("this server does not issue JWT access tokens")
		}
		rc.tokenFormat = rescind.TokenFormatJWT
	default:
		return rc, metadataError(`token_format must be "opaque" or "jwt"`)
	}
	return rc, nil
}

// clientName validates the client_name a client gives itself: printable UTF-8 of at most 200
// bytes; none gets defaultClientName.
func clientName(name string) (string, *Error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return defaultClientName, nil
	}
	if len(name) > maxClientName || !clientdoc.ValidName(name) {
		return "", metadataError(fmt.Sprintf("client_name must be printable UTF-8 of at most %d bytes, without control, "+
			"format (bidirectional or zero-width), separator or blank characters, and with at most 4 combining marks on a character", maxClientName))
	}
	return name, nil
}

// registeredScopes validates the scope a client registers: scope-tokens (RFC 6749 §3.3), each
// among the server's scopes when they are configured.
func (s *Server) registeredScopes(scope string) ([]string, *Error) {
	var out []string
	for _, sc := range strings.Fields(scope) {
		if !rescind.ValidScopeToken(sc) {
			return nil, metadataError(fmt.Sprintf("scope %s is not a valid scope-token (RFC 6749 §3.3)", quoteValue(sc)))
		}
		if len(s.scopes) > 0 && !slices.Contains(s.scopes, sc) {
			return nil, metadataError(fmt.Sprintf("scope %s is not one this server supports (scopes_supported)", quoteValue(sc)))
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) > maxScopes {
		return nil, metadataError(fmt.Sprintf("at most %d scopes", maxScopes))
	}
	return out, nil
}

// clientScopes returns the scopes client may be granted, given what it asks for now: its own.
// A client that registered itself without naming any may ask for the server's configured scopes
// or, if none are configured, for any: the person it asks consents to each one. A
// self-registered client's own scopes are bounded by the configured ones (--scopes) as they are
// now: narrowing --scopes narrows clients registered before (audit 16 #4).
//
// An operator's limit of a self-registered client (Client.ScopeLimit) bounds all of this.
func (s *Server) clientScopes(client rescind.Client, requested string) []string {
	if !client.SelfRegistered() {
		return client.Scopes
	}
	return limitScopes(client, s.selfScopes(client, requested))
}

// selfScopes returns what clientScopes allows a self-registered client but for an operator's
// limit.
func (s *Server) selfScopes(client rescind.Client, requested string) []string {
	if len(client.Scopes) > 0 {
		if len(s.scopes) > 0 {
			return intersectScopes(client.Scopes, s.scopes)
		}
		return client.Scopes
	}
	if len(s.scopes) > 0 {
		return s.scopes
	}
	return strings.Fields(requested)
}

// limitScopes returns scopes within client's operator limit (Client.ScopeLimit), if it has one.
func limitScopes(client rescind.Client, scopes []string) []string {
	if client.ScopeLimit == nil {
		return scopes
	}
	return intersectScopes(scopes, client.ScopeLimit)
}

// intersectScopes returns the scopes of have that are among bound, in have's order; never nil,
// so that none is not mistaken for "any".
func intersectScopes(have, bound []string) []string {
	out := []string{}
	for _, sc := range have {
		if slices.Contains(bound, sc) {
			out = append(out, sc)
		}
	}
	return out
}

// clientCredentialsScopes returns the scopes client may be granted by client credentials, where
// no person consents. An operator's client gets its own. A client that registered itself gets
// only what an operator explicitly allowed it: those of its own scopes that its operator limit
// (Client.ScopeLimit: the scopes of the initial access token it registered with, or client
// update --scope) names, within --scopes if set. Without a limit, or without scopes of its own,
// none, never "any" or a default: else holding an initial access token would be holding every
// scope of every resource server (re-audit 3A #2). The limit is read at every request.
func (s *Server) clientCredentialsScopes(client rescind.Client) []string {
	if !client.SelfRegistered() {
		return client.Scopes
	}
	if client.ScopeLimit == nil || len(client.Scopes) == 0 {
		return []string{}
	}
	return limitScopes(client, s.selfScopes(client, ""))
}

// registrationURI is the registration_client_uri of client id (RFC 7592 §1).
func (s *Server) registrationURI(id string) string {
	return s.issuer + "/oauth2/register/" + url.PathEscape(id)
}

// responseOf is the client information response for c.
func (s *Server) responseOf(c rescind.Client) registrationResponse {
	resp := registrationResponse{ClientID: c.ID, ClientIDIssuedAt: c.CreatedAt.Unix(), RegistrationClientURI: s.registrationURI(c.ID),
		ClientName: c.Name, RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes, TokenEndpointAuthMethod: rescind.AuthMethodNone,
		Scope: strings.Join(c.Scopes, " "), ResponseTypes: []string{}}
	if resp.RedirectURIs == nil {
		resp.RedirectURIs = []string{}
	}
	if c.AllowsGrant(rescind.GrantAuthorizationCode) {
		resp.ResponseTypes = []string{"code"}
	}
	if !c.Public {
		resp.TokenEndpointAuthMethod = rescind.AuthMethodBasic
		never := int64(0) // the secret does not expire (RFC 7591 §3.2.1)
		resp.ClientSecretExpiresAt = &never
	}
	if c.TokenFormat == rescind.TokenFormatJWT {
		resp.TokenFormat = rescind.TokenFormatJWT
	}
	return resp
}

// handleRegister registers a client (RFC 7591 §3.1) and answers 201 with its information, its
// secret if it is confidential, and its registration access token, each shown this once.
func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	open := s.registration == RegisterOpen
	var iat rescind.RegistrationToken
	if !open {
		var perr *Error
		if iat, perr = s.checkInitialAccessToken(r); perr != nil {
			writeError(w, perr)
			return
		}
	}
	md, perr := readMetadata(w, r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	rc, perr := s.validateMetadata(md, open)
	if perr != nil {
		writeError(w, perr)
		return
	}
	// The initial access token's scopes are what its clients may hold: a registration naming
	// another is refused, and the client keeps them as its operator limit (ScopeLimit), which
	// its own updates never change. Without them it gets no ScopeLimit: no scope by client
	// credentials (clientCredentialsScopes).
	if iat.Scopes != nil {
		for _, sc := range rc.scopes {
			if !slices.Contains(iat.Scopes, sc) {
				writeError(w, metadataError(fmt.Sprintf("scope %s is not one the initial access token allows", quoteValue(sc))))
				return
			}
		}
		rc.scopeLimit = slices.Clone(iat.Scopes)
	}
	rc.allowedResources = slices.Clone(iat.AllowedResources) // RFC 8707: what it may ask tokens for
	if open {
		// Every open registration takes one of its address's tokens; a refused one gives it back.
		res, ok, retry := s.regLimiter.Reserve("register:" + networkKey(r))
		if !ok {
			s.log.WarnContext(r.Context(), "security: open registration rate limited", "remote", r.RemoteAddr)
			writeError(w, &Error{Code: "slow_down", Status: http.StatusTooManyRequests, RetryAfter: max(1, int(retry/time.Second)),
				Description: "too many registrations from this address; retry later"})
			return
		}
		defer func() {
			if perr != nil {
				res.Refund()
			}
		}()
	}
	var resp registrationResponse
	resp, perr = s.register(r, rc)
	if perr != nil {
		writeError(w, perr)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

// register stores the client rc describes, with a new id, secret (if confidential) and
// registration access token, and returns its information with them.
func (s *Server) register(r *http.Request, rc registeredClient) (registrationResponse, *Error) {
	id, err := secret.NewID()
	if err != nil {
		return registrationResponse{}, errServer
	}
	rat, ratHash, err := token.NewStored(token.RegistrationAccessPrefix)
	if err != nil {
		return registrationResponse{}, errServer
	}
	c := rescind.Client{ID: id, Name: rc.name, Public: rc.public, GrantTypes: rc.grantTypes, Scopes: rc.scopes,
		RedirectURIs: rc.redirects, TokenFormat: rc.tokenFormat, CreatedAt: s.now().UTC(), AllowInsecureRedirect: s.insecureRedir,
		Registration: rescind.RegistrationDynamic, RegistrationTokenHash: ratHash, ScopeLimit: rc.scopeLimit,
		AllowedResources: rc.allowedResources}
	var plain string
	if !c.Public {
		if plain, err = secret.Generate(); err != nil {
			return registrationResponse{}, errServer
		}
		if c.SecretHash, err = secret.Hash(plain, s.hashParams); err != nil {
			return registrationResponse{}, errServer
		}
	}
	if err := s.store.CreateClient(r.Context(), c); err != nil {
		s.log.ErrorContext(r.Context(), "storing a registered client", "err", err)
		return registrationResponse{}, errServer
	}
	s.clients.Invalidate(c.ID) // its origins and scopes (clientreg.Snapshot)
	s.log.InfoContext(r.Context(), "client registered dynamically", "client_id", c.ID, "client_name", c.Name,
		"public", c.Public, "remote", r.RemoteAddr)
	resp := s.responseOf(c)
	resp.ClientSecret, resp.RegistrationAccessToken = plain, rat
	resp.TokenEndpointAuthMethod = rc.authMethod
	return resp, nil
}

// bearerToken returns the token of an Authorization: Bearer header (RFC 6750 §2.1).
func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// checkInitialAccessToken checks the initial access token a registration carries: one an
// operator made, not expired. It returns the token's record.
func (s *Server) checkInitialAccessToken(r *http.Request) (rescind.RegistrationToken, *Error) {
	tok, ok := bearerToken(r)
	if !ok {
		return rescind.RegistrationToken{}, invalidToken("registration requires an initial access token (Authorization: Bearer)")
	}
	if !token.IsStored(tok, token.InitialAccessPrefix) {
		return rescind.RegistrationToken{}, invalidToken("the initial access token is invalid or expired")
	}
	t, err := s.store.GetRegistrationToken(r.Context(), token.Hash(tok))
	switch {
	case errors.Is(err, rescind.ErrNotFound):
		s.log.InfoContext(r.Context(), "registration refused: unknown initial access token", "remote", r.RemoteAddr)
		return t, invalidToken("the initial access token is invalid or expired")
	case err != nil:
		s.log.ErrorContext(r.Context(), "reading a registration token", "err", err)
		return t, errServer
	case !s.now().Before(t.ExpiresAt):
		return t, invalidToken("the initial access token is invalid or expired")
	}
	return t, nil
}

// registeredClientFor authenticates a request to the registration_client_uri of client id
// with its registration access token (RFC 7592 §2), and returns the client. Every failure,
// an unknown client included, is the same 401 (§2.1).
func (s *Server) registeredClientFor(r *http.Request) (rescind.Client, *Error) {
	id := r.PathValue("id")
	tok, ok := bearerToken(r)
	if !ok {
		return rescind.Client{}, invalidToken("the registration access token is required (Authorization: Bearer)")
	}
	if !token.IsStored(tok, token.RegistrationAccessPrefix) { // refused without a lookup
		return rescind.Client{}, invalidToken("the registration access token is invalid for this client")
	}
	c, err := s.store.GetClient(r.Context(), id)
	if err != nil && !errors.Is(err, rescind.ErrNotFound) {
		s.log.ErrorContext(r.Context(), "reading client", "err", err)
		return rescind.Client{}, errServer
	}
	if err != nil || c.Registration != rescind.RegistrationDynamic || c.RegistrationTokenHash == "" ||
		!secret.Equal(token.Hash(tok), c.RegistrationTokenHash) {
		s.log.InfoContext(r.Context(), "client configuration request refused", "remote", r.RemoteAddr)
		return rescind.Client{}, invalidToken("the registration access token is invalid for this client")
	}
	return c, nil
}

// handleGetRegistration answers a client's read of its registration (RFC 7592 §2.1). The answer
// carries neither its secret nor its registration access token: only their hashes are kept.
func (s *Server) handleGetRegistration(w http.ResponseWriter, r *http.Request) {
	c, perr := s.registeredClientFor(r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	writeJSON(w, http.StatusOK, s.responseOf(c))
}

// handleUpdateRegistration replaces a client's metadata with the request's (RFC 7592 §2.2):
// what it omits takes its default, as in a registration. The client_id must be the client's, a
// client_secret sent must be its secret, and the client's type (public or confidential) cannot
// change; its secret and registration access token stay.
func (s *Server) handleUpdateRegistration(w http.ResponseWriter, r *http.Request) {
	c, perr := s.registeredClientFor(r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	md, perr := readMetadata(w, r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	if md.ClientID != c.ID {
		writeError(w, metadataError("client_id must be sent, and be this client's (RFC 7592 §2.2)"))
		return
	}
	if md.hasSecret {
		// The check takes its place under the secret gate as a client authentication does: a
		// share per network, and a busy gate answered as busy, not as a server error.
		ctx := secret.WithClaimant(r.Context(), clientip.Network(r.RemoteAddr))
		if _, err := s.clients.Authenticate(ctx, c.ID, md.ClientSecret); err != nil {
			switch perr := s.checkUnfinished(r, c.ID, err); {
			case errors.Is(err, rescind.ErrNotFound): // deleted since its token was checked
				writeError(w, invalidToken("the registration access token is invalid for this client"))
			case errors.Is(err, clientreg.ErrBadSecret):
				writeError(w, metadataError("client_secret is not this client's secret (RFC 7592 §2.2)"))
			case perr != nil:
				writeError(w, perr)
			default:
				s.log.ErrorContext(r.Context(), "checking a client secret", "err", err)
				writeError(w, errServer)
			}
			return
		}
	}
	if md.TokenEndpointAuthMethod == "" && c.Public {
		md.TokenEndpointAuthMethod = rescind.AuthMethodNone // the default is the client's own type
	}
	rc, perr := s.validateMetadata(md, s.registration == RegisterOpen && c.Public)
	if perr != nil {
		writeError(w, perr)
		return
	}
	if rc.public != c.Public {
		writeError(w, metadataError("a client cannot change from public to confidential or back: register a new one"))
		return
	}
	id, insecure := c.ID, s.insecureRedir
	c, err := s.store.UpdateClient(r.Context(), id, rescind.ClientUpdate{Name: &rc.name, GrantTypes: &rc.grantTypes,
		RedirectURIs: &rc.redirects, Scopes: &rc.scopes, TokenFormat: &rc.tokenFormat, AllowInsecureRedirect: &insecure})
	s.clients.Invalidate(id)
	if errors.Is(err, rescind.ErrNotFound) { // deleted since its token was checked (§2.1: 401)
		writeError(w, invalidToken("the registration access token is invalid for this client"))
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "updating a registered client", "err", err)
		writeError(w, errServer)
		return
	}
	s.log.InfoContext(r.Context(), "client updated its registration", "client_id", c.ID)
	resp := s.responseOf(c)
	resp.TokenEndpointAuthMethod = rc.authMethod
	writeJSON(w, http.StatusOK, resp)
}

// handleDeleteRegistration deletes a client at its own request (RFC 7592 §2.3) and revokes
// everything it holds, by the path of every client deletion (Config.DeleteClient): durable
// before the 204.
func (s *Server) handleDeleteRegistration(w http.ResponseWriter, r *http.Request) {
	c, perr := s.registeredClientFor(r)
	if perr != nil {
		writeError(w, perr)
		return
	}
	err := s.deleteClient(r.Context(), c.ID, "client:"+c.ID, "client deregistered (RFC 7592)")
	if err != nil && !errors.Is(err, rescind.ErrNotFound) {
		s.log.ErrorContext(r.Context(), "deleting a registered client", "err", err)
		writeError(w, &Error{Code: ErrServerError, Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Description: "the client could not be deleted; retry"})
		return
	}
	s.log.InfoContext(r.Context(), "client deregistered; its tokens are revoked", "client_id", c.ID)
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}
