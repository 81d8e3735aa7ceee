package oauth

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/token"
)

// Resource indicators, RFC 8707: the resource parameter names the protected resources an access
// token is for, and becomes its audience. It may be repeated at the authorization endpoint (the
// resources are recorded in the code and the grant, and shown on the consent page) and at the
// token endpoint, where it narrows what the code, the refresh token or, for client credentials,
// the client may have. Anything else is invalid_target (§2).

// ErrInvalidTarget is the RFC 8707 §2 error for a resource that is malformed or not allowed.
const ErrInvalidTarget = "invalid_target"

// invalidTarget is an invalid_target token error with desc.
func invalidTarget(desc string) *Error {
	return errorf(ErrInvalidTarget, http.StatusBadRequest, desc)
}

// parseResources validates the values of the resource parameter (RFC 8707 §2): each an absolute
// URI without a fragment (rescind.ValidResource), at most token.MaxAudience of them. Repeats are
// dropped; the order is kept. The error is the description of an invalid_target.
func parseResources(vals []string) ([]string, string) {
	if len(vals) > 4*token.MaxAudience { // refused before the quadratic work of dropping repeats
		return nil, "at most 32 resources may be requested at once"
	}
	var out []string
	for _, v := range vals {
		if !rescind.ValidResource(v) {
			return nil, "resource must be an absolute URI without a fragment (RFC 8707 §2)"
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) > token.MaxAudience {
		return nil, "at most 32 resources may be requested at once"
	}
	total := 0
	for _, v := range out {
		total += len(v)
	}
	if total > maxResourcesBytes { // they all go into the token, which travels in a header
		return nil, fmt.Sprintf("the resources requested may be at most %d bytes together", maxResourcesBytes)
	}
	return out, ""
}

// maxResourcesBytes bounds the resources of one token, together.
const maxResourcesBytes = 4096

// allowedResources checks that client may ask for each of resources (its AllowedResources),
// and returns the description of an invalid_target if not.
func allowedResources(client rescind.Client, resources []string) string {
	for _, r := range resources {
		if !client.MayRequestResource(r) {
			return "the client may not request the resource " + quoteValue(r)
		}
	}
	return ""
}

// defaultResources returns the resources of a request of client that named requested: those,
// or, when it named none and the client may ask only for some (its AllowedResources), all of
// those, never the issuer: else a client an operator limited to one resource server would get,
// by naming no resource, a token for the issuer's audience (audit 16 #3). RFC 8707 §2 lets the
// server pick the default audience. The string is the description of an invalid_target.
func defaultResources(client rescind.Client, requested []string) ([]string, string) {
	if len(requested) > 0 || len(client.AllowedResources) == 0 {
		return requested, ""
	}
	total := 0
	for _, r := range client.AllowedResources {
		total += len(r)
	}
	if len(client.AllowedResources) > token.MaxAudience || total > maxResourcesBytes {
		return nil, "this client must name the resource it asks a token for (RFC 8707 §2)"
	}
	return slices.Clone(client.AllowedResources), ""
}

// narrowResources returns the audience of an access token issued from a code or refresh token
// that holds the resources held (RFC 8707 §2.2): those requested, each of which must be held,
// or all those held when none is requested (and none held, defaultResources). The client must still be allowed each one (its
// allowed resources may have been narrowed since). The *Error is an invalid_target.
func narrowResources(client rescind.Client, requested []string, held []string) ([]string, *Error) {
	aud := held
	if len(requested) > 0 {
		for _, r := range requested {
			if !slices.Contains(held, r) {
				if len(held) == 0 {
					return nil, invalidTarget("the authorization named no resource: request the resource in the authorization request")
				}
				return nil, invalidTarget("the resource " + quoteValue(r) + " was not part of the authorization")
			}
		}
		aud = requested
	}
	if len(aud) == 0 { // a grant from before the operator limited the client's resources
		var desc string
		if aud, desc = defaultResources(client, nil); desc != "" {
			return nil, invalidTarget(desc)
		}
	}
	if desc := allowedResources(client, aud); desc != "" {
		return nil, invalidTarget(desc)
	}
	return aud, nil
}

// quoteValue renders a value for an error description: quoted, bounded and printable.
func quoteValue(v string) string {
	if len(v) > 200 {
		v = v[:200] + "..."
	}
	return `"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, v) + `"`
}
