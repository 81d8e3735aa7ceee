package admin

import (
	"time"

	"github.com/rescind/rescind"
)

// CreateClientRequest is the body of POST /admin/v1/clients.
type CreateClientRequest struct {
	// Name is the client_name. Required.
	Name string `json:"client_name"`
	// GrantTypes defaults to ["client_credentials"].
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
}

// ClientInfo is how the API shows a client. ClientSecret is set only in the response that
// created the client: it is stored only as a hash.
type ClientInfo struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	Name                    string   `json:"client_name"`
	GrantTypes              []string `json:"grant_types"`
	Scope                   string   `json:"scope"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	// TokenTTL is the access token lifetime in seconds (the server default when not set).
	TokenTTL  int64     `json:"token_ttl"`
	CreatedAt time.Time `json:"created_at"`
}

// RotateKeysResponse is the body answering POST /admin/v1/keys/rotate.
type RotateKeysResponse struct {
	// KeyID is the id of the new active key.
	KeyID string `json:"kid"`
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
	scope := ""
	for i, s := range c.Scopes {
		if i > 0 {
			scope += " "
		}
		scope += s
	}
	ru := c.RedirectURIs
	if ru == nil {
		ru = []string{}
	}
	return ClientInfo{ClientID: c.ID, Name: c.Name, GrantTypes: c.GrantTypes, Scope: scope, RedirectURIs: ru,
		TokenEndpointAuthMethod: method, TokenTTL: int64(ttl / time.Second), CreatedAt: c.CreatedAt}
}
