// Package clientip finds the address of the client behind trusted reverse proxies, for rate
// limits and logs.
//
// Only a request whose immediate peer is in a trusted range may name another address, through
// X-Forwarded-For or, when that is absent, Forwarded (RFC 7239 §5.2, "for="). The address taken
// is the rightmost hop that is not itself a trusted proxy: hops to its left were written by
// whoever sent the request to the first trusted proxy, so anyone can forge them. A request from
// any other peer is its peer, whatever headers it carries.
package clientip

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses. The zero value trusts no proxy. It is safe for concurrent
// use.
type Resolver struct {
	trusted []netip.Prefix
}

// Parse returns a Resolver trusting the comma-separated CIDR ranges in list (a bare address is
// a range of one). An empty list trusts no proxy.
func Parse(list string) (*Resolver, error) {
	r := &Resolver{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("clientip: %q is not a CIDR range such as 10.0.0.0/8 or an address", f)
			}
			a = a.Unmap()
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), max(0, p.Bits()-96))
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

// Trusts reports whether a is in a trusted range.
func (r *Resolver) Trusts(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address of the client making req (no port): its peer's, unless the
// peer is a trusted proxy and the forwarding headers name another.
func (r *Resolver) ClientAddr(req *http.Request) string {
	peer, ok := hostAddr(req.RemoteAddr)
	if !ok {
		return hostOf(req.RemoteAddr)
	}
	if !r.Trusts(peer) {
		return peer.String()
	}
	var hops []string
	if xff := req.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		for _, v := range xff {
			for _, h := range strings.Split(v, ",") {
				hops = append(hops, strings.TrimSpace(h))
			}
		}
	} else if fwd := req.Header.Values("Forwarded"); len(fwd) > 0 {
		hops = ForwardedFor(strings.Join(fwd, ","))
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			break // "unknown", an obfuscated name, junk: keep the last address we could trust
		}
		client = a
		if !r.Trusts(a) {
			break
		}
	}
	return client.String()
}

// Middleware returns h with each request's RemoteAddr replaced by ClientAddr (port 0 when the
// address came from a header), so that rate limits and logs downstream see the client.
func (r *Resolver) Middleware(h http.Handler) http.Handler {
	if r == nil || len(r.trusted) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		addr := r.ClientAddr(req)
		if peer := hostOf(req.RemoteAddr); addr != peer {
			r2 := new(http.Request)
			*r2 = *req
			r2.RemoteAddr = net.JoinHostPort(addr, "0")
			req = r2
		}
		h.ServeHTTP(w, req)
	})
}

// Network returns the network a client address belongs to, for limits keyed by who is asking:
// an IPv4 address itself, the /64 of an IPv6 address (zone dropped), which one party commonly
// holds whole: its 2^64 addresses are one attacker, not 2^64 of them. remote may carry a port
// ("[2001:db8::1]:443", a request's RemoteAddr); text that is no address is returned as it is.
func Network(remote string) string {
	host := hostOf(remote)
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.WithZone("").Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// ForwardedFor returns the for= values of a Forwarded header (RFC 7239 §4), in order, unquoted;
// an element without one yields "". Malformed input yields what could be read.
func ForwardedFor(header string) []string {
	var out []string
	for _, elem := range splitQuoted(header, ',') {
		v := ""
		for _, pair := range splitQuoted(elem, ';') {
			k, val, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
				v = unquote(strings.TrimSpace(val))
			}
		}
		out = append(out, v)
	}
	return out
}

// splitQuoted splits s at sep outside double-quoted strings (with backslash escapes).
func splitQuoted(s string, sep byte) []string {
	var out []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func unquote(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
			}
			b.WriteByte(v[i])
		}
		return b.String()
	}
	return v
}

// parseHop reads one hop: an address, with or without a port, IPv6 in brackets or not.
func parseHop(h string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		return ap.Addr().Unmap(), true
	}
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		if a, err := netip.ParseAddr(h[1 : len(h)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

func hostAddr(remote string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(hostOf(remote))
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func hostOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}
