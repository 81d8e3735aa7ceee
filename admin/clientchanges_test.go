package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/postgres"
	"github.com/rescind/rescind/store/sqlite"
)

// pauseAfterRead is a store whose next GetClient, once armed, waits after reading until resume
// is closed, and closes read when it has read: an update that read the client before a
// concurrent change.
type pauseAfterRead struct {
	rescind.Store
	read, resume chan struct{}
}

func (s *pauseAfterRead) GetClient(ctx context.Context, id string) (rescind.Client, error) {
	c, err := s.Store.GetClient(ctx, id)
	if s.read != nil {
		close(s.read)
		<-s.resume
		s.read = nil
	}
	return c, err
}

// TestUpdateNeverUndoesRotationAcrossInstances: instance B reads a client to update its name and
// scopes; meanwhile instance A rotates the client's secret with no overlap (it leaked) and
// answers; then B writes. Every change survives: the leaked secret stays dead, the new one
// works, the name and scopes are B's. On both backends, two store handles on one database.
func TestUpdateNeverUndoesRotationAcrossInstances(t *testing.T) {
	backends := map[string]func(t *testing.T) func() rescind.Store{
		"sqlite": func(t *testing.T) func() rescind.Store {
			path := filepath.Join(t.TempDir(), "db")
			return func() rescind.Store {
				st, err := sqlite.Open(context.Background(), path)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		},
		"postgres": func(t *testing.T) func() rescind.Store {
			dsn := pgtest.NewDatabase(t)
			return func() rescind.Store {
				st, err := postgres.Open(context.Background(), dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
		},
	}
	for name, backend := range backends {
		t.Run(name, func(t *testing.T) {
			open := backend(t)
			mk := func(st rescind.Store) (*admin.Server, *clientreg.Registry) {
				reg, err := clientreg.New(clientreg.Config{Store: st})
				if err != nil {
					t.Fatal(err)
				}
				return admin.New(admin.Config{Store: st, Clients: reg, TokenTTL: func(d time.Duration) time.Duration { return max(d, time.Hour) },
					HashParams: secret.Params{Memory: 64, Time: 1, Threads: 1}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}), reg
			}
			stB := &pauseAfterRead{Store: open()}
			a, regA := mk(open())
			b, _ := mk(stB)
			call := func(s *admin.Server, method, path, body string) (int, admin.ClientInfo) {
				w := httptest.NewRecorder()
				s.Handler(false).ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
				var info admin.ClientInfo
				json.Unmarshal(w.Body.Bytes(), &info)
				return w.Code, info
			}
			code, created := call(a, "POST", "/admin/v1/clients", `{"client_name":"svc","scope":"read write"}`)
			if code != 201 {
				t.Fatalf("creating: %d", code)
			}
			leaked := created.ClientSecret
			stB.read, stB.resume = make(chan struct{}), make(chan struct{})
			done := make(chan int)
			go func() {
				code, _ := call(b, "PATCH", "/admin/v1/clients/"+created.ClientID, `{"client_name":"svc renamed","scope":"read"}`)
				done <- code
			}()
			<-stB.read
			code, rotated := call(a, "POST", "/admin/v1/clients/"+created.ClientID+"/rotate-secret", `{"overlap":0}`)
			if code != 200 || rotated.ClientSecret == "" {
				t.Fatalf("rotate-secret --overlap 0 on A: %d", code)
			}
			close(stB.resume)
			if code := <-done; code != 200 {
				t.Fatalf("client update on B: %d", code)
			}
			regA.Invalidate(created.ClientID)
			ctx := context.Background()
			if _, err := regA.Authenticate(ctx, created.ClientID, leaked); err == nil {
				t.Error("the secret an acknowledged rotate-secret --overlap 0 replaced authenticates again")
			}
			c, err := regA.Authenticate(ctx, created.ClientID, rotated.ClientSecret)
			if err != nil {
				t.Errorf("the rotated secret: %v", err)
			}
			if c.Name != "svc renamed" || strings.Join(c.Scopes, " ") != "read" {
				t.Errorf("after both: name %q, scopes %v; want B's", c.Name, c.Scopes)
			}
		})
	}
}

// TestUpdateClientErrors: an update is validated as a creation is, with the same error codes
// (RFC 7591 §3.2.2), and changes nothing when refused.
func TestUpdateClientErrors(t *testing.T) {
	h := newAdmin(t, nil).Handler(false)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("POST", "/admin/v1/clients", strings.NewReader(`{"client_name":"app","redirect_uris":["https://a.example/cb"]}`)))
	var info admin.ClientInfo
	if json.Unmarshal(w.Body.Bytes(), &info); w.Code != 201 {
		t.Fatalf("creating: %d %s", w.Code, w.Body)
	}
	cases := []struct {
		name, body, code, fragment string
	}{
		{"javascript redirect", `{"redirect_uris":["javascript:alert(1)//"]}`, "invalid_redirect_uri", "javascript: scheme"},
		{"plain http redirect", `{"redirect_uris":["http://evil.example/cb"]}`, "invalid_redirect_uri", "only on loopback"},
		{"empty name", `{"client_name":" "}`, "invalid_client_metadata", "client_name"},
		{"bad scope", `{"scope":"re\"ad"}`, "invalid_client_metadata", "scope-token"},
		{"ttl too long", `{"token_ttl":99999999}`, "invalid_client_metadata", "token_ttl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest("PATCH", "/admin/v1/clients/"+info.ClientID, strings.NewReader(tc.body)))
			var out map[string]any
			json.Unmarshal(w.Body.Bytes(), &out)
			if w.Code != 400 || out["error"] != tc.code || !strings.Contains(out["error_description"].(string), tc.fragment) {
				t.Fatalf("%d %s; want 400 %s naming %q", w.Code, w.Body, tc.code, tc.fragment)
			}
			g := httptest.NewRecorder()
			h.ServeHTTP(g, httptest.NewRequest("GET", "/admin/v1/clients/"+info.ClientID, nil))
			var got admin.ClientInfo
			if json.Unmarshal(g.Body.Bytes(), &got); got.Name != "app" || strings.Join(got.RedirectURIs, " ") != "https://a.example/cb" {
				t.Fatalf("a refused update changed the client: %s", g.Body)
			}
		})
	}
}
