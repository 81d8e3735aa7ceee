package ssf

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
)

const testIssuer = "https://as.example"

// testTransmitter returns a Transmitter on a fresh SQLite store whose Authenticate maps a
// token's text to tokens[text], and its routes as a handler.
func testTransmitter(t *testing.T, tokens map[string]Token, mod func(*Config)) (*Transmitter, rescind.Store, http.Handler) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.NewBox(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Issuer: testIssuer, Store: st, Box: box,
		Sign: func(any, string) (string, error) { return "signed", nil },
		Authenticate: func(_ context.Context, text string) (Token, error) {
			tok, ok := tokens[text]
			if !ok {
				return Token{}, rescind.ErrNotFound
			}
			return tok, nil
		}}
	if mod != nil {
		mod(&cfg)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range tr.Routes() {
		mux.HandleFunc(r.Pattern, r.Handler)
	}
	return tr, st, mux
}

func createClient(t *testing.T, st rescind.Store, id, registration string, scopes ...string) {
	t.Helper()
	if err := st.CreateClient(context.Background(), rescind.Client{ID: id, Name: id, GrantTypes: []string{rescind.GrantClientCredentials},
		Scopes: scopes, Registration: registration, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}

func do(h http.Handler, method, path, token, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestWhoMayBeAReceiver: only a client-credentials token of an operator-registered client, for
// the issuer alone, whose client holds the scope now, reaches the SSF endpoints. Each refused
// token differs from the accepted one in exactly the property under test (audit 19, findings 1
// and 3).
func TestWhoMayBeAReceiver(t *testing.T) {
	cc := func(client string, scopes ...string) Token {
		return Token{ClientID: client, Scopes: scopes, ClientCredentials: true, Audience: []string{testIssuer}}
	}
	good := cc("rx", ScopeManage)
	user := good
	user.ClientCredentials = false // a person's token (code flow), same client, same scope
	otherAud := good
	otherAud.Audience = []string{"https://api.example"}
	twoAud := good
	twoAud.Audience = []string{testIssuer, "https://api.example"}
	noScope := good
	noScope.Scopes = []string{"read"}
	tokens := map[string]Token{
		"good": good, "user": user, "other-aud": otherAud, "two-aud": twoAud, "no-scope": noScope,
		"dynamic":  cc("dyn", ScopeManage),           // registered itself (RFC 7591)
		"document": cc("doc", ScopeManage),           // a Client ID Metadata Document
		"revoked":  cc("was-rx", ScopeManage),        // its client's ssf.manage was taken away since
		"deleted":  cc("gone", ScopeManage),          // its client no longer exists
		"reader":   cc("rd", ScopeRead),              // ssf.read only
		"reader+m": cc("rd", ScopeRead, ScopeManage), // a token naming ssf.manage its client lacks
	}
	_, st, h := testTransmitter(t, tokens, nil)
	createClient(t, st, "rx", rescind.RegistrationAdmin, ScopeManage, ScopeRead)
	createClient(t, st, "dyn", rescind.RegistrationDynamic, ScopeManage, ScopeRead)
	createClient(t, st, "doc", rescind.RegistrationMetadataDocument, ScopeManage, ScopeRead)
	createClient(t, st, "was-rx", rescind.RegistrationAdmin, "read")
	createClient(t, st, "rd", rescind.RegistrationAdmin, ScopeRead)
	create := `{"delivery":{"method":"` + rescind.SSFPoll + `"},"default_subjects":"ALL"}`
	for _, c := range []struct {
		token, method string
		status        int
		says          string
	}{
		{"good", "POST", http.StatusCreated, ""},
		{"user", "POST", http.StatusUnauthorized, "client credentials"},
		{"other-aud", "POST", http.StatusUnauthorized, "audience"},
		{"two-aud", "POST", http.StatusUnauthorized, "audience"},
		{"no-scope", "POST", http.StatusForbidden, "scope"},
		{"dynamic", "POST", http.StatusForbidden, "self-registered"},
		{"document", "POST", http.StatusForbidden, "self-registered"},
		{"dynamic", "GET", http.StatusForbidden, "self-registered"},
		{"revoked", "POST", http.StatusForbidden, "scope"},
		{"revoked", "GET", http.StatusForbidden, "scope"},
		{"deleted", "GET", http.StatusUnauthorized, "no longer exists"},
		{"reader", "GET", http.StatusOK, ""},
		{"reader", "POST", http.StatusForbidden, "scope"},
		{"reader+m", "POST", http.StatusForbidden, "scope"},
	} {
		t.Run(c.token+" "+c.method, func(t *testing.T) {
			body := ""
			if c.method == "POST" {
				body = create
			}
			w := do(h, c.method, PathStream, c.token, body)
			if w.Code != c.status || !strings.Contains(w.Body.String(), c.says) {
				t.Fatalf("%s %s with %q: %d %s; want %d saying %q", c.method, PathStream, c.token, w.Code, w.Body, c.status, c.says)
			}
		})
	}
}
