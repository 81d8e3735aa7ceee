package admin

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/rescind/rescind"
)

// CreateClientRequest is the body of POST /admin/v1/clients.
type CreateClientRequest struct {
	// Name is the client_name. Required.
	Name string `json:"client_name"`
	// GrantTypes defaults to authorization_code and refresh_token for a public client; to those
	// and client_credentials for a confidential client with redirect URIs; else to
	// client_credentials.
	GrantTypes []string `json:"grant_types,omitempty"`
	// Scope is the space-separated list of scopes the client may be granted.
	Scope string `json:"scope,omitempty"`
	// RedirectURIs are the client's registered redirection endpoints.
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// Secret, if set, is used instead of a generated one.
	Secret string `json:"client_secret,omitempty"`
	// Public creates a client without a secret.
	Public bool `json:"public,omitempty"`
	// TokenTTL is the access token lifetime in seconds; zero means the server default.
	TokenTTL int64 `json:"token_ttl,omitempty"`
	// AllowPlainPKCE lets the client use the "plain" PKCE method.
	AllowPlainPKCE bool `json:"allow_plain_pkce,omitempty"`
	// TokenFormat is "opaque" (the default) or "jwt".
	TokenFormat string `json:"token_format,omitempty"`
	// ResourceServer makes the client a resource server: it may introspect access tokens for
	// its Resources (every access token if it has none) and receive their revocation events.
	ResourceServer bool `json:"resource_server,omitempty"`
	// Resources are the resource identifiers (absolute URIs, RFC 8707) a resource server
	// serves. They need ResourceServer.
	Resources []string `json:"resources,omitempty"`
	// AllowInsecureRedirect lets plain-http redirect URIs on hosts other than loopback through,
	// for development.
	AllowInsecureRedirect bool `json:"allow_insecure_redirect,omitempty"`
	// AllowedResources, if set, are the only resources (RFC 8707) the client may ask tokens
	// for; absent, any. Distinct from Resources, what a resource server serves.
	AllowedResources []string `json:"allowed_resources,omitempty"`
	// RequireDPoP makes every token request of the client carry a DPoP proof (RFC 9449), so
	// that all its access tokens are bound to its key.
	RequireDPoP bool `json:"require_dpop,omitempty"`
	// FirstParty registers the client as the server operator's own: a public client then skips
	// the consent page for scopes the person already granted it (any other public client gets
	// the consent page every time).
	FirstParty bool `json:"first_party,omitempty"`
	// OIDC holds the OpenID Connect fields (id_token_signed_response_alg, logout endpoints).
	OIDC
}

