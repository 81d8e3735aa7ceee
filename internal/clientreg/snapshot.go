package clientreg

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// SnapshotTTL is how long a Snapshot is reused when nothing says the clients changed: the
// longest a client created on another instance waits before its origin is allowed here if that
// instance's notice (the store's EventClientChanged) is lost.
const SnapshotTTL = 30 * time.Second

// Snapshot is what the server derives from every registered client at once.
type Snapshot struct {
	// origins are the browser origins (scheme://host[:port]) of the public clients' http and
	// https redirect URIs; loopbackHosts, the loopback hosts of redirect URIs registered without
	// a port, whose every port is theirs (RFC 8252 §7.3).
	origins       map[string]bool
	loopbackHosts map[string]bool
	// Scopes are the scopes of the clients an operator registered, sorted: what the server
	// supports unless configured otherwise. Clients that registered themselves do not add to it.
	Scopes []string
}

// PublicOrigin reports whether origin, as a browser sends it in the Origin header, is the origin
// of a redirect URI of a public client: one of the browser apps the server knows (CORS).
func (s *Snapshot) PublicOrigin(origin string) bool {
	if s.origins[origin] {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "http" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return false
	}
	return s.loopbackHosts[u.Hostname()]
}

// Snapshot returns the snapshot of the registered clients: the one held while no client changed
// (Invalidate) and it is younger than SnapshotTTL, else a new one read from the store.
func (r *Registry) Snapshot(ctx context.Context) (*Snapshot, error) {
	now := r.cfg.Now()
	r.snapMu.Lock()
	defer r.snapMu.Unlock()
	r.mu.Lock()
	gen := r.snapGen
	r.mu.Unlock()
	if r.snap != nil && r.snapBuilt == gen && now.Sub(r.snapAt) < SnapshotTTL && !now.Before(r.snapAt) {
		return r.snap, nil
	}
	clients, err := r.cfg.Store.ListClients(ctx)
	if err != nil {
		return nil, fmt.Errorf("clientreg: listing clients: %w", err)
	}
	s := &Snapshot{origins: map[string]bool{}, loopbackHosts: map[string]bool{}}
	for _, c := range clients {
		if !c.SelfRegistered() {
			for _, sc := range c.Scopes {
				if !slices.Contains(s.Scopes, sc) {
					s.Scopes = append(s.Scopes, sc)
				}
			}
		}
		if !c.Public {
			continue
		}
		for _, ru := range c.RedirectURIs {
			origin, loopbackHost := originOf(ru)
			switch {
			case loopbackHost != "":
				s.loopbackHosts[loopbackHost] = true
			case origin != "":
				s.origins[origin] = true
			}
		}
	}
	slices.Sort(s.Scopes)
	r.snap, r.snapAt, r.snapBuilt = s, now, gen
	return s, nil
}

// originOf returns the origin a browser gives a page at the http(s) URI uri (RFC 6454: the
// scheme and host lowercased, the port only if not the scheme's default), or, for a loopback
// http URI without a port, its host (any port is its own). Other URIs have neither.
func originOf(uri string) (origin, loopbackHost string) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" || u.User != nil {
		return "", ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if scheme != "http" && scheme != "https" {
		return "", ""
	}
	if scheme == "http" && port == "" && (host == "localhost" || host == "127.0.0.1" || host == "::1") {
		return "", host
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host, ""
}
