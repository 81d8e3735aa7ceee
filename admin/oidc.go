package admin

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/redirect"
)

// validIDTokenAlg checks id_token_signed_response_alg (OpenID Connect Dynamic Client
// Registration 1.0 §2): empty (RS256), RS256, ES256 or EdDSA; "none" is never allowed.
func validIDTokenAlg(alg string) error {
	switch alg {
	case "", rescind.AlgRS256, rescind.AlgES256, rescind.AlgEdDSA:
		return nil
	}
	return fmt.Errorf("id_token_signed_response_alg must be RS256, ES256 or EdDSA, not %q", alg)
}

// validBackchannelURI checks a backchannel_logout_uri (Back-Channel Logout 1.0 §2.2): an
// absolute https URL without fragment; http only to a loopback address, and loopback only when
// the server delivers there (allowLoopback: --outbox-allow-loopback, for development). Empty
// clears it.
func validBackchannelURI(raw string, allowLoopback bool) error {
	if raw == "" {
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil || len(raw) > 2000 {
		return errors.New("backchannel_logout_uri must be an absolute https URL without fragment or user info")
	}
	loopback := isLoopback(u.Hostname())
	switch {
	case loopback && !allowLoopback:
		return errors.New("backchannel_logout_uri: loopback receivers need the server's --outbox-allow-loopback (development only)")
	case u.Scheme == "https":
	case u.Scheme == "http" && loopback:
	default:
		return errors.New("backchannel_logout_uri must be https (http only to a loopback address, for development)")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// applyOIDC validates the OpenID Connect fields of a registration and sets them on c.
func applyOIDC(c *rescind.Client, o OIDC, allowLoopback bool) error {
	if o.PostLogoutRedirectURI != "" && !slices.Contains(o.PostLogoutRedirectURIs, o.PostLogoutRedirectURI) {
		o.PostLogoutRedirectURIs = append(slices.Clip(o.PostLogoutRedirectURIs), o.PostLogoutRedirectURI)
	}
	if err := validIDTokenAlg(o.IDTokenAlg); err != nil {
		return err
	}
	if err := redirect.ValidateAll(o.PostLogoutRedirectURIs, c.AllowInsecureRedirect); err != nil {
		return fmt.Errorf("post_logout_redirect_uris: %w", err)
	}
	if err := validBackchannelURI(o.BackchannelLogoutURI, allowLoopback); err != nil {
		return err
	}
	c.IDTokenAlg, c.BackchannelLogoutURI = o.IDTokenAlg, o.BackchannelLogoutURI
	c.PostLogoutRedirectURIs = append([]string(nil), o.PostLogoutRedirectURIs...)
	c.BackchannelLogoutSessionRequired = o.BackchannelLogoutSessionRequired
	return nil
}

// oidcOf returns the OpenID Connect fields of c with those req changes.
func oidcOf(c rescind.Client, req UpdateClientRequest) OIDC {
	o := OIDC{IDTokenAlg: c.IDTokenAlg, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, BackchannelLogoutURI: c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired}
	if req.IDTokenAlg != nil {
		o.IDTokenAlg = *req.IDTokenAlg
	}
	if req.PostLogoutRedirectURIs != nil {
		o.PostLogoutRedirectURIs = *req.PostLogoutRedirectURIs
	}
	if req.BackchannelLogoutURI != nil {
		o.BackchannelLogoutURI = *req.BackchannelLogoutURI
	}
	if req.BackchannelLogoutSessionRequired != nil {
		o.BackchannelLogoutSessionRequired = *req.BackchannelLogoutSessionRequired
	}
	return o
}
