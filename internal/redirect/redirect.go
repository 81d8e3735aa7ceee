// Package redirect holds the rules for redirect URIs: which may be registered (RFC 8252 §7,
// RFC 9700 §4.1) and which requested URI matches a registered one (RFC 6749 §3.1.2.3, exact
// matching per RFC 9700 §4.1.3, with the loopback port exception of RFC 8252 §7.3).
//
// Every path that registers or changes a client's redirect URIs (the admin API's client
// creation and update) calls Validate; the authorization endpoint (package oauth) calls Match,
// and Validate again on the URI it is about to redirect to, so a client registered before a rule
// existed cannot be used to break it.
package redirect

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// MaxLength bounds a redirect URI.
const MaxLength = 2000

// dangerous are schemes a browser would run, read locally or render, rather than navigate to a
// client: never a redirect target, even in reverse-domain form.
var dangerous = map[string]bool{
	"javascript": true, "data": true, "file": true, "vbscript": true, "blob": true, "about": true,
	"filesystem": true, "view-source": true, "ftp": true, "ws": true, "wss": true, "mailto": true, "tel": true,
}

// Error is a refused redirect URI: the rule it breaks.
type Error struct {
	// URI is the refused URI (as given).
	URI string
	// Rule says which rule it breaks, in a sentence a developer can act on.
	Rule string
}

// Error implements error.
func (e *Error) Error() string { return fmt.Sprintf("redirect URI %q: %s", e.URI, e.Rule) }

// Validate checks that uri may be registered as a redirect URI. The rules:
//   - an absolute URI of printable ASCII, at most MaxLength bytes, without a fragment
//     (RFC 6749 §3.1.2), user info or wildcard (RFC 9700 §4.1.3: exact matching);
//   - https with a host; or http on a loopback host only (127.0.0.1, [::1] or localhost,
//     RFC 8252 §7.3, §8.3), unless allowInsecure lets plain http to any host through (for
//     development);
//   - or a private-use scheme in reverse-domain form, containing a dot (com.example.app:/cb,
//     RFC 8252 §7.1);
//   - never a scheme a browser runs or reads locally (javascript:, data:, file:, vbscript:...).
//
// It returns an *Error naming the rule broken.
func Validate(uri string, allowInsecure bool) error {
	bad := func(rule string) error { return &Error{URI: uri, Rule: rule} }
	if uri == "" {
		return bad("must not be empty")
	}
	if len(uri) > MaxLength {
		return bad(fmt.Sprintf("must be at most %d bytes", MaxLength))
	}
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= 0x20 || c >= 0x7f {
			return bad("must be printable ASCII without spaces (percent-encode other characters)")
		}
	}
	if strings.Contains(uri, "#") {
		return bad("must not contain a fragment (RFC 6749 §3.1.2)")
	}
	if strings.Contains(uri, "*") {
		return bad("must not contain a wildcard: register every redirect URI exactly (RFC 9700 §4.1.3)")
	}
	if strings.Contains(uri, "\\") {
		return bad("must not contain a backslash: browsers read it as a slash, so the URI would not mean what it says")
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" {
		return bad("must be an absolute URI with a scheme (RFC 6749 §3.1.2)")
	}
	scheme := strings.ToLower(u.Scheme)
	if dangerous[scheme] {
		return bad(fmt.Sprintf("the %s: scheme is not allowed: a browser would not take it to the client", scheme))
	}
	if u.User != nil {
		return bad("must not contain user information (user@host)")
	}
	switch scheme {
	case "https":
		if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
			return bad("an https redirect URI needs a host (https://host/path)")
		}
		return nil
	case "http":
		if u.Host == "" || u.Hostname() == "" || u.Opaque != "" {
			return bad("an http redirect URI needs a host")
		}
		if IsLoopback(u) || allowInsecure {
			return nil
		}
		return bad("plain http is allowed only on loopback (127.0.0.1, [::1] or localhost, RFC 8252 §7.3); " +
			"use https, or allow_insecure_redirect (--allow-insecure-redirect) for development")
	}
	if !strings.Contains(scheme, ".") {
		return bad("a private-use scheme must be in reverse-domain form, such as com.example.app:/callback (RFC 8252 §7.1)")
	}
	return nil
}

// ValidateAll checks every URI of a registration with Validate and refuses duplicates.
func ValidateAll(uris []string, allowInsecure bool) error {
	seen := make(map[string]bool, len(uris))
	for _, u := range uris {
		if err := Validate(u, allowInsecure); err != nil {
			return err
		}
		if seen[u] {
			return &Error{URI: u, Rule: "is registered twice"}
		}
		seen[u] = true
	}
	return nil
}

// IsLoopback reports whether u is a plain-http URI on a loopback host: 127.0.0.1, [::1] or
// localhost.
func IsLoopback(u *url.URL) bool {
	if !strings.EqualFold(u.Scheme, "http") {
		return false
	}
	switch h := strings.ToLower(u.Hostname()); h {
	case "localhost", "127.0.0.1":
		return true
	default:
		ip := net.ParseIP(h) // "::1" from "[::1]"; refuses 127.000.000.001 and the like
		return ip != nil && ip.To4() == nil && ip.Equal(net.IPv6loopback)
	}
}

// Match returns the registered URI that requested matches, and whether one does. A match is
// exact (RFC 9700 §4.1.3), except that for a loopback http URI the port may differ: a native
// app listens on whatever port it got (RFC 8252 §7.3), so registered http://127.0.0.1/cb
// matches http://127.0.0.1:51234/cb. Nothing but the port may differ.
func Match(registered []string, requested string) (string, bool) {
	for _, r := range registered {
		if r == requested {
			return r, true
		}
	}
	q, err := url.Parse(requested)
	if err != nil || !IsLoopback(q) || q.User != nil || q.Fragment != "" || strings.Contains(requested, "#") {
		return "", false
	}
	for _, r := range registered {
		u, err := url.Parse(r)
		if err != nil || !IsLoopback(u) {
			continue
		}
		if u.Scheme == q.Scheme && u.Hostname() == q.Hostname() && u.EscapedPath() == q.EscapedPath() &&
			u.RawQuery == q.RawQuery && u.ForceQuery == q.ForceQuery && u.User == nil {
			return r, true
		}
	}
	return "", false
}
