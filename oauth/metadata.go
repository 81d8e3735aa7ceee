package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/dpop"
)

// metadata is the authorization server metadata of RFC 8414 §2.
type metadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RegistrationEndpoint                      string   `json:"registration_endpoint,omitempty"`
	JWKSURI                                   string   `json:"jwks_uri,omitempty"`
	RevocationEventsEndpoint                  string   `json:"revocation_events_endpoint,omitempty"`
	ScopesSupported                           []string `json:"scopes_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported,omitempty"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported,omitempty"`
	// IssParameterSupported says the authorization response carries iss (RFC 9207 §3).
	IssParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
	// ClientIDMetadataDocumentSupported says an https URL may be a client_id
	// (draft-ietf-oauth-client-id-metadata-document §6).
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported,omitempty"`
	DPoPSigningAlgValuesSupported     []string `json:"dpop_signing_alg_values_supported,omitempty"`

	// OpenID Connect Discovery 1.0 §3, RP-Initiated Logout 1.0 §3.3, Back-Channel Logout 1.0 §2.1.
	UserinfoEndpoint                  string   `json:"userinfo_endpoint,omitempty"`
	EndSessionEndpoint                string   `json:"end_session_endpoint,omitempty"`
	SubjectTypesSupported             []string `json:"subject_types_supported,omitempty"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported,omitempty"`
	UserinfoSigningAlgValuesSupported []string `json:"userinfo_signing_alg_values_supported,omitempty"`
	ClaimsSupported                   []string `json:"claims_supported,omitempty"`
	ClaimsParameterSupported          *bool    `json:"claims_parameter_supported,omitempty"`
	RequestParameterSupported         *bool    `json:"request_parameter_supported,omitempty"`
	RequestURIParameterSupported      *bool    `json:"request_uri_parameter_supported,omitempty"`
	PromptValuesSupported             []string `json:"prompt_values_supported,omitempty"`
	BackchannelLogoutSupported        *bool    `json:"backchannel_logout_supported,omitempty"`
	BackchannelLogoutSessionSupported *bool    `json:"backchannel_logout_session_supported,omitempty"`
	FrontchannelLogoutSupported       *bool    `json:"frontchannel_logout_supported,omitempty"`
	FrontchannelLogoutSessionSupp     *bool    `json:"frontchannel_logout_session_supported,omitempty"`
}

// buildMetadata returns the metadata document but for scopes_supported, which handleMetadata
// fills in.
func (s *Server) buildMetadata() metadata {
	confidential := []string{rescind.AuthMethodBasic, rescind.AuthMethodPost}
	withPublic := []string{rescind.AuthMethodBasic, rescind.AuthMethodPost, rescind.AuthMethodNone}
	md := metadata{
		Issuer:                                    s.issuer,
		TokenEndpoint:                             s.issuer + "/oauth2/token",
		RevocationEndpoint:                        s.issuer + "/oauth2/revoke",
		IntrospectionEndpoint:                     s.issuer + "/oauth2/introspect",
		GrantTypesSupported:                       []string{rescind.GrantClientCredentials},
		ResponseTypesSupported:                    []string{}, // no authorization endpoint without the pages
		TokenEndpointAuthMethodsSupported:         confidential,
		RevocationEndpointAuthMethodsSupported:    withPublic,
		IntrospectionEndpointAuthMethodsSupported: confidential,
	}
	if s.signer != nil {
		md.JWKSURI = s.issuer + "/.well-known/jwks.json"
	}
	// RFC 9449 §5.1: the algorithms DPoP proofs may use.
	md.DPoPSigningAlgValuesSupported = s.dpop.Algorithms
	if md.DPoPSigningAlgValuesSupported == nil {
		md.DPoPSigningAlgValuesSupported = dpop.SupportedAlgorithms
	}
	md.RevocationEventsEndpoint = s.issuer + "/oauth2/revocations/events"
	if s.registration != RegisterOff {
		md.RegistrationEndpoint = s.issuer + "/oauth2/register"
	}
	if s.pages != nil {
		md.AuthorizationEndpoint = s.issuer + "/oauth2/authorize"
		md.GrantTypesSupported = []string{rescind.GrantAuthorizationCode, rescind.GrantClientCredentials, rescind.GrantRefreshToken}
		md.ResponseTypesSupported = []string{"code"}
		md.ResponseModesSupported = []string{"query"} // the code and iss come back in the query (RFC 6749 §4.1.2)
		md.TokenEndpointAuthMethodsSupported = withPublic
		md.CodeChallengeMethodsSupported = []string{"S256"}
		md.IssParameterSupported = true
		md.ClientIDMetadataDocumentSupported = s.docs != nil
	}
	if s.pages != nil && s.idSigner != nil {
		yes, no := true, false
		md.UserinfoEndpoint = s.issuer + "/oauth2/userinfo"
		md.EndSessionEndpoint = s.issuer + "/oauth2/logout"
		md.SubjectTypesSupported = []string{"public"}
		md.IDTokenSigningAlgValuesSupported = s.idSigner.Algorithms()
		md.ClaimsSupported = []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "sid", "amr", "azp",
			"name", "preferred_username", "email", "email_verified"}
		md.ClaimsParameterSupported, md.RequestParameterSupported, md.RequestURIParameterSupported = &no, &no, &no
		md.PromptValuesSupported = []string{"none", "login", "consent"}
		md.BackchannelLogoutSupported, md.BackchannelLogoutSessionSupported = &yes, &yes
		md.FrontchannelLogoutSupported, md.FrontchannelLogoutSessionSupp = &no, &no
	}
	return md
}

// scopesSupported returns the scopes to publish: those configured, else those of the clients an
// operator registered (clientreg.Snapshot).
func (s *Server) scopesSupported(ctx context.Context) []string {
	if len(s.scopes) > 0 {
		return s.scopes
	}
	snap, err := s.clients.Snapshot(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "reading the clients' scopes", "err", err)
		return nil
	}
	return snap.Scopes
}

// handleMetadata serves the RFC 8414 §3 metadata document, which is also the OpenID Provider
// metadata (OpenID Connect Discovery 1.0 §3) at /.well-known/openid-configuration. It is
// rendered again only when the scopes it publishes changed.
func (s *Server) handleMetadata(w http.ResponseWriter, r *http.Request) {
	scopes := s.scopesSupported(r.Context())
	if scopes == nil {
		scopes = []string{}
	}
	if s.md.UserinfoEndpoint != "" {
		// An OpenID Provider's scopes (Discovery 1.0 §3: openid is required), every code-flow
		// client's to ask for.
		for _, sc := range []string{ScopeOpenID, ScopeProfile, ScopeEmail} {
			if !slices.Contains(scopes, sc) {
				scopes = append(slices.Clip(scopes), sc)
			}
		}
	}
	s.mdMu.Lock()
	if s.mdDoc == nil || !slices.Equal(scopes, s.mdScopes) {
		md := s.md
		md.ScopesSupported = scopes
		b, err := json.MarshalIndent(md, "", "  ")
		if err != nil {
			s.mdMu.Unlock()
			writeError(w, errServer)
			return
		}
		s.mdDoc, s.mdScopes = b, scopes
	}
	doc := s.mdDoc
	s.mdMu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.Write(doc)
}

func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	if s.ready != nil {
		if err := s.ready(r.Context()); err != nil {
			s.log.WarnContext(r.Context(), "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
