package outbox

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/safehttp"
)

// HTTPRequest is the POST an HTTPDeliverer makes for one message, prepared at delivery time.
type HTTPRequest struct {
	// URL is the receiver's endpoint: https, or http to a loopback address when the deliverer
	// allows loopback.
	URL string
	// ContentType is the body's media type, e.g. "application/x-www-form-urlencoded" (a
	// back-channel logout token) or "application/secevent+jwt" (an RFC 8935 push).
	ContentType string
	// Body is sent as is.
	Body []byte
	// Header holds further header fields, e.g. Authorization: produced at delivery time from
	// sealed configuration, so credentials are never copied into the outbox.
	Header http.Header
}

// HTTPConfig configures NewHTTPDeliverer.
type HTTPConfig struct {
	// Prepare makes the request for a message at delivery time, from its payload and what is
	// configured now (the receiver's current endpoint, its credentials unsealed). Its error is
	// the attempt's: wrap it with Permanent when retrying cannot help (the receiver is gone),
	// or return Later (a paused receiver). Required by Deliver; Post does without.
	Prepare func(ctx context.Context, m rescind.OutboxMessage) (HTTPRequest, error)
	// AllowLoopback lets requests reach loopback addresses, over http or https: for development
	// and tests only. Every other address that is not public stays refused (package safehttp),
	// and so does plain http anywhere else.
	AllowLoopback bool
	// Timeout bounds each request. If zero, ten seconds.
	Timeout time.Duration
	// RootCAs are the certificate authorities trusted for https receivers. If nil, the
	// system's.
	RootCAs *x509.CertPool
	// Now returns the current time, for Retry-After dates. If nil, time.Now.
	Now func() time.Time
}

// HTTPDeliverer delivers messages by POSTing what Prepare makes of each, through an SSRF-safe
// client (package safehttp: only public addresses are dialled, checked when connecting, so a
// name that resolves to a private address is refused too; no redirect is followed). The
// response decides:
//
//   - 2xx: delivered. (OpenID Connect Back-Channel Logout 1.0 §2.8 answers 200, RFC 8935 §2
//     answers 202.)
//   - 408, 429 and 5xx, a timeout or a connection that fails: a failure that may pass,
//     retried, no sooner than a Retry-After field asks (RFC 9110 §10.2.3: seconds or a date).
//   - any other status (4xx, a redirect), an address that may not be dialled, a URL that is
//     not https: permanent; the message is given up (RFC 8935 §2.4: a 400 says the SET was
//     refused). The refusal is a ResponseError, which a deliverer may read to retry one that
//     can pass (RFC 8935 §2.3 "invalid_key").
//
// Error texts name the endpoint without its query, and quote at most a short, printable part
// of a refusing response's body.
type HTTPDeliverer struct {
	cfg    HTTPConfig
	policy safehttp.Policy
	client *http.Client
}

