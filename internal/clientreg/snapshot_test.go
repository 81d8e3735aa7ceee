package clientreg

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// listStore lists its clients and counts the listings.
type listStore struct {
	rescind.Store
	clients []rescind.Client
	lists   atomic.Int64
}

func (l *listStore) ListClients(context.Context) ([]rescind.Client, error) {
	l.lists.Add(1)
	return l.clients, nil
}

// TestSnapshotOrigins: the origins of public clients' redirect URIs, as browsers send them,
// are allowed; confidential clients' are not, and nothing but the exact origin (or any port of a
// loopback redirect URI registered without one) matches.
func TestSnapshotOrigins(t *testing.T) {
	st := &listStore{clients: []rescind.Client{
		{ID: "spa", Public: true, Scopes: []string{"read"}, RedirectURIs: []string{"https://SPA.example/cb", "https://spa.example:8443/other",
			"com.example.app:/cb", "https://default.example:443/cb", "http://plain.example:80/cb"}},
		{ID: "dev", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb", "http://localhost:5173/cb", "http://[::1]:9000/cb"}},
		{ID: "web", Scopes: []string{"write", "read"}, RedirectURIs: []string{"https://confidential.example/cb"}},
		{ID: "dyn", Public: true, Registration: rescind.RegistrationDynamic, Scopes: []string{"admin"},
			RedirectURIs: []string{"https://agent.example/cb"}},
	}}
	now := time.Unix(1_900_000_000, 0)
	r, err := New(Config{Store: st, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{
		"https://spa.example":          true,
		"https://spa.example:8443":     true,
		"https://default.example":      true,
		"http://plain.example":         true,
		"https://agent.example":        true, // a dynamically registered public client is a browser app too
		"http://127.0.0.1:51234":       true, // registered without a port: any port (RFC 8252 §7.3)
		"http://127.0.0.1":             true,
		"http://localhost:5173":        true,
		"http://[::1]:9000":            true,
		"http://localhost:5174":        false, // registered with its port: that port only
		"https://127.0.0.1:51234":      false,
		"https://confidential.example": false, // confidential clients do not run in browsers
		"https://spa.example:444":      false,
		"http://spa.example":           false,
		"https://evil.example":         false,
		"https://spa.example.evil":     false,
		"null":                         false,
		"":                             false,
		"http://127.0.0.1:1/path":      false,
	} {
		if got := s.PublicOrigin(origin); got != want {
			t.Errorf("PublicOrigin(%q) = %v, want %v", origin, got, want)
		}
	}
	if !slices.Equal(s.Scopes, []string{"read", "write"}) {
		t.Errorf("Scopes = %v, want read write (an operator's clients only)", s.Scopes)
	}

	// Reused until a client changes or SnapshotTTL passes.
	r.Snapshot(context.Background())
	if n := st.lists.Load(); n != 1 {
		t.Fatalf("%d listings, want 1 (reused)", n)
	}
	st.clients = append(st.clients, rescind.Client{ID: "new", Public: true, RedirectURIs: []string{"https://new.example/cb"}})
	r.Invalidate("new")
	if s, _ := r.Snapshot(context.Background()); !s.PublicOrigin("https://new.example") || st.lists.Load() != 2 {
		t.Fatal("a client's change did not renew the snapshot")
	}
	now = now.Add(SnapshotTTL)
	r.Snapshot(context.Background())
	if n := st.lists.Load(); n != 3 {
		t.Fatalf("%d listings after SnapshotTTL, want 3", n)
	}
}
