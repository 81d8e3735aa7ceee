package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rescind/rescind/store/sqlite"
)

// publicRoutes is the public surface: each path, the methods it serves, and whether it is a
// page (HTML) or a protocol endpoint (JSON).
var publicRoutes = []struct {
	path    string
	methods string
	page    bool
}{
	{"/oauth2/token", "OPTIONS, POST", false}, // OPTIONS: CORS preflights (cors.go)
	{"/oauth2/revoke", "OPTIONS, POST", false},
	{"/oauth2/introspect", "POST", false}, // never CORS
	{"/.well-known/oauth-authorization-server", "GET, OPTIONS", false},
	{"/.well-known/jwks.json", "GET, OPTIONS", false},
	{"/oauth2/statuslists/1", "GET, OPTIONS", false},
	{"/oauth2/revocations/events", "GET", false},
	{"/healthz", "GET", false},
	{"/readyz", "GET", false},
	{"/oauth2/authorize", "GET, POST", true},
	{"/login", "GET, POST", true},
	{"/logout", "POST", true},
	{"/account/apps", "GET", true},
	{"/account/apps/revoke", "POST", true},
	{"/account/sessions", "GET", true},
	{"/account/sessions/end", "POST", true},
	{"/account/sessions/end-others", "POST", true},
	{"/account/sessions/end-all", "POST", true},
}

// TestRouteTable: every route of the table is served (neither 404 nor 405) with the headers of
// its kind; any other method on its path is a 405 naming the methods served, in the format of
// what the path serves; an unknown path is a JSON 404.
func TestRouteTable(t *testing.T) {
	e := newEnv(t)
	do := func(method, path string) resp {
		body := ""
		if method == http.MethodPost {
			body = "x=1"
		}
		return e.do(req{method: method, path: path, body: body, contentType: "application/x-www-form-urlencoded"})
	}
	wantKind := func(t *testing.T, r resp, page bool) {
		t.Helper()
		ct := r.header.Get("Content-Type")
		if r.status == http.StatusNoContent { // a preflight's answer: no body
			ct = "application/none"
		}
		if r.status == http.StatusSeeOther { // a page's redirect has no body to speak of
			ct = "text/html; charset=utf-8"
		}
		if page && (ct != "text/html; charset=utf-8" || r.header.Get("X-Frame-Options") != "DENY" ||
			!strings.Contains(r.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") || r.header.Get("Cache-Control") != "no-store") {
			t.Fatalf("page answered %d with Content-Type %q and headers %v", r.status, ct, r.header)
		}
		if !page && !strings.HasPrefix(ct, "application/") {
			t.Fatalf("endpoint answered %d with Content-Type %q", r.status, ct)
		}
		if r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Fatal("no X-Content-Type-Options")
		}
	}
	for _, rt := range publicRoutes {
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
			t.Run(m+" "+rt.path, func(t *testing.T) {
				r := do(m, rt.path)
				if m == "GET" && rt.path == "/oauth2/revocations/events" && r.status == http.StatusUnauthorized {
					wantKind(t, r, false) // served: it asks for client authentication
					return
				}
				served := strings.Contains(", "+rt.methods+",", " "+m+",")
				switch {
				case served && (r.status == http.StatusNotFound && rt.path != "/oauth2/statuslists/1" || r.status == http.StatusMethodNotAllowed):
					t.Fatalf("%d %s; want the route served", r.status, r.body)
				case !served && r.status != http.StatusMethodNotAllowed:
					t.Fatalf("%d %s; want 405", r.status, r.body)
				case !served && r.header.Get("Allow") != rt.methods:
					t.Fatalf("Allow %q, want %q", r.header.Get("Allow"), rt.methods)
				case !served && !rt.page:
					wantError(t, r, http.StatusMethodNotAllowed, "invalid_request")
				}
				wantKind(t, r, rt.page)
			})
		}
	}
	// Without --registration, the registration endpoint is not served.
	for _, path := range []string{"/", "/nope", "/login/x", "/oauth2", "/oauth2/token/x", "/account", "/account/apps/x", "/oauth2/statuslists/",
		"/oauth2/register", "/oauth2/register/x"} {
		for _, m := range []string{"GET", "POST"} {
			wantError(t, do(m, path), http.StatusNotFound, "not_found")
		}
	}
}

// TestRouteTableWithoutPages: a server without pages serves no authorization endpoint and no
// page: their paths are unknown.
func TestRouteTableWithoutPages(t *testing.T) {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, st, nil).Handler()
	for _, rt := range publicRoutes {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, rt.path, nil))
		if rt.page && w.Code != http.StatusNotFound || !rt.page && w.Code == http.StatusNotFound && rt.path != "/oauth2/statuslists/1" {
			t.Errorf("GET %s: %d", rt.path, w.Code)
		}
	}
}