// NewHTTPDeliverer returns an HTTPDeliverer.
func NewHTTPDeliverer(cfg HTTPConfig) *HTTPDeliverer {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	policy := safehttp.Policy{AllowLoopback: cfg.AllowLoopback}
	c := safehttp.NewClient(safehttp.Options{Policy: policy, Timeout: cfg.Timeout})
	// A redirect is an answer, not a delivery: it is not followed, and the message is refused.
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if tr, ok := c.Transport.(*http.Transport); ok {
		tr.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &HTTPDeliverer{cfg: cfg, policy: policy, client: c}
}

// Deliver implements Deliverer: Prepare, then Post.
func (h *HTTPDeliverer) Deliver(ctx context.Context, m rescind.OutboxMessage) error {
	if h.cfg.Prepare == nil {
		return Permanent(errors.New("outbox: the HTTP deliverer of " + m.Kind + " has no Prepare"))
	}
	r, err := h.cfg.Prepare(ctx, m)
	if err != nil {
		return err
	}
	return h.Post(ctx, r)
}

// maxResponse is how much of a response body is read (and then discarded, or quoted in part).
const maxResponse = 64 << 10

// Post sends r and returns nil if the receiver accepted it, or an error that says, as Deliverer
// describes, whether to retry.
func (h *HTTPDeliverer) Post(ctx context.Context, r HTTPRequest) error {
	u, err := h.checkURL(r.URL)
	if err != nil {
		return Permanent(fmt.Errorf("POST %s: %w", redactURL(r.URL), err))
	}
	target := redactURL(r.URL)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(r.Body))
	if err != nil {
		return Permanent(fmt.Errorf("POST %s: %w", target, err))
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if r.ContentType != "" {
		req.Header.Set("Content-Type", r.ContentType)
	}
	resp, err := h.client.Do(req)
	if err != nil {
		// *url.Error quotes the whole URL, query included: keep only its cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		err = fmt.Errorf("POST %s: %w", target, err)
		if errors.Is(err, safehttp.ErrForbiddenAddress) {
			return Permanent(err)
		}
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	status := fmt.Errorf("POST %s: %s", target, resp.Status)
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		if d := parseRetryAfter(resp.Header.Get("Retry-After"), h.cfg.Now()); d > 0 {
			return RetryAfter(d, status)
		}
		return status
	case code >= 300 && code < 400:
		return Permanent(fmt.Errorf("%w (a redirect, not followed)", status))
	default:
		text := status.Error()
		if q := quote(body); q != "" {
			text += ": " + q
		}
		return Permanent(&ResponseError{StatusCode: code, Body: body, text: text})
	}
}

// ResponseError is a receiver's refusal (HTTPDeliverer.Post wraps it with Permanent): the
// status and body of a response that is neither 2xx, nor a failure that may pass, nor a
// redirect. A deliverer reads it to tell one refusal from another, such as RFC 8935 §2.3's err
// code "invalid_key" (the receiver could not verify the SET with the keys it holds), which may
// pass. Its text names the endpoint and status and quotes at most a short, printable part of
// the body; the body itself is never in it.
type ResponseError struct {
	// StatusCode is the response's status.
	StatusCode int
	// Body is the start of the response's body (at most 64 KiB).
	Body []byte
	text string
}

func (e *ResponseError) Error() string { return e.text }

// checkURL checks r's URL before any connection: absolute, no user info or fragment, https
// (or http to loopback when allowed), and an IP literal host must be one the policy allows.
func (h *HTTPDeliverer) checkURL(raw string) (*url.URL, error) {
	allowHTTP := false
	if h.cfg.AllowLoopback {
		if u, err := url.Parse(raw); err == nil && safehttp.IsLoopbackHost(u.Hostname()) {
			allowHTTP = true
		}
	}
	u, err := h.policy.CheckURL(raw, allowHTTP)
	if err != nil {
		if u, perr := url.Parse(raw); perr == nil && u.Scheme == "http" && !allowHTTP {
			return nil, errors.New("the URL must be https (plain http only to loopback, in development)")
		}
		return nil, err
	}
	return u, nil
}

// redactURL is raw without its query, fragment and user info, for error texts (a query can
// carry a secret).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "(not an absolute URL)"
	}
	s := u.Scheme + "://" + u.Host + u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		s += "?…"
	}
	return s
}

// maxQuote bounds the part of a response body quoted in an error.
const maxQuote = 200

// quote returns the start of body for an error text: printable ASCII only (anything else
// becomes a space, runs of spaces one), at most maxQuote bytes.
func quote(body []byte) string {
	var b strings.Builder
	space := false
	for _, c := range body {
		if b.Len() >= maxQuote {
			b.WriteString("…")
			break
		}
		if c < 0x21 || c > 0x7e {
			if !space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = true
			continue
		}
		space = false
		b.WriteByte(c)
	}
	return strings.TrimSpace(b.String())
}

// maxRetryAfter bounds the wait a Retry-After field can ask for.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter returns the wait a Retry-After field value asks for (RFC 9110 §10.2.3:
// delay-seconds or an HTTP-date), at most maxRetryAfter; 0 if there is none or it is malformed
// or past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		if err != nil || n > uint64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return 0
}