// OIDC is the OpenID Connect part of a client's registration (OpenID Connect Dynamic Client
// Registration 1.0 §2, RP-Initiated Logout 1.0 §3.1, Back-Channel Logout 1.0 §2.2).
type OIDC struct {
	// IDTokenAlg is id_token_signed_response_alg: RS256 (the default), ES256 or EdDSA.
	IDTokenAlg string `json:"id_token_signed_response_alg,omitempty"`
	// PostLogoutRedirectURIs are where the end-session endpoint may send the browser back to,
	// matched exactly.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// PostLogoutRedirectURI is one more, under the CLI flag's name (--post-logout-redirect-uri).
	PostLogoutRedirectURI string `json:"post_logout_redirect_uri,omitempty"`
	// BackchannelLogoutURI receives a logout token when a session the client was signed in
	// with ends: https (or loopback with --outbox-allow-loopback).
	BackchannelLogoutURI string `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired says the client needs sid in logout tokens (always
	// sent).
	BackchannelLogoutSessionRequired bool `json:"backchannel_logout_session_required,omitempty"`
}

// UpdateClientRequest is the body of PATCH /admin/v1/clients/{id}: each field given replaces the
// client's, validated as at creation; the others are kept.
type UpdateClientRequest struct {
	Name *string `json:"client_name,omitempty"`
	// Scope is the space-separated list of scopes the client may be granted.
	Scope        *string   `json:"scope,omitempty"`
	RedirectURIs *[]string `json:"redirect_uris,omitempty"`
	// TokenTTL is the access token lifetime in seconds; zero means the server default. It
	// applies to tokens issued from now on.
	TokenTTL *int64 `json:"token_ttl,omitempty"`
	// AllowedResources replaces the resources the client may ask tokens for; an empty list
	// lets it ask for any. Tokens already issued keep their audience.
	AllowedResources *[]string `json:"allowed_resources,omitempty"`
	// RequireDPoP, if given, says whether every token request must carry a DPoP proof (RFC
	// 9449), from now on; tokens already issued keep their binding, or lack of one.
	RequireDPoP *bool `json:"require_dpop,omitempty"`
	// FirstParty registers the client as first-party, or no longer.
	FirstParty *bool `json:"first_party,omitempty"`
	// The OpenID Connect fields (see OIDC); an empty string or list clears one.
	IDTokenAlg                       *string   `json:"id_token_signed_response_alg,omitempty"`
	PostLogoutRedirectURIs           *[]string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI             *string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired *bool     `json:"backchannel_logout_session_required,omitempty"`
}

// RotateSecretRequest is the body of POST /admin/v1/clients/{id}/rotate-secret; it may be empty.
type RotateSecretRequest struct {
	// Overlap is how long the replaced secret keeps working, so the client can be redeployed
	// with the new one meanwhile; absent: DefaultSecretOverlap; zero: not at all (a leaked
	// secret).
	Overlap *Duration `json:"overlap,omitempty"`
	// Secret, if set, is used instead of a generated one.
	Secret string `json:"client_secret,omitempty"`
}

// Duration is a time.Duration in JSON as a number of seconds, or as a string such as "24h".
type Duration time.Duration

// MarshalJSON encodes d as a number of seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).Seconds())
}

// UnmarshalJSON accepts a number of seconds or a duration string ("90s", "24h").
func (d *Duration) UnmarshalJSON(b []byte) error {
	var secs float64
	if err := json.Unmarshal(b, &secs); err == nil {
		*d = Duration(secs * float64(time.Second))
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a duration is a number of seconds or a string such as \"24h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("a duration is a number of seconds or a string such as \"24h\"")
	}
	*d = Duration(v)
	return nil
}

// CreateUserRequest is the body of POST /admin/v1/users.
type CreateUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// Name and Email are the person's OpenID Connect name and email claims (optional).
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
}

// UpdateUserRequest is the body of PATCH /admin/v1/users/{username}: each field given replaces
// the user's (an empty string clears it).
type UpdateUserRequest struct {
	Name  *string `json:"name,omitempty"`
	Email *string `json:"email,omitempty"`
}

// UserInfo is how the API shows a user (never the password hash).
type UserInfo struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	CreatedAt time.Time `json:"created_at"`
	Name      string    `json:"name,omitempty"`
	Email     string    `json:"email,omitempty"`
}

// SetPasswordRequest is the body of PUT /admin/v1/users/{username}/password.
type SetPasswordRequest struct {
	// Password is the new password (1 to 1024 bytes).
	Password string `json:"password"`
	// RevokeGrants also revokes every grant the person gave (every app's tokens die).
	RevokeGrants bool `json:"revoke_grants,omitempty"`
}

// SessionInfo is how the API shows a person's sign-in session: never its cookie's secret, nor
// the hash stored of it.
type SessionInfo struct {
	// ID is the session's public identifier.
	ID string `json:"id"`
	// CreatedAt is when the person signed in; LastSeenAt when the session was last used (to the
	// minute).
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
	// IdleExpiresAt is when it ends if not used again; ExpiresAt when it ends at the latest.
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	// UserAgent and Address are the browser's User-Agent and address at sign-in.
	UserAgent string `json:"user_agent"`
	Address   string `json:"address"`
}

// UserResult reports what an operation on a person ended: their sessions, and the grants and
// refresh tokens revoked (access tokens are not stored, so not counted: every access token of
// the revoked grants is dead).
type UserResult struct {
	SessionsEnded        int   `json:"sessions_ended"`
	GrantsRevoked        int   `json:"grants_revoked"`
	RefreshTokensRevoked int64 `json:"refresh_tokens_revoked"`
}

// RevokeAllRequest is the body of POST /admin/v1/revoke-all: at least one of User and Client.
type RevokeAllRequest struct {
	// User is a username.
	User string `json:"user,omitempty"`
	// Client is a client id.
	Client string `json:"client,omitempty"`
}

// RevokeResult reports a bulk revocation. Access tokens are not stored, so they are not
// counted: every access token of the revoked grants (and, for a client, of its client
// credentials) is dead.
type RevokeResult struct {
	GrantsRevoked        int   `json:"grants_revoked"`
	RefreshTokensRevoked int64 `json:"refresh_tokens_revoked"`
	// ClientTokensRevoked is set when every client credentials token of the client was revoked.
	ClientTokensRevoked bool `json:"client_credentials_tokens_revoked"`
	// RevokedBefore is set with ClientTokensRevoked: every access token of the client issued
	// at or before it is revoked. It lies past the clock skew allowed between instances
	// (--clock-skew), so it covers tokens issued by an instance whose clock is ahead; until it
	// has passed, the client is refused new tokens (503 with Retry-After).
	RevokedBefore *time.Time `json:"revoked_before,omitempty"`
}

// AuditInfo is one audit entry.
type AuditInfo struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Reason string    `json:"reason"`
}

// ClientInfo is how the API shows a client. ClientSecret is set only in the response that
// created the client or rotated its secret: it is stored only as a hash.
type ClientInfo struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	Name                    string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	AllowPlainPKCE          bool     `json:"allow_plain_pkce,omitempty"`
	TokenFormat             string   `json:"token_format"`
	// TokenTTL is the access token lifetime in seconds (the server default when not set).
	TokenTTL int64 `json:"token_ttl"`
	// ResourceServer and Resources say which access tokens the client may introspect and
	// receive revocation events for (besides its own).
	ResourceServer        bool     `json:"resource_server"`
	Resources             []string `json:"resources"`
	AllowInsecureRedirect bool     `json:"allow_insecure_redirect"`
	// AllowedResources are the resources (RFC 8707) the client may ask tokens for; empty: any.
	AllowedResources []string `json:"allowed_resources"`
	// ScopeLimit is, for a self-registered client an operator limited (client update --scope),
	// the space-separated scopes it is limited to; absent when it is not limited. Scope is then
	// what it may be granted: its own scopes within the limit (the limit, if it named none).
	ScopeLimit *string `json:"scope_limit,omitempty"`
	// DynamicallyRegistered marks a client that registered itself (RFC 7591, or a Client ID
	// Metadata Document); Registration says how: "admin", "dynamic" or "metadata_document".
	DynamicallyRegistered bool   `json:"dynamically_registered"`
	Registration          string `json:"registration"`
	// RequireDPoP says whether every token request must carry a DPoP proof.
	RequireDPoP bool `json:"require_dpop"`
	// FirstParty says whether a public client skips the consent page for scopes already granted.
	FirstParty bool      `json:"first_party"`
	CreatedAt  time.Time `json:"created_at"`
	// The OpenID Connect fields (IDTokenAlg is always given: RS256 when not set).
	IDTokenAlg                       string   `json:"id_token_signed_response_alg"`
	PostLogoutRedirectURIs           []string `json:"post_logout_redirect_uris"`
	BackchannelLogoutURI             string   `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired bool     `json:"backchannel_logout_session_required"`

	// PreviousSecretExpiresAt is when the secret replaced by the last rotation stops working;
	// absent when there is none.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at,omitempty"`
}

