// Package safehttp makes outbound HTTP requests to addresses that someone else chose (a push
// endpoint, a back-channel logout URI, a client metadata document) without letting them reach
// the server's own network: server-side request forgery defences (OWASP SSRF prevention).
//
// The check happens when the connection is made, on the address actually dialled, so a host
// name that resolves (or re-resolves, DNS rebinding) to a private address is refused, and so is
// every redirect's target. Loopback, private, link-local, shared, documentation, benchmarking,
// multicast and reserved ranges are refused, including IPv4 addresses embedded in IPv6
// (IPv4-mapped, NAT64, 6to4); Teredo is refused outright. Only loopback can be let through, for
// development and tests. Package internal/clientdoc fetches Client ID Metadata Documents
// through it.
package safehttp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is returned when a request would connect to an address that is not public.
var ErrForbiddenAddress = errors.New("safehttp: the address is not a public internet address")

// blocked are the ranges never dialled (IANA special-purpose registries, RFC 6890 and updates).
var blocked = func() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",       // "this network"
		"10.0.0.0/8",      // private (RFC 1918)
		"100.64.0.0/10",   // shared address space, carrier-grade NAT (RFC 6598)
		"127.0.0.0/8",     // loopback
		"169.254.0.0/16",  // link-local, cloud metadata services
		"172.16.0.0/12",   // private
		"192.0.0.0/24",    // IETF protocol assignments
		"192.0.2.0/24",    // documentation (TEST-NET-1)
		"192.88.99.0/24",  // 6to4 relay anycast
		"192.168.0.0/16",  // private
		"198.18.0.0/15",   // benchmarking
		"198.51.100.0/24", // documentation (TEST-NET-2)
		"203.0.113.0/24",  // documentation (TEST-NET-3)
		"224.0.0.0/4",     // multicast
		"240.0.0.0/4",     // reserved, and the broadcast address
		"::/128",          // unspecified
		"::1/128",         // loopback
		"64:ff9b:1::/48",  // local-use IPv4/IPv6 translation
		"100::/64",        // discard-only
		"2001::/23",       // IETF protocol assignments (Teredo's 2001::/32 checked below)
		"2001:db8::/32",   // documentation
		"fc00::/7",        // unique local
		"fe80::/10",       // link-local
		"fec0::/10",       // site-local (deprecated)
		"ff00::/8",        // multicast
	} {
		ps = append(ps, netip.MustParsePrefix(s))
	}
	return ps
}()

var (
	loopback4 = netip.MustParsePrefix("127.0.0.0/8")
	loopback6 = netip.MustParseAddr("::1")
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// Policy says which addresses may be dialled.
type Policy struct {
	// AllowLoopback lets loopback addresses (127.0.0.0/8, ::1) through: for development and
	// tests only. Every other non-public address stays refused.
	AllowLoopback bool
}

// Check returns nil if ip may be dialled under the policy, else an error wrapping
// ErrForbiddenAddress.
func (p Policy) Check(ip netip.Addr) error {
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	ip = ip.WithZone("")
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	if p.AllowLoopback && (loopback4.Contains(ip) || ip == loopback6) {
		return nil
	}
	// An IPv4 address carried inside IPv6 is judged as itself.
	switch {
	case nat64.Contains(ip):
		b := ip.As16()
		return p.Check(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		b := ip.As16()
		return p.Check(netip.AddrFrom4([4]byte(b[2:6])))
	}
	for _, pfx := range blocked {
		if pfx.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s", ErrForbiddenAddress, ip, pfx)
		}
	}
	return nil
}

// CheckURL checks what can be checked of a URL before any request: an absolute http or https URL
// without user info (https required unless allowHTTP), and, when its host is an IP literal, the
// address. Host names are checked when they are dialled.
func (p Policy) CheckURL(raw string, allowHTTP bool) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("safehttp: %w", err)
	}
	switch {
	case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
		if allowHTTP {
			return nil, errors.New("safehttp: the URL must be http or https")
		}
		return nil, errors.New("safehttp: the URL must be https")
	case u.Host == "" || u.Opaque != "":
		return nil, errors.New("safehttp: the URL must be absolute, with a host")
	case u.User != nil:
		return nil, errors.New("safehttp: the URL must not carry user info")
	case u.Fragment != "":
		return nil, errors.New("safehttp: the URL must not have a fragment")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
		if err := p.Check(ip); err != nil {
			return nil, err
		}
	} else if NumericHost(u.Hostname()) {
		return nil, fmt.Errorf("safehttp: the host %q is an address in a non-standard form (octal, hex or fewer than four parts): write it as a dotted quad or a bracketed IPv6 address", u.Hostname())
	}
	return u, nil
}

