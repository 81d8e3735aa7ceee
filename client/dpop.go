package client

import (
	"fmt"
	"net/http"
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
type DPoPTransport struct {
	// Key is the key the token is bound to. Required.
	Key *dpop.Key
	// Source gives the access token. Required.
	Source oauth2.TokenSource
	// Base sends the requests. If nil, http.DefaultTransport.
	Base http.RoundTripper

	mu     sync.Mutex
	nonces map[string]string // by scheme://host
}

// RoundTrip implements http.RoundTripper. A request with a body is retried for a nonce only if
// it can be replayed (GetBody is set, as http.NewRequest does for common body types).
func (t *DPoPTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Key == nil || t.Source == nil {
		return nil, fmt.Errorf("client: DPoPTransport needs Key and Source")
	}
	tok, err := t.Source.Token()
	if err != nil {
		return nil, fmt.Errorf("client: getting the access token: %w", err)
	}
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	origin := req.URL.Scheme + "://" + req.URL.Host
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
			if n := resp.Header.Get("DPoP-Nonce"); n != "" {
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
	if err != nil || resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("DPoP-Nonce") == "" ||
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
