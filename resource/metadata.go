package resource

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// OAuth 2.0 Protected Resource Metadata, RFC 9728: a resource server publishes which
// authorization servers issue its tokens and which scopes it knows, at a well-known URL built
// from its resource identifier (§3.1), and names that URL in its 401 answers (§5.1), so a
// client that knows nothing but the resource's URL (an AI agent calling a tool server, in the
// Model Context Protocol's authorization) can find where to get a token, and for which
// resource (RFC 8707) to ask.

// WellKnownPath is the well-known URI suffix of protected resource metadata (RFC 9728 §3).
const WellKnownPath = "/.well-known/oauth-protected-resource"

// ProtectedResourceMetadata is the protected resource metadata document of RFC 9728 §2: the
// members this package publishes.
type ProtectedResourceMetadata struct {
	// Resource is the resource identifier: the Audience, what clients ask tokens for.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuers whose tokens the resource accepts.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// ScopesSupported are the scopes the resource knows.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported are the ways a token may be presented: the Authorization header
	// alone (RFC 6750 §2.1).
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// ResourceName is a human-readable name of the resource, if configured.
	ResourceName string `json:"resource_name,omitempty"`
}

// MetadataURL returns the URL of the protected resource metadata of the resource identifier
// resource (RFC 9728 §3.1): the well-known path inserted between its host and its path (a
// lone terminating slash dropped), with its query after. resource must be an http or https
// URL without a fragment.
func MetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.User != nil {
		return "", errors.New("resource: a resource identifier with metadata must be an http(s) URL without a fragment")
	}
	path := u.EscapedPath()
	if path == "/" {
		path = ""
	}
	out := u.Scheme + "://" + u.Host + WellKnownPath + path
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out, nil
}

// Metadata returns the resource's protected resource metadata: its Audience as the resource,
// the issuer as its authorization server, ScopesSupported (else RequiredScopes).
func (m *Middleware) Metadata() ProtectedResourceMetadata {
	scopes := m.cfg.ScopesSupported
	if len(scopes) == 0 {
		scopes = m.cfg.RequiredScopes
	}
	return ProtectedResourceMetadata{Resource: m.cfg.Audience, AuthorizationServers: []string{m.md.Issuer},
		ScopesSupported: scopes, BearerMethodsSupported: []string{"header"}, ResourceName: m.cfg.ResourceName}
}

// MetadataURL returns where the protected resource metadata is published, which 401 answers
// name: Config.ResourceMetadataURL, else the URL RFC 9728 §3.1 builds from the Audience; ""
// when the Audience is not an http(s) URL (a URN, say), or was not configured (it is then the
// issuer's, which says nothing of where this server is), and no URL is configured.
func (m *Middleware) MetadataURL() string {
	if m.cfg.ResourceMetadataURL != "" {
		return m.cfg.ResourceMetadataURL
	}
	if m.audienceDefaulted {
		return ""
	}
	u, err := MetadataURL(m.cfg.Audience)
	if err != nil {
		return ""
	}
	return u
}

// MetadataPath returns the path of MetadataURL, where a mux should mount MetadataHandler: for an
// Audience of https://api.example/photos, /.well-known/oauth-protected-resource/photos.
func (m *Middleware) MetadataPath() string {
	u, err := url.Parse(m.MetadataURL())
	if err != nil || u.Path == "" {
		return WellKnownPath
	}
	return u.Path
}

// MetadataHandler serves the protected resource metadata (RFC 9728 §3.2) as JSON to GET and
// HEAD, to any origin (it holds nothing secret, and browser clients read it), and answers CORS
// preflights.
func (m *Middleware) MetadataHandler() http.Handler {
	body, _ := json.MarshalIndent(m.Metadata(), "", "  ") // strings and lists always marshal
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Allow-Methods", "GET, HEAD")
			h.Set("Access-Control-Allow-Headers", "Accept, MCP-Protocol-Version")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=3600")
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			w.Write(body)
		}
	})
}

// challenge returns the WWW-Authenticate value of a refusal in scheme (Bearer, RFC 6750 §3, or
// DPoP, RFC 9449 §7.1): the realm for a Bearer request without a token (which gets no error
// code, RFC 6750 §3.1), else errCode and desc; if scope, the scopes the resource requires; the
// extra parameters as given; and last the metadata's URL (RFC 9728 §5.1), so that the
// challenge starts as it did before the metadata was named.
func (m *Middleware) challenge(scheme, errCode, desc string, scope bool, extra ...string) string {
	params := []string{}
	if errCode == "" && scheme == "Bearer" {
		params = append(params, `realm="`+quote(m.cfg.Audience)+`"`)
	}
	if errCode != "" {
		params = append(params, `error="`+errCode+`"`)
	}
	if desc != "" {
		params = append(params, `error_description="`+quote(desc)+`"`)
	}
	if scope && len(m.cfg.RequiredScopes) > 0 {
		params = append(params, `scope="`+quote(strings.Join(m.cfg.RequiredScopes, " "))+`"`)
	}
	params = append(params, extra...)
	if u := m.MetadataURL(); u != "" {
		params = append(params, `resource_metadata="`+quote(u)+`"`)
	}
	if len(params) == 0 {
		return scheme
	}
	return scheme + " " + strings.Join(params, ", ")
}
