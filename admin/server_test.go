package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
)

func newAdmin(t *testing.T, limiter *ratelimit.Limiter) *admin.Server {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := admin.New(admin.Config{Store: st, TokenTTL: func(d time.Duration) time.Duration { return max(d, time.Hour) },
		HashParams: secret.Params{Memory: 64, Time: 1, Threads: 1}, Token: strings.Repeat("k", 32), Limiter: limiter,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	return s
}

// TestCreateClientRules: what a client registration may say about resource servers and redirect
// URIs, and what is stored and shown.
func TestCreateClientRules(t *testing.T) {
	h := newAdmin(t, nil).Handler(false)
	cases := []struct {
		name string
		body string
		want string // "" for created; else a fragment of the error description
	}{
		{"resource server with resources", `{"client_name":"api","resource_server":true,"resources":["https://api.example","urn:example:photos","https://api.example"]}`, ""},
		{"resource server for everything", `{"client_name":"api","resource_server":true}`, ""},
		{"resources without resource_server", `{"client_name":"api","resources":["https://api.example"]}`, "resource_server"},
		{"relative resource", `{"client_name":"api","resource_server":true,"resources":["/api"]}`, "absolute URI"},
		{"resource with fragment", `{"client_name":"api","resource_server":true,"resources":["https://api.example/#x"]}`, "fragment"},
		{"public resource server", `{"client_name":"api","public":true,"resource_server":true}`, "confidential"},
		{"public client with plain PKCE", `{"client_name":"spa","public":true,"allow_plain_pkce":true}`, "S256"},
		{"confidential client with plain PKCE", `{"client_name":"web","allow_plain_pkce":true}`, ""},
		{"loopback redirect", `{"client_name":"app","redirect_uris":["http://127.0.0.1/cb","com.example.app:/cb"]}`, ""},
		{"javascript redirect", `{"client_name":"app","redirect_uris":["javascript:alert(1)//"]}`, "javascript: scheme"},
		{"plain http redirect", `{"client_name":"app","redirect_uris":["http://evil.example/cb"]}`, "only on loopback"},
		{"plain http redirect allowed for development", `{"client_name":"app","redirect_uris":["http://evil.example/cb"],"allow_insecure_redirect":true}`, ""},
		{"duplicate redirect", `{"client_name":"app","redirect_uris":["https://a.example/cb","https://a.example/cb"]}`, "twice"},
		{"DPoP required", `{"client_name":"app","require_dpop":true}`, ""},
		{"DPoP required of a public client", `{"client_name":"app","public":true,"require_dpop":true}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("POST", "/admin/v1/clients", strings.NewReader(tc.body)))
			var out map[string]any
			json.Unmarshal(w.Body.Bytes(), &out)
			if tc.want != "" {
				code := "invalid_client_metadata" // RFC 7591 §3.2.2
				if strings.Contains(tc.body, "redirect_uris") {
					code = "invalid_redirect_uri"
				}
				if w.Code != 400 || out["error"] != code || !strings.Contains(out["error_description"].(string), tc.want) {
					t.Fatalf("%d %s; want 400 %s naming %q", w.Code, w.Body, code, tc.want)
				}
				return
			}
			if w.Code != 201 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			var req, info admin.ClientInfo
			json.Unmarshal([]byte(tc.body), &req)
			json.Unmarshal(w.Body.Bytes(), &info)
			if info.ResourceServer != req.ResourceServer || info.Resources == nil || info.AllowInsecureRedirect != req.AllowInsecureRedirect ||
				info.RequireDPoP != req.RequireDPoP {
				t.Fatalf("created %s from %s", w.Body, tc.body)
			}
			if req.ResourceServer && len(req.Resources) == 3 && len(info.Resources) != 2 {
				t.Fatalf("resources not deduplicated: %v", info.Resources)
			}
			// What client get shows is what was stored.
			g := httptest.NewRecorder()
			h.ServeHTTP(g, httptest.NewRequest("GET", "/admin/v1/clients/"+info.ClientID, nil))
			var got admin.ClientInfo
			json.Unmarshal(g.Body.Bytes(), &got)
			if got.ResourceServer != info.ResourceServer || len(got.Resources) != len(info.Resources) || got.AllowInsecureRedirect != info.AllowInsecureRedirect ||
				got.RequireDPoP != info.RequireDPoP {
				t.Fatalf("get shows %s, create showed %s", g.Body, w.Body)
			}
		})
	}
}

// TestMetricsHandler: the metrics-only handler serves GET /metrics and 404s everything else.
func TestMetricsHandler(t *testing.T) {
	h := admin.MetricsHandler(nil)
	for _, r := range []*http.Request{httptest.NewRequest("GET", "/", nil), httptest.NewRequest("POST", "/metrics", bytes.NewReader(nil)),
		httptest.NewRequest("GET", "/admin/v1/clients", nil), httptest.NewRequest("GET", "/metricsx", nil)} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 404 {
			t.Fatalf("%s %s: %d", r.Method, r.URL.Path, w.Code)
		}
	}
}

// TestAdminAuthRateLimit: failed admin authentications empty the source address's bucket; while
// it is empty every request from there is 429 with Retry-After, the right token included; it
// refills with time; another address is unaffected, but every address of one IPv6 /64 shares it.
func TestAdminAuthRateLimit(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := ratelimit.New(ratelimit.Config{Burst: 2, PerMinute: 1, Now: func() time.Time { return now }})
	h := newAdmin(t, lim).Handler(true)
	right := strings.Repeat("k", 32)
	do := func(addr, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/admin/v1/clients", nil)
		r.RemoteAddr = addr
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	steps := []struct {
		addr, token string
		advance     time.Duration
		code        int
	}{
		{"192.0.2.1:1", right, 0, 200},
		{"192.0.2.1:1", "wrong", 0, 401},
		{"192.0.2.1:2", "", 0, 401},
		{"192.0.2.1:3", "wrong", 0, 429},
		{"192.0.2.1:3", right, 0, 429},
		{"192.0.2.2:1", right, 0, 200},
		{"192.0.2.1:3", right, time.Minute, 200},
		{"192.0.2.1:3", "wrong", 0, 401},
		{"192.0.2.1:3", "wrong", 0, 429},
		// The addresses of one IPv6 /64 are one party (audit of issue 12, finding 1).
		{"[2001:db8:9:9::1]:1", "wrong", 0, 401},
		{"[2001:db8:9:9::2]:1", "wrong", 0, 401},
		{"[2001:db8:9:9:ffff::3]:1", right, 0, 429},
		{"[2001:db8:9:a::1]:1", right, 0, 200},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		w := do(s.addr, s.token)
		if w.Code != s.code {
			t.Fatalf("step %d (%s): %d %s; want %d", i, s.addr, w.Code, w.Body, s.code)
		}
		if w.Code == 429 && w.Header().Get("Retry-After") != "60" {
			t.Fatalf("step %d: Retry-After %q, want 60", i, w.Header().Get("Retry-After"))
		}
		if w.Code == 401 && w.Header().Get("WWW-Authenticate") == "" {
			t.Fatalf("step %d: 401 without WWW-Authenticate", i)
		}
	}
}
