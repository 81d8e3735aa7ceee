package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
	"github.com/rescind/rescind/web"
)

// newServer returns a Server on st, which it closes at the end of tb, with the pages pages
// makes from the configuration package web would get (none if pages is nil).
func newServer(tb testing.TB, st rescind.Store, pages func(web.Config) oauth.Pages) *oauth.Server {
	tb.Helper()
	clients, err := clientreg.New(clientreg.Config{Store: st})
	if err != nil {
		tb.Fatal(err)
	}
	state := revocation.NewState()
	com := revocation.NewCommitter(st, state, nil)
	tb.Cleanup(func() { com.Close(); st.Close() })
	cfg := oauth.Config{Issuer: issuer, Clients: clients, Committer: com, Revoked: state, Store: st,
		Metrics: metrics.New(prometheus.NewRegistry(), func() float64 { return 0 })}
	if pages != nil {
		cfg.Pages = pages(web.Config{Issuer: issuer, Store: st, Clients: clients, Committer: com, Box: testBox})
	}
	k, _ := token.NewSealKey()
	if cfg.Keys, err = token.NewKeyring(k); err != nil {
		tb.Fatal(err)
	}
	s, err := oauth.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.CloseStreams)
	return s
}

// webPages makes the pages of package web.
func webPages(tb testing.TB) func(web.Config) oauth.Pages {
	return func(cfg web.Config) oauth.Pages {
		p, err := web.New(cfg)
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
}

// FuzzAuthorizeRequest: any authorization request query gets an error page (4xx) or a redirect
// that goes to the login page or to a registered redirect URI: never anywhere else, never a 5xx.
func FuzzAuthorizeRequest(f *testing.F) {
	// One client, so that the one redirect URI the oracle allows is the only one registered.
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "db"))
	if err != nil {
		f.Fatal(err)
	}
	if err := st.CreateClient(context.Background(), rescind.Client{ID: "app", Name: "App", GrantTypes: []string{rescind.GrantAuthorizationCode},
		Scopes: []string{"read"}, RedirectURIs: []string{"https://app.example/cb?x=1"}, CreatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	h := newServer(f, st, webPages(f)).Handler()
	for _, q := range []string{"client_id=app&response_type=code&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
		"client_id=app&redirect_uri=https://evil.example", "client_id=app&response_type=token", "client_id=%00", "redirect_uri=https://app.example/cb?x=1"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		r := httptest.NewRequest(http.MethodGet, "/oauth2/authorize", nil)
		r.URL.RawQuery = q
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch {
		case w.Code == http.StatusSeeOther:
			loc := w.Header().Get("Location")
			if !strings.HasPrefix(loc, "/login?next=") && !strings.HasPrefix(loc, "https://app.example/cb?") {
				t.Fatalf("query %q redirects to %q", q, loc)
			}
		case w.Code >= 400 && w.Code < 500:
		default:
			t.Fatalf("query %q: status %d", q, w.Code)
		}
	})
}