// RotateKeysResponse is the body answering POST /admin/v1/keys/rotate.
type RotateKeysResponse struct {
	// KeyID is the id of the new token-sealing key.
	KeyID string `json:"kid"`
	// SigningKeyID is the id of the new JWT signing key, published at once.
	SigningKeyID string `json:"signing_kid,omitempty"`
	// SigningActivates is when the new signing keys start to sign.
	SigningActivates time.Time `json:"signing_activates,omitzero"`
	// SigningKeys are the new signing keys, one per algorithm the server signs with (the
	// access tokens' first: SigningKeyID), each published at once.
	SigningKeys []RotatedKey `json:"signing_keys,omitempty"`
}

// RotatedKey is a signing key a rotation created.
type RotatedKey struct {
	// KID is its key id (as in the JWKS); Alg its algorithm (ES256, EdDSA or RS256).
	KID string `json:"kid"`
	Alg string `json:"alg"`
}

// ErrorResponse is the body of every error the API returns.
type ErrorResponse struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func infoOf(c rescind.Client, ttl time.Duration) ClientInfo {
	method := rescind.AuthMethodBasic
	if c.Public {
		method = rescind.AuthMethodNone
	}
	scopes := c.Scopes
	var limit *string
	if c.SelfRegistered() && c.ScopeLimit != nil {
		l := strings.Join(c.ScopeLimit, " ")
		limit = &l
		if len(scopes) == 0 {
			scopes = c.ScopeLimit
		} else {
			scopes = slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool { return !slices.Contains(c.ScopeLimit, sc) })
		}
	}
	scope := strings.Join(scopes, " ")
	ru := c.RedirectURIs
	if ru == nil {
		ru = []string{}
	}
	res := c.Resources
	if res == nil {
		res = []string{}
	}
	allowed := c.AllowedResources
	if allowed == nil {
		allowed = []string{}
	}
	reg := c.Registration
	if reg == rescind.RegistrationAdmin {
		reg = "admin"
	}
	info := ClientInfo{ClientID: c.ID, Name: c.Name, GrantTypes: c.GrantTypes, Scope: scope, RedirectURIs: ru,
		TokenEndpointAuthMethod: method, TokenTTL: int64(ttl / time.Second), CreatedAt: c.CreatedAt, AllowPlainPKCE: c.AllowPlainPKCE, TokenFormat: c.TokenFormat,
		ResourceServer: c.ResourceServer, Resources: res, AllowInsecureRedirect: c.AllowInsecureRedirect,
		AllowedResources: allowed, DynamicallyRegistered: c.SelfRegistered(), Registration: reg, RequireDPoP: c.RequireDPoP,
		FirstParty: c.FirstParty, IDTokenAlg: c.IDTokenAlgorithm(), PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
		BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired, ScopeLimit: limit}
	if info.PostLogoutRedirectURIs == nil {
		info.PostLogoutRedirectURIs = []string{}
	}
	if c.PreviousSecretHash != "" && !c.PreviousSecretExpiresAt.IsZero() {
		exp := c.PreviousSecretExpiresAt
		info.PreviousSecretExpiresAt = &exp
	}
	return info
}

// BackupRequest is the body of POST /admin/v1/backup.
type BackupRequest struct {
	// Path is the new file to write, an absolute name on the server's machine. It must not exist.
	Path string `json:"path"`
}

// BackupResponse reports a backup written.
type BackupResponse struct {
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
}