// NumericHost reports whether host, not an IP address in standard form, is made only of
// numbers (decimal, octal with a leading 0, hex with 0x) separated by dots: a form that C's
// inet_aton, and so some resolvers, read as an IPv4 address (127.1, 0x7f.0.0.1, 2130706433,
// 0177.0.0.1). No host name has a numeric top-level label, so none is refused.
func NumericHost(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		l := strings.ToLower(label)
		if strings.HasPrefix(l, "0x") {
			l = l[2:]
			if strings.Trim(l, "0123456789abcdef") != "" {
				return false
			}
			continue
		}
		if l == "" || strings.Trim(l, "0123456789") != "" {
			return false
		}
	}
	return true
}

// IsLoopbackHost reports whether a URL's host names loopback: "localhost" or a name under
// .localhost (RFC 6761 §6.3), with or without a final dot, in any case, or a loopback address
// literal. It is the one rule by which development flags let loopback through, so that what is
// accepted when configured is what is dialled when delivered.
func IsLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.Unmap().IsLoopback()
}

// control is a net.Dialer Control function: it runs after resolution, on the address about to
// be connected to.
func (p Policy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
	}
	return p.Check(ap.Addr())
}

// Options configure NewClient.
type Options struct {
	// Policy says which addresses may be dialled.
	Policy Policy
	// Timeout bounds each request, redirects included. If zero, 10 seconds.
	Timeout time.Duration
	// DialTimeout bounds connecting (and the TLS handshake) alone, so that an address that does
	// not answer gives up its caller early. If zero, Timeout.
	DialTimeout time.Duration
	// MaxRedirects bounds the redirects followed (each target is checked like the first). If
	// zero, none are followed; negative: zero as well.
	MaxRedirects int
	// AllowHTTP lets redirects go to plain http URLs; otherwise only https.
	AllowHTTP bool
	// RootCAs are the certificate authorities trusted for https. If nil, the system's.
	RootCAs *x509.CertPool
}

// NewClient returns an *http.Client that dials only addresses the policy allows, uses no proxy
// from the environment, and follows at most opt.MaxRedirects redirects.
func NewClient(opt Options) *http.Client {
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	dial := opt.DialTimeout
	if dial <= 0 || dial > timeout {
		dial = timeout
	}
	d := &net.Dialer{Timeout: dial, Control: opt.Policy.control}
	tr := &http.Transport{
		Proxy:                  nil, // never a proxy from the environment: it would dial for us
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    dial,
		ResponseHeaderTimeout:  timeout,
		MaxIdleConns:           100,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	if opt.RootCAs != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: opt.RootCAs, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > opt.MaxRedirects {
				return fmt.Errorf("safehttp: more than %d redirects", opt.MaxRedirects)
			}
			if _, err := opt.Policy.CheckURL(req.URL.String(), opt.AllowHTTP); err != nil {
				return err
			}
			return nil
		},
	}
}

// ErrTooLarge is returned by ReadLimited for a body over its limit.
var ErrTooLarge = errors.New("safehttp: response body too large")

// ReadLimited reads at most limit bytes of r, failing with ErrTooLarge if there is more.
func ReadLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// Get fetches u with ctx, refusing bodies over limit bytes.
func Get(ctx context.Context, c *http.Client, u, accept string, limit int64) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("safehttp: %w", err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := ReadLimited(resp.Body, limit)
	return resp, b, err
}
