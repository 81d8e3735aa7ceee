package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rescind/rescind/dpop"
)

// Authentication methods (RFC 8414 §2, RFC 7591 §2).
const (
	AuthBasic = "client_secret_basic"
	AuthPost  = "client_secret_post"
	AuthNone  = "none"
)

// Client calls a server's token, revocation and introspection endpoints on behalf of one OAuth
// client. Set the endpoints directly, or set Issuer and let the first call discover them. A
// Client is safe for concurrent use once configured.
type Client struct {
	// Issuer is the authorization server's issuer identifier, used for discovery when an
	// endpoint it needs is not set.
	Issuer string
	// ClientID and ClientSecret are the client's credentials. An empty secret means a public
	// client (authentication method "none").
	ClientID     string
	ClientSecret string
	// AuthMethod is AuthBasic, AuthPost or AuthNone. If empty, it is picked from the server's
	// metadata: client_secret_basic when supported (the RFC 8414 default), else
	// client_secret_post; none for a client without a secret.
	AuthMethod string
	// TokenURL, RevocationURL and IntrospectionURL override discovered endpoints.
	TokenURL, RevocationURL, IntrospectionURL string
	// HTTPClient makes the requests. If nil, http.DefaultClient is used.
	HTTPClient *http.Client
	// MaxRetries bounds retries of a 503 answer. If zero, 3; negative disables retries.
	MaxRetries int
	// MaxRetryWait caps each wait between retries (Retry-After or backoff). If zero, 30 s.
	MaxRetryWait time.Duration
	// DPoP, if set, makes every token request carry a DPoP proof made with this key (RFC 9449
	// §5), so the tokens obtained are bound to it; an answer asking for a server nonce
	// (use_dpop_nonce, §8) is retried once with that nonce.
	DPoP *dpop.Key

	mu       sync.Mutex // guards metadata and nonce
	metadata *Metadata
	nonce    string // the token endpoint's last DPoP-Nonce
}

// Error is an error answer from the server: the RFC 6749 §5.2 members and the HTTP status.
type Error struct {
	// Code is the "error" member, for example "invalid_client"; empty if the body had none.
	Code string
	// Description is the "error_description" member.
	Description string
	// URI is the "error_uri" member.
	URI string
	// StatusCode is the HTTP status code.
	StatusCode int
	// Body is the raw response body (at most 64 KiB).
	Body []byte
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	if e.Code != "" {
		b.WriteString(e.Code)
	} else {
		b.WriteString("unexpected response")
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	fmt.Fprintf(&b, " (HTTP %d)", e.StatusCode)
	return b.String()
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return http.DefaultClient
}

// endpoint returns the URL of the endpoint named by kind, discovering it if needed, and the
// auth methods the metadata lists for it.
func (c *Client) endpoint(ctx context.Context, kind string) (string, []string, error) {
	var set string
	switch kind {
	case "token":
		set = c.TokenURL
	case "revocation":
		set = c.RevocationURL
	case "introspection":
		set = c.IntrospectionURL
	}
	if set != "" && c.AuthMethod != "" {
		return set, nil, nil
	}
	c.mu.Lock()
	md := c.metadata
	c.mu.Unlock()
	if md == nil && c.Issuer != "" {
		var err error
		if md, err = Discover(ctx, c.Issuer, c.HTTPClient); err != nil {
			if set != "" {
				return set, nil, nil // the endpoint is given; metadata was only for the method
			}
			return "", nil, err
		}
		c.mu.Lock()
		c.metadata = md
		c.mu.Unlock()
	}
	if md == nil {
		md = &Metadata{}
	}
	var found string
	var methods []string
	switch kind {
	case "token":
		found, methods = md.TokenEndpoint, md.TokenEndpointAuthMethodsSupported
	case "revocation":
		found, methods = md.RevocationEndpoint, md.RevocationEndpointAuthMethodsSupported
	case "introspection":
		found, methods = md.IntrospectionEndpoint, md.IntrospectionEndpointAuthMethodsSupported
	}
	if methods == nil {
		methods = md.TokenEndpointAuthMethodsSupported
	}
	if set != "" {
		found = set
	}
	if found == "" {
		if c.Issuer == "" {
			return "", nil, fmt.Errorf("client: no %s endpoint: set Issuer or the endpoint URL", kind)
		}
		return "", nil, fmt.Errorf("client: %s does not advertise a %s endpoint", c.Issuer, kind)
	}
	return found, methods, nil
}

// authMethod picks the authentication method for an endpoint that supports methods (nil: unknown).
func (c *Client) authMethod(methods []string) string {
	if c.AuthMethod != "" {
		return c.AuthMethod
	}
	if c.ClientSecret == "" {
		return AuthNone
	}
	if len(methods) == 0 || slices.Contains(methods, AuthBasic) {
		return AuthBasic
	}
	if slices.Contains(methods, AuthPost) {
		return AuthPost
	}
	return AuthBasic
}

// BasicAuth returns the value of an Authorization header carrying id and secret as RFC 6749
// §2.3.1 requires: each is form-encoded (application/x-www-form-urlencoded) before the pair is
// Basic-encoded, so secrets with ':', '%', '+', spaces or non-ASCII survive.
func BasicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// post sends form to the endpoint with client authentication, retrying 503 answers, and returns
// the final 2xx response body. Non-2xx answers become *Error.
func (c *Client) post(ctx context.Context, kind string, form url.Values) ([]byte, error) {
	endpoint, methods, err := c.endpoint(ctx, kind)
	if err != nil {
		return nil, err
	}
	header := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"application/json"}}
	switch m := c.authMethod(methods); m {
	case AuthBasic:
		header.Set("Authorization", BasicAuth(c.ClientID, c.ClientSecret))
	case AuthPost:
		form.Set("client_id", c.ClientID)
		form.Set("client_secret", c.ClientSecret)
	case AuthNone:
		form.Set("client_id", c.ClientID)
	default:
		return nil, fmt.Errorf("client: unsupported authentication method %q", m)
	}
	body := form.Encode()

	retries := c.MaxRetries
	if retries == 0 {
		retries = 3
	}
	maxWait := c.MaxRetryWait
	if maxWait <= 0 {
		maxWait = 30 * time.Second
	}
	useDPoP := kind == "token" && c.DPoP != nil
	nonceRetried := false
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("client: %w", err)
		}
		req.Header = header.Clone()
		if useDPoP {
			c.mu.Lock()
			nonce := c.nonce
			c.mu.Unlock()
			proof, err := c.DPoP.Proof(http.MethodPost, endpoint, dpop.ProofOptions{Nonce: nonce})
			if err != nil {
				return nil, fmt.Errorf("client: %w", err)
			}
			req.Header.Set("DPoP", proof)
		}
		resp, err := c.httpClient().Do(req)
		if err != nil {
			return nil, fmt.Errorf("client: %s request: %w", kind, err)
		}
		b, readErr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if readErr != nil {
			return nil, fmt.Errorf("client: reading %s response: %w", kind, readErr)
		}
		if n := resp.Header.Get("DPoP-Nonce"); useDPoP && n != "" {
			c.mu.Lock()
			c.nonce = n
			c.mu.Unlock()
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return b, nil
		}
		if useDPoP && !nonceRetried && resp.Header.Get("DPoP-Nonce") != "" && parseError(resp.StatusCode, b).Code == dpop.CodeUseNonce {
			nonceRetried = true // RFC 9449 §8: retry once with the nonce the server gave
			continue
		}
		if resp.StatusCode == http.StatusServiceUnavailable && attempt < retries {
			wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			if wait < 0 {
				wait = time.Duration(500<<attempt) * time.Millisecond
			}
			wait = min(wait, maxWait)
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
			continue
		}
		return nil, parseError(resp.StatusCode, b)
	}
}

