package client

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/dpop"
)

// DPoPTransport is an http.RoundTripper that presents a DPoP-bound access token to a resource
// server (RFC 9449 §7.1): every request gets "Authorization: DPoP <token>" and a fresh proof
// with the token's hash (ath). When the resource server asks for a nonce (a 401 with
// error="use_dpop_nonce" and a DPoP-Nonce header, §9), the request is sent once more with it,
// and the nonce is kept for later requests to that server.
//
// The token and proofs go only to the resource servers named by Origins: a proof names the URL
// it is for, and one made for a server that should not have the token (one a redirect leads to,
// say) could be replayed by that server elsewhere, with the token it came with.
type DPoPTransport struct {
	// Key is the key the token is bound to. Required.
	Key *dpop.Key
	// Source gives the access token. Required.
	Source oauth2.TokenSource
	// Origins are the origins (scheme://host[:port]) of the resource servers the token is for.
	// A request to any other origin is refused with an error; a redirect to one (which
	// http.Client follows by itself) is sent on without the token or a proof, as a browser
	// would. Nonces are taken only from these origins. If empty, the transport is pinned to the
	// origin of the first request it sends: set Origins when the token is for several servers.
	Origins []string
	// Base sends the requests. If nil, http.DefaultTransport.
	Base http.RoundTripper

	mu      sync.Mutex
	allowed []string          // Origins normalized, or the first request's origin
	nonces  map[string]string // by origin
}

// RoundTrip implements http.RoundTripper. A request with a body is retried for a nonce only if
// it can be replayed (GetBody is set, as http.NewRequest does for common body types).
func (t *DPoPTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Key == nil || t.Source == nil {
		return nil, fmt.Errorf("client: DPoPTransport needs Key and Source")
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	origin, ok, err := t.allow(req)
	if err != nil {
		return nil, err
	}
	if !ok {
		// A redirect hop to another origin: on, without the token or a proof.
		return base.RoundTrip(req)
	}
	tok, err := t.Source.Token()
	if err != nil {
		return nil, fmt.Errorf("client: getting the access token: %w", err)
	}
	send := func(r *http.Request) (*http.Response, error) {
		t.mu.Lock()
		nonce := t.nonces[origin]
		t.mu.Unlock()
		proof, err := t.Key.Proof(r.Method, r.URL.String(), dpop.ProofOptions{Nonce: nonce, AccessToken: tok.AccessToken})
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		r.Header.Set("Authorization", "DPoP "+tok.AccessToken)
		r.Header.Set("DPoP", proof)
		resp, err := base.RoundTrip(r)
		if err == nil {
			if n := resp.Header.Get("DPoP-Nonce"); validNonce(n) {
				t.mu.Lock()
				if t.nonces == nil {
					t.nonces = map[string]string{}
				}
				t.nonces[origin] = n
				t.mu.Unlock()
			}
		}
		return resp, err
	}
	first := req.Clone(req.Context())
	resp, err := send(first)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !validNonce(resp.Header.Get("DPoP-Nonce")) ||
		!strings.Contains(resp.Header.Get("WWW-Authenticate"), dpop.CodeUseNonce) {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, nil // cannot replay the body: the caller sees the 401
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return resp, nil
		}
	}
	resp.Body.Close()
	return send(retry)
}

// allow reports whether req may carry the token and a proof, and returns its origin. A request
// to an origin that is not allowed is an error, unless it is a redirect hop (req.Response is
// set), which is sent on without them (ok false).
func (t *DPoPTransport) allow(req *http.Request) (origin string, ok bool, err error) {
	origin, err = originOf(req.URL)
	if err != nil {
		return "", false, fmt.Errorf("client: DPoPTransport: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.allowed == nil {
		for _, o := range t.Origins {
			u, err := url.Parse(o)
			if err != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
				return "", false, fmt.Errorf("client: DPoPTransport: origin %q is not scheme://host[:port]", o)
			}
			n, err := originOf(u)
			if err != nil {
				return "", false, fmt.Errorf("client: DPoPTransport: origin %q: %w", o, err)
			}
			t.allowed = append(t.allowed, n)
		}
		if t.allowed == nil && req.Response == nil {
			t.allowed = []string{origin} // pinned to the first request's origin
		}
	}
	for _, a := range t.allowed {
		if a == origin {
			return origin, true, nil
		}
	}
	if req.Response != nil {
		return origin, false, nil
	}
	return "", false, fmt.Errorf("client: DPoPTransport: %s is not among the origins the token is for (%s): set Origins",
		origin, strings.Join(t.allowed, ", "))
}

// originOf returns u's origin as scheme://host[:port]: scheme and host in lower case, without
// the scheme's default port.
func originOf(u *url.URL) (string, error) {
	scheme := strings.ToLower(u.Scheme)
	if (scheme != "https" && scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http or https URL", u.Redacted())
	}
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" || strings.Contains(host, ":") {
		if port == "" {
			return scheme + "://[" + host + "]", nil
		}
		host = net.JoinHostPort(host, port)
	}
	return scheme + "://" + host, nil
}

// validNonce reports whether n is a nonce a proof can carry (RFC 9449 §8.1: 1*NQCHAR), of a
// sensible length.
func validNonce(n string) bool {
	if n == "" || len(n) > 512 {
		return false
	}
	for i := 0; i < len(n); i++ {
		if c := n[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
