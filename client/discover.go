package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Metadata is authorization server metadata (RFC 8414 §2): the members this package uses, and
// all of them in Raw.
type Metadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                             string   `json:"token_endpoint,omitempty"`
	RevocationEndpoint                        string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint,omitempty"`
	JWKSURI                                   string   `json:"jwks_uri,omitempty"`
	GrantTypesSupported                       []string `json:"grant_types_supported,omitempty"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported,omitempty"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported,omitempty"`
	// Raw is the metadata document as served.
	Raw json.RawMessage `json:"-"`
	// URL is where the document was found.
	URL string `json:"-"`
}

// ErrIssuerMismatch is returned when the metadata's issuer is not the one asked for, which
// RFC 8414 §3.3 requires a client to refuse (it defends against mix-up attacks).
var ErrIssuerMismatch = errors.New("client: metadata issuer does not match the issuer requested")

// Discover fetches issuer's metadata: first from the RFC 8414 §3.1 location
// (/.well-known/oauth-authorization-server, inserted before any path of the issuer), then from
// the OpenID Connect Discovery location (/.well-known/openid-configuration appended to the
// issuer). The metadata's issuer must equal issuer. hc makes the requests; if nil,
// http.DefaultClient is used.
func Discover(ctx context.Context, issuer string, hc *http.Client) (*Metadata, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: issuer %q must be an http(s) URL without query or fragment", issuer)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	base := u.Scheme + "://" + u.Host
	locations := []string{
		base + "/.well-known/oauth-authorization-server" + path,
		base + path + "/.well-known/openid-configuration",
	}
	var errs []error
	for _, loc := range locations {
		md, err := fetchMetadata(ctx, hc, loc)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		if strings.TrimSuffix(md.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
			return nil, fmt.Errorf("%w: asked for %q, %s says %q", ErrIssuerMismatch, issuer, loc, md.Issuer)
		}
		return md, nil
	}
	return nil, fmt.Errorf("client: discovering %s: %w", issuer, errors.Join(errs...))
}

func fetchMetadata(ctx context.Context, hc *http.Client, loc string) (*Metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", loc, resp.StatusCode)
	}
	var md Metadata
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, fmt.Errorf("%s: not valid metadata: %w", loc, err)
	}
	if md.Issuer == "" {
		return nil, fmt.Errorf("%s: metadata has no issuer", loc)
	}
	md.Raw, md.URL = b, loc
	return &md, nil
}