// retryAfter parses a Retry-After value (delay-seconds or an HTTP-date); -1 if absent or invalid.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return -1
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now))
	}
	return -1
}

func parseError(status int, b []byte) *Error {
	e := &Error{StatusCode: status, Body: b[:min(len(b), 64<<10)]}
	var m struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		URI         string `json:"error_uri"`
	}
	if json.Unmarshal(b, &m) == nil {
		e.Code, e.Description, e.URI = m.Error, m.Description, m.URI
	}
	if e.Code == "" && e.Description == "" {
		e.Description = strings.TrimSpace(string(e.Body[:min(len(e.Body), 200)]))
		if e.Description == "" {
			e.Description = http.StatusText(status)
		}
	}
	return e
}

// Revoke asks the server to revoke token (RFC 7009 §2.1). hint, if not empty, is sent as
// token_type_hint ("access_token" or "refresh_token"). A nil error means the server answered 200,
// which, per RFC 7009 §2.2, also means the token was unknown, expired or already revoked.
func (c *Client) Revoke(ctx context.Context, token, hint string) error {
	if token == "" {
		return errors.New("client: no token to revoke")
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	_, err := c.post(ctx, "revocation", form)
	return err
}

// Introspection is an RFC 7662 §2.2 introspection response.
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       Audience `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	// Cnf, for a sender-constrained token, says what it is bound to (RFC 7800 §3.1): for a
	// DPoP-bound token, the thumbprint of the key (RFC 9449 §6.2).
	Cnf *Confirmation `json:"cnf,omitempty"`
	// Extra holds every member not listed above, as sent.
	Extra map[string]json.RawMessage `json:"-"`
	// Raw is the response body.
	Raw json.RawMessage `json:"-"`
}

// Confirmation is the "cnf" member of a sender-constrained token (RFC 7800 §3.1).
type Confirmation struct {
	// JKT is the JWK SHA-256 thumbprint (RFC 7638) of the DPoP key the token is bound to.
	JKT string `json:"jkt,omitempty"`
}

// Audience is the "aud" member, which RFC 7662 allows as a string or an array of strings.
type Audience []string

// UnmarshalJSON accepts a string or an array of strings.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("aud must be a string or an array of strings")
	}
	*a = many
	return nil
}

var standardMembers = []string{"active", "scope", "client_id", "username", "token_type", "exp", "iat", "nbf", "sub", "aud", "iss", "jti", "cnf"}

// Introspect asks the server about token (RFC 7662 §2.1). hint, if not empty, is sent as
// token_type_hint. An inactive token is not an error: check Active.
func (c *Client) Introspect(ctx context.Context, token, hint string) (*Introspection, error) {
	if token == "" {
		return nil, errors.New("client: no token to introspect")
	}
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	b, err := c.post(ctx, "introspection", form)
	if err != nil {
		return nil, err
	}
	var in Introspection
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, fmt.Errorf("client: introspection response is not valid: %w", err)
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, fmt.Errorf("client: introspection response is not a JSON object: %w", err)
	}
	if _, ok := all["active"]; !ok {
		return nil, errors.New("client: introspection response has no \"active\" member")
	}
	for _, k := range standardMembers {
		delete(all, k)
	}
	if len(all) > 0 {
		in.Extra = all
	}
	in.Raw = bytes.Clone(b)
	return &in, nil
}
