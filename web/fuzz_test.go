package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
)

// FuzzSafeNext: whatever "next" the login form carries, the browser that follows the redirect
// after login stays on this server's origin. The oracle is a model of how a browser resolves
// the Location header (browserOrigin), not a repeat of safeNext's checks.
func FuzzSafeNext(f *testing.F) {
	for _, tc := range nextCases {
		f.Add(tc)
	}
	f.Fuzz(func(t *testing.T, next string) {
		loc := loginRedirect(next)
		if got := browserOrigin(loc); got != asOrigin {
			t.Fatalf("next %q: Location %q takes the browser to %q", next, loc, got)
		}
	})
}

// FuzzAuthorizeRequest: any authorization request query gets an error page (4xx) or a redirect
// that goes to the login page or to a registered redirect URI: never anywhere else, never a 5xx.
func FuzzAuthorizeRequest(f *testing.F) {
	st, err := sqlite.Open(context.Background(), filepath.Join(f.TempDir(), "db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	st.CreateClient(context.Background(), rescind.Client{ID: "app", Name: "App", GrantTypes: []string{rescind.GrantAuthorizationCode},
		Scopes: []string{"read"}, RedirectURIs: []string{"https://app.example/cb?x=1"}, CreatedAt: time.Now()})
	reg, _ := clientreg.New(clientreg.Config{Store: st})
	box, _ := secret.NewBox([]byte("0123456789abcdef0123456789abcdef"))
	com := revocation.NewCommitter(st, revocation.NewState(), nil)
	defer com.Close()
	s, err := New(Config{Issuer: "https://as.example", Store: st, Clients: reg, Committer: com, Box: box})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
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
