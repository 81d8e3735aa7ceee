package resource

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// TestMetadataURL: RFC 9728 §3.1: the well-known path goes between the host and the path of the
// resource identifier, a lone terminating slash dropped, the query kept after.
func TestMetadataURL(t *testing.T) {
	for resource, want := range map[string]string{
		"https://api.example":              "https://api.example/.well-known/oauth-protected-resource",
		"https://api.example/":             "https://api.example/.well-known/oauth-protected-resource",
		"https://api.example/photos":       "https://api.example/.well-known/oauth-protected-resource/photos",
		"https://api.example/photos/v2/":   "https://api.example/.well-known/oauth-protected-resource/photos/v2/",
		"https://api.example:8443/mcp?t=a": "https://api.example:8443/.well-known/oauth-protected-resource/mcp?t=a",
		"http://127.0.0.1:9000":            "http://127.0.0.1:9000/.well-known/oauth-protected-resource",
		"https://api.example/a%20b":        "https://api.example/.well-known/oauth-protected-resource/a%20b",
		"urn:example:photos":               "",
		"https://api.example/#frag":        "",
		"ftp://api.example/x":              "",
		"https://user@api.example/x":       "",
		"/relative":                        "",
	} {
		got, err := MetadataURL(resource)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", resource, got, err, want)
		}
	}
}

// TestMetadataHandler: the document names the Audience as the resource, the issuer as its
// authorization server, the scopes and the header method; it is served to any origin; the
// path to mount it at follows the Audience, or the configured URL.
func TestMetadataHandler(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{Audience: "https://api.example/photos", RequiredScopes: []string{"read"}, ResourceName: "Photos"})
	if p := m.MetadataPath(); p != "/.well-known/oauth-protected-resource/photos" {
		t.Fatalf("MetadataPath = %q", p)
	}
	w := httptest.NewRecorder()
	m.MetadataHandler().ServeHTTP(w, httptest.NewRequest("GET", m.MetadataPath(), nil))
	var md ProtectedResourceMetadata
	if err := json.Unmarshal(w.Body.Bytes(), &md); err != nil || w.Code != 200 || w.Header().Get("Content-Type") != "application/json" ||
		w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	if md.Resource != "https://api.example/photos" || !slices.Equal(md.AuthorizationServers, []string{as.URL}) ||
		!slices.Equal(md.ScopesSupported, []string{"read"}) || !slices.Equal(md.BearerMethodsSupported, []string{"header"}) || md.ResourceName != "Photos" {
		t.Fatalf("metadata %+v", md)
	}
	for method, want := range map[string]int{"OPTIONS": 204, "HEAD": 200, "POST": 405, "DELETE": 405} {
		w := httptest.NewRecorder()
		m.MetadataHandler().ServeHTTP(w, httptest.NewRequest(method, m.MetadataPath(), nil))
		if w.Code != want || (method == "HEAD" && w.Body.Len() != 0) {
			t.Errorf("%s: %d, want %d", method, w.Code, want)
		}
	}
	other := newMW(t, as, Config{Audience: "urn:example:photos", ScopesSupported: []string{"a", "b"}, RequiredScopes: []string{"a"},
		ResourceMetadataURL: "https://gw.example/.well-known/oauth-protected-resource/p"})
	if other.MetadataPath() != "/.well-known/oauth-protected-resource/p" || !slices.Equal(other.Metadata().ScopesSupported, []string{"a", "b"}) {
		t.Fatalf("configured: path %q, metadata %+v", other.MetadataPath(), other.Metadata())
	}
	urn := newMW(t, as, Config{Audience: "urn:example:photos"})
	if urn.MetadataURL() != "" {
		t.Fatalf("a URN audience has metadata at %q", urn.MetadataURL())
	}
	// No Audience: it is the issuer's, which says nothing of where this server is.
	def, err := New(context.Background(), Config{Issuer: as.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer def.Close()
	w = httptest.NewRecorder()
	def.Handler(http.NotFoundHandler()).ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if def.MetadataURL() != "" || strings.Contains(strings.Join(w.Header().Values("WWW-Authenticate"), ","), "resource_metadata") {
		t.Fatalf("without an Audience: metadata at %q, challenge %q", def.MetadataURL(), w.Header().Values("WWW-Authenticate"))
	}
}

// TestChallenges: every refusal names the metadata (RFC 9728 §5.1): no error for a request
// without a token (RFC 6750 §3.1) but the scope it needs; invalid_token; insufficient_scope as
// a 403 with the scope.
func TestChallenges(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{RequiredScopes: []string{"read", "admin"}})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	const md = `resource_metadata="https://api.example/.well-known/oauth-protected-resource"`
	for _, tc := range []struct {
		name, auth string
		status     int
		want, not  []string
	}{
		{"no token", "", 401, []string{md, `scope="read admin"`}, []string{"error="}},
		{"a bad token", "Bearer nonsense.x.y", 401, []string{md, `error="invalid_token"`, "error_description="}, []string{"scope="}},
		{"a missing scope", "Bearer " + as.token(as.claims(1)), 403, []string{md, `error="insufficient_scope"`, `scope="read admin"`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			got := w.Header().Get("WWW-Authenticate")
			if w.Code != tc.status || !strings.HasPrefix(got, "Bearer ") {
				t.Fatalf("%d %q", w.Code, got)
			}
			for _, s := range tc.want {
				if !strings.Contains(got, s) {
					t.Errorf("WWW-Authenticate %q lacks %s", got, s)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(got, s) {
					t.Errorf("WWW-Authenticate %q has %s", got, s)
				}
			}
		})
	}
}
