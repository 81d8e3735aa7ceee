package oauth_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/rescind/rescind/oauth"
)

// corsReq sends method path with Origin origin (and, for a preflight, the method it asks about).
func (e *env) corsReq(t *testing.T, method, path, origin, asks, body string, auth func(*http.Request)) *http.Response {
	t.Helper()
	hr, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if origin != "" {
		hr.Header.Set("Origin", origin)
	}
	if asks != "" {
		hr.Header.Set("Access-Control-Request-Method", asks)
		hr.Header.Set("Access-Control-Request-Headers", "authorization, content-type, dpop")
	}
	if body != "" {
		hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != nil {
		auth(hr)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res
}

// TestCORS: preflights and answers of the endpoints a browser app calls. Token and revocation
// let the origins of public clients read their answers (errors included); metadata, JWKS,
// status lists and registration let every origin; introspection, the authorization endpoint and
// the pages send no CORS header and refuse OPTIONS. Never credentials mode.
func TestCORS(t *testing.T) {
	e := newEnvWith(t, registrationMode(oauth.RegisterOpen))
	const spa = "https://spa.example" // the public client spa's redirect URI's origin
	statusPath := func() string {
		u, _ := url.Parse(strings.SplitN(statusOf(t, e, e.issue("jwtapp", appSecret, "")), "#", 2)[0])
		return u.Path
	}()

	for _, tc := range []struct {
		name, path, origin, asks string
		status                   int
		allow                    string // Access-Control-Allow-Origin expected; "" none
	}{
		{"token, public client's origin", "/oauth2/token", spa, "POST", 204, spa},
		{"token, unknown origin", "/oauth2/token", "https://evil.example", "POST", 204, ""},
		{"token, confidential client's origin", "/oauth2/token", "https://app.example", "POST", 204, ""},
		{"token, a method it does not serve", "/oauth2/token", spa, "DELETE", 204, ""},
		{"token, no preflight headers", "/oauth2/token", "", "", 204, ""},
		{"revoke, public client's origin", "/oauth2/revoke", spa, "POST", 204, spa},
		{"revoke, null origin", "/oauth2/revoke", "null", "POST", 204, ""},
		{"metadata, any origin", "/.well-known/oauth-authorization-server", "https://evil.example", "GET", 204, "*"},
		{"JWKS, any origin", "/.well-known/jwks.json", "https://evil.example", "GET", 204, "*"},
		{"status list, any origin", statusPath, "https://evil.example", "GET", 204, "*"},
		{"registration, any origin", "/oauth2/register", "https://new-agent.example", "POST", 204, "*"},
		{"introspection: no CORS", "/oauth2/introspect", spa, "POST", 405, ""},
		{"authorization endpoint: no CORS", "/oauth2/authorize", spa, "GET", 405, ""},
		{"login page: no CORS", "/login", spa, "POST", 405, ""},
		{"apps page: no CORS", "/account/apps", spa, "GET", 405, ""},
		{"events: no CORS", "/oauth2/revocations/events", spa, "GET", 405, ""},
	} {
		t.Run("preflight "+tc.name, func(t *testing.T) {
			res := e.corsReq(t, "OPTIONS", tc.path, tc.origin, tc.asks, "", nil)
			h := res.Header
			if res.StatusCode != tc.status || h.Get("Access-Control-Allow-Origin") != tc.allow {
				t.Fatalf("%d, Access-Control-Allow-Origin %q; want %d, %q", res.StatusCode, h.Get("Access-Control-Allow-Origin"), tc.status, tc.allow)
			}
			if h.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatal("credentials mode allowed")
			}
			if tc.allow == "" {
				if h.Get("Access-Control-Allow-Methods") != "" || h.Get("Access-Control-Allow-Headers") != "" {
					t.Fatalf("CORS headers for a refused origin: %v", h)
				}
				return
			}
			if !strings.Contains(h.Get("Access-Control-Allow-Methods"), tc.asks) || h.Get("Access-Control-Max-Age") == "" {
				t.Fatalf("preflight headers %v", h)
			}
			for _, want := range []string{"Authorization", "DPoP", "Content-Type"} {
				if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
					t.Fatalf("Access-Control-Allow-Headers %q lacks %s", h.Get("Access-Control-Allow-Headers"), want)
				}
			}
		})
	}

	// The answers themselves: a public client's token request from its origin, an error for it,
	// and a confidential client's answer, which no origin may read.
	form := func(v url.Values) string { return v.Encode() }
	for _, tc := range []struct {
		name, path, origin, body string
		auth                     func(*http.Request)
		allow                    string
	}{
		{"token error for the public client", "/oauth2/token", spa,
			form(url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "client_id": {"spa"}}), nil, spa},
		{"revoke for the public client", "/oauth2/revoke", spa, form(url.Values{"token": {"x"}, "client_id": {"spa"}}), nil, spa},
		{"token from an unknown origin", "/oauth2/token", "https://evil.example",
			form(url.Values{"grant_type": {"authorization_code"}, "code": {"nope"}, "client_id": {"spa"}}), nil, ""},
		{"introspection", "/oauth2/introspect", spa, form(url.Values{"token": {"x"}}), func(r *http.Request) { r.SetBasicAuth("rs", rsSecret) }, ""},
		{"metadata", "/.well-known/oauth-authorization-server", "https://evil.example", "", nil, "*"},
	} {
		t.Run("answer "+tc.name, func(t *testing.T) {
			method := "POST"
			if tc.body == "" {
				method = "GET"
			}
			res := e.corsReq(t, method, tc.path, tc.origin, "", tc.body, tc.auth)
			h := res.Header
			if h.Get("Access-Control-Allow-Origin") != tc.allow || h.Get("Access-Control-Allow-Credentials") != "" {
				t.Fatalf("%d with %v; want Access-Control-Allow-Origin %q", res.StatusCode, h, tc.allow)
			}
			if tc.allow != "" && !strings.Contains(h.Get("Access-Control-Expose-Headers"), "DPoP-Nonce") ||
				tc.allow != "" && !strings.Contains(h.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
				t.Fatalf("Access-Control-Expose-Headers %q", h.Get("Access-Control-Expose-Headers"))
			}
			if tc.allow != "" && tc.allow != "*" && !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
				t.Fatalf("an answer that depends on the origin without Vary: Origin: %v", h)
			}
		})
	}

	// A public client registered dynamically is a browser app at once: its origin may read.
	reg := e.register(`{"redirect_uris":["https://agent.example/cb"]}`, "").registration(t)
	if res := e.corsReq(t, "OPTIONS", "/oauth2/token", "https://agent.example", "POST", "", nil); res.Header.Get("Access-Control-Allow-Origin") != "https://agent.example" {
		t.Fatalf("the new client %s's origin is refused: %v", reg.ClientID, res.Header)
	}
}
