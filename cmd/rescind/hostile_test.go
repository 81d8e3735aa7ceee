package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
)

// hostileCase is one request the hostile suite sends.
type hostileCase struct {
	endpoint, name string
	method, path   string
	contentType    string
	body           string
	header         map[string]string
	// want is the exact status the protocol prescribes for this request; zero means any 4xx.
	want int
	// wantBody, if set, is the exact body expected.
	wantBody string
}

// TestHostileClients sends malformed, oversized and abusive requests to every endpoint of the
// real server. A malformed request must get a 4xx, in the protocol's JSON format where the
// protocol has one; a request whose only oddity the protocol says to ignore gets exactly the
// answer the protocol prescribes (RFC 7009 §2.2: 200 for an invalid token at revocation; RFC
// 7662 §2.2: {"active":false} at introspection; unknown query parameters on a GET are ignored).
// Never a 5xx, a panic or a hang, and the server keeps serving other clients throughout.
func TestHostileClients(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--registration", "open")
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "h")), &c)
	good := srv.token(c.ClientID, c.ClientSecret)
	// A status list that exists: the one a JWT access token points to.
	var jc admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "j", "--token-format", "jwt")), &jc)
	var claims struct {
		Status struct {
			StatusList struct {
				URI string `json:"uri"`
			} `json:"status_list"`
		} `json:"status"`
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(srv.token(jc.ClientID, jc.ClientSecret), ".")[1])
	if json.Unmarshal(payload, &claims) != nil || !strings.HasPrefix(claims.Status.StatusList.URI, srv.url+"/") {
		t.Fatalf("the JWT names no status list of this server: %s", payload)
	}
	statusPath := strings.TrimPrefix(claims.Status.StatusList.URI, srv.url)
	basicOK := "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret))

	const form = "application/x-www-form-urlencoded"
	var cases []hostileCase
	oauthPost := map[string]string{
		"token":      "/oauth2/token",
		"revoke":     "/oauth2/revoke",
		"introspect": "/oauth2/introspect",
	}
	validBody := map[string]string{"token": "grant_type=client_credentials", "revoke": "token=" + good, "introspect": "token=" + good}
	for ep, path := range oauthPost {
		add := func(name, method, ct, body string, h map[string]string) {
			if h == nil {
				h = map[string]string{"Authorization": basicOK}
			}
			cases = append(cases, hostileCase{endpoint: ep, name: name, method: method, path: path, contentType: ct, body: body, header: h})
		}
		// A token parameter that is not a token: the token endpoint ignores a parameter it does
		// not define; revocation answers 200 (RFC 7009 §2.2); introspection {"active":false}.
		ignored := func(name, body string) {
			tc := hostileCase{endpoint: ep, name: name, method: "POST", path: path, contentType: form, body: body,
				header: map[string]string{"Authorization": basicOK}, want: http.StatusOK}
			switch ep {
			case "introspect":
				tc.wantBody = `{"active":false}`
			case "revoke":
				tc.wantBody = "-"
			}
			cases = append(cases, tc)
		}
		for _, m := range []string{"GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"} {
			if m == "OPTIONS" && ep != "introspect" {
				// Token and revocation answer CORS preflights (issue 16): 204 with Allow, and no
				// CORS header for an origin that is not a public client's. Introspection refuses.
				cases = append(cases, hostileCase{endpoint: ep, name: "method OPTIONS", method: m, path: path, contentType: form,
					body: validBody[ep], header: map[string]string{"Authorization": basicOK, "Origin": "https://evil.example",
						"Access-Control-Request-Method": "POST"}, want: http.StatusNoContent, wantBody: "-"})
				continue
			}
			add("method "+m, m, form, validBody[ep], nil)
		}
		for _, ct := range []string{"", "application/json", "text/plain", "multipart/form-data; boundary=x", form + "; charset=latin1", form + ";;;=;"} {
			add("content type "+fmt.Sprintf("%q", ct), "POST", ct, validBody[ep], nil)
		}
		add("JSON body", "POST", "application/json", `{"token":"`+good+`"}`, nil)
		for _, p := range []string{"grant_type", "token", "scope", "token_type_hint", "client_id"} {
			add("duplicated "+p, "POST", form, validBody[ep]+"&"+p+"=a&"+p+"=b", nil)
		}
		add("oversized body", "POST", form, validBody[ep]+"&pad="+strings.Repeat("a", 1<<20), nil)
		add("invalid UTF-8", "POST", form, validBody[ep]+"&x=%ff%fe", nil)
		ignored("NUL in token", "grant_type=client_credentials&token=abc%00def")
		add("bad escapes", "POST", form, "token=%zz%", nil)
		ignored("long token", "grant_type=client_credentials&token="+strings.Repeat("A", 60000))
		add("empty body", "POST", form, "", nil)
		add("parameters in query only", "POST", form, "", nil)
		for name, auth := range map[string]string{
			"Basic not base64":  "Basic ***",
			"Basic no colon":    "Basic " + base64.StdEncoding.EncodeToString([]byte("nocolon")),
			"Basic empty id":    "Basic " + base64.StdEncoding.EncodeToString([]byte(":x")),
			"Basic huge":        "Basic " + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 20000)+":y")),
			"Basic NUL":         "Basic " + base64.StdEncoding.EncodeToString([]byte("a\x00:b\x00")),
			"Bearer instead":    "Bearer " + good,
			"wrong secret":      "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":wrong")),
			"unknown client":    "Basic " + base64.StdEncoding.EncodeToString([]byte("ghost:x")),
			"two auth methods":  basicOK,
			"invalid UTF-8 id":  "Basic " + base64.StdEncoding.EncodeToString([]byte("\xff\xfe:x")),
			"scheme only":       "Basic",
			"lowercase scheme":  "basic " + base64.StdEncoding.EncodeToString([]byte(c.ClientID+":"+c.ClientSecret+"x")),
			"whitespace scheme": "Basic    ",
		} {
			body := validBody[ep]
			if name == "two auth methods" {
				body += "&client_secret=x"
			}
			add(name, "POST", form, body, map[string]string{"Authorization": auth})
		}
		add("oversized header", "POST", form, validBody[ep], map[string]string{"Authorization": basicOK, "X-Big": strings.Repeat("h", 100<<10)})
	}
	getEndpoints := map[string]string{
		"metadata":   "/.well-known/oauth-authorization-server",
		"jwks":       "/.well-known/jwks.json",
		"statuslist": statusPath,
		"events":     "/oauth2/revocations/events",
		"authorize":  "/oauth2/authorize",
		"login":      "/login",
		"apps":       "/account/apps",
		"sessions":   "/account/sessions",
		"healthz":    "/healthz",
	}
	// What a GET with junk in its query gets: the documents and pages that take no parameters
	// ignore them (200); the apps page sends a browser without a session to log in (303); the
	// authorization endpoint and the event stream refuse (4xx).
	junkQuery := map[string]int{"metadata": 200, "jwks": 200, "statuslist": 200, "healthz": 200, "login": 200, "apps": 303, "sessions": 303}
	for ep, path := range getEndpoints {
		for _, m := range []string{"PUT", "DELETE", "PATCH"} {
			cases = append(cases, hostileCase{endpoint: ep, name: "method " + m, method: m, path: path, contentType: form})
		}
		for name, q := range map[string]string{
			"invalid UTF-8 query": "?client_id=%ff&redirect_uri=%fe",
			"NUL in query":        "?client_id=a%00b&x=%00",
			"bad escapes":         "?%zz=%",
			"long query":          "?state=" + strings.Repeat("s", 20000),
			"duplicated params":   "?client_id=a&client_id=b&response_type=code&response_type=token",
		} {
			cases = append(cases, hostileCase{endpoint: ep, name: name, method: "GET", path: path + q, want: junkQuery[ep]})
		}
	}
	// Dynamic registration (RFC 7591): every malformed registration is an RFC 7591 §3.2.2 error.
	const jsonCT = "application/json"
	for name, body := range map[string]string{
		"not JSON":            "redirect_uris=x",
		"JSON array":          `[]`,
		"JSON string":         `"x"`,
		"truncated":           `{"redirect_uris":["https://a.example/cb"]`,
		"wrong types":         `{"redirect_uris":[1,2],"grant_types":"x","client_name":7}`,
		"deep nesting":        strings.Repeat("[", 5000) + strings.Repeat("]", 5000),
		"NUL in name":         `{"redirect_uris":["https://a.example/cb"],"client_name":"a\u0000b"}`,
		"invalid UTF-8":       "{\"redirect_uris\":[\"https://a.example/cb\"],\"client_name\":\"\xff\xfe\"}",
		"javascript redirect": `{"redirect_uris":["javascript:alert(document.cookie)"]}`,
		"many redirects":      `{"redirect_uris":["https://a.example/` + strings.Repeat(`x","https://a.example/`, 100) + `y"]}`,
		"huge":                `{"redirect_uris":["https://a.example/cb"],"x":"` + strings.Repeat("a", 1<<20) + `"}`,
	} {
		cases = append(cases, hostileCase{endpoint: "register", name: name, method: "POST", path: "/oauth2/register", contentType: jsonCT, body: body})
	}
	for _, ct := range []string{"", form, "text/plain", "application/json-patch+json"} {
		cases = append(cases, hostileCase{endpoint: "register", name: "content type " + fmt.Sprintf("%q", ct), method: "POST", path: "/oauth2/register",
			contentType: ct, body: `{"redirect_uris":["https://a.example/cb"]}`})
	}
	for _, m := range []string{"GET", "PUT", "DELETE", "PATCH"} {
		cases = append(cases, hostileCase{endpoint: "register", name: "method " + m, method: m, path: "/oauth2/register", contentType: jsonCT, body: "{}"})
	}
	for _, m := range []string{"GET", "PUT", "DELETE"} {
		for name, auth := range map[string]string{"no token": "", "junk token": "Bearer x", "Basic": basicOK, "long": "Bearer " + strings.Repeat("t", 20000)} {
			h := map[string]string{}
			if auth != "" {
				h["Authorization"] = auth
			}
			cases = append(cases, hostileCase{endpoint: "register", name: m + " configuration, " + name, method: m, path: "/oauth2/register/" + c.ClientID,
				contentType: jsonCT, body: `{"client_id":"` + c.ClientID + `"}`, header: h, want: http.StatusUnauthorized})
		}
	}
	cases = append(cases,
		hostileCase{endpoint: "statuslist", name: "path traversal", method: "GET", path: "/oauth2/statuslists/..%2f..%2fetc%2fpasswd"},
		hostileCase{endpoint: "events", name: "bad Last-Event-ID", method: "GET", path: "/oauth2/revocations/events", header: map[string]string{"Authorization": basicOK, "Last-Event-ID": "-1x"}},
		hostileCase{endpoint: "login", name: "POST without CSRF", method: "POST", path: "/login", contentType: form, body: "username=a&password=b"},
		hostileCase{endpoint: "login", name: "POST oversized", method: "POST", path: "/login", contentType: form, body: "username=" + strings.Repeat("u", 1<<20)},
		hostileCase{endpoint: "consent", name: "POST without CSRF", method: "POST", path: "/oauth2/authorize", contentType: form, body: "decision=allow&request=client_id%3Dx"},
		hostileCase{endpoint: "apps", name: "revoke without session", method: "POST", path: "/account/apps/revoke", contentType: form, body: "grant_id=x", want: http.StatusSeeOther},
		hostileCase{endpoint: "sessions", name: "end without session", method: "POST", path: "/account/sessions/end", contentType: form, body: "session_id=x", want: http.StatusSeeOther},
		hostileCase{endpoint: "sessions", name: "end all without session", method: "POST", path: "/account/sessions/end-all", contentType: form, want: http.StatusSeeOther},
		hostileCase{endpoint: "sessions", name: "forged session cookie", method: "GET", path: "/account/sessions", header: map[string]string{"Cookie": "rescind_session=" + strings.Repeat("A", 43)}, want: http.StatusSeeOther},
		hostileCase{endpoint: "sessions", name: "oversized session cookie", method: "GET", path: "/account/sessions", header: map[string]string{"Cookie": "rescind_session=" + strings.Repeat("A", 8000)}, want: http.StatusSeeOther},
		hostileCase{endpoint: "logout", name: "logout oversized", method: "POST", path: "/logout", contentType: form, body: "csrf_token=" + strings.Repeat("c", 1<<20)},
		// The mux cleans the path and redirects to the clean one, on this server.
		hostileCase{endpoint: "unknown", name: "unknown path", method: "GET", path: "/nope/../../etc/passwd", want: http.StatusTemporaryRedirect},
		hostileCase{endpoint: "unknown", name: "unknown clean path", method: "GET", path: "/etc/passwd"},
	)

	hc := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	perEndpoint := map[string]int{}
	for _, tc := range cases {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		req, err := http.NewRequest(tc.method, srv.url+tc.path, body)
		if err != nil {
			t.Fatalf("%s/%s: %v", tc.endpoint, tc.name, err)
		}
		if tc.contentType != "" {
			req.Header["Content-Type"] = []string{tc.contentType}
		}
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		res, err := hc.Do(req)
		if err != nil && strings.HasPrefix(tc.name, "oversized") {
			// The server may close the connection while the client is still sending what it
			// refused: a rejection too.
			perEndpoint[tc.endpoint]++
			continue
		}
		if err != nil {
			t.Fatalf("%s/%s: no answer: %v", tc.endpoint, tc.name, err)
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		perEndpoint[tc.endpoint]++
		switch {
		case tc.want != 0 && res.StatusCode != tc.want:
			t.Errorf("%s/%s: %d, want %d: %.300s", tc.endpoint, tc.name, res.StatusCode, tc.want, b)
			continue
		case tc.want == 0 && (res.StatusCode < 400 || res.StatusCode >= 500):
			t.Errorf("%s/%s: %d, want a 4xx: %.300s", tc.endpoint, tc.name, res.StatusCode, b)
			continue
		case tc.wantBody == "-" && len(b) != 0, tc.wantBody != "" && tc.wantBody != "-" && string(b) != tc.wantBody:
			t.Errorf("%s/%s: body %.300q, want %q", tc.endpoint, tc.name, b, tc.wantBody)
		}
		if res.Header.Get("Access-Control-Allow-Origin") == "https://evil.example" || res.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s/%s: CORS lets an unknown origin read: %v", tc.endpoint, tc.name, res.Header)
		}
		if res.StatusCode >= 300 && res.StatusCode < 400 {
			if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") {
				t.Errorf("%s/%s: redirects off the server, to %q", tc.endpoint, tc.name, loc)
			}
		}
		if res.StatusCode >= 400 && strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && tc.method != "HEAD" {
			var e map[string]any
			if json.Unmarshal(b, &e) != nil || e["error"] == nil {
				t.Errorf("%s/%s: %d with a JSON body that is not an error: %s", tc.endpoint, tc.name, res.StatusCode, b)
			}
		}
		if _, isOAuth := oauthPost[tc.endpoint]; isOAuth && res.StatusCode >= 400 && res.StatusCode != 431 &&
			(res.Header.Get("Content-Type") != "application/json" && tc.method != "HEAD") {
			t.Errorf("%s/%s: %d is not in the RFC 6749 JSON format (Content-Type %q)", tc.endpoint, tc.name, res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	names := make([]string, 0, len(perEndpoint))
	total := 0
	for ep, n := range perEndpoint {
		names = append(names, fmt.Sprintf("%s=%d", ep, n))
		total += n
	}
	sort.Strings(names)
	t.Logf("hostile cases per endpoint (%d in all): %s", total, strings.Join(names, " "))

	// Slow-loris: connections that never finish their headers must not stop other clients.
	var slow []net.Conn
	for range 100 {
		conn, err := net.Dial("tcp", strings.TrimPrefix(srv.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(conn, "POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n")
		slow = append(slow, conn)
	}
	if !srv.active(c.ClientID, c.ClientSecret, good) {
		t.Fatal("server stopped answering while slow connections are open")
	}
	for _, conn := range slow {
		conn.Close()
	}

	// Many concurrent connections, each a fresh connection.
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("POST", srv.url+"/oauth2/introspect", strings.NewReader(url.Values{"token": {good}}.Encode()))
			req.Header.Set("Content-Type", form)
			req.Header.Set("Authorization", basicOK)
			res, err := (&http.Client{Transport: tr, Timeout: 30 * time.Second}).Do(req)
			code := 0
			if err == nil {
				code = res.StatusCode
				res.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[200] != 300 {
		t.Fatalf("300 concurrent connections: %v", codes)
	}
	if !srv.active(c.ClientID, c.ClientSecret, good) {
		t.Fatal("server not serving after the hostile suite")
	}
}
