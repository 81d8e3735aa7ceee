package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
)

// TestAccessLog: with --access-log every request gets one JSON line (method, path, status,
// duration, remote, client_id once authenticated) and no line carries a token, secret, code,
// verifier or password, through issuing, introspection, revocation and a code flow. Failed
// client authentications are logged at info level with or without --access-log.
func TestAccessLog(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--access-log", "--log-format", "json")
	const password = "alice-password-9f2c"
	createUser(t, data, "alice", password)
	var app, api admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "app",
		"--grant-types", "authorization_code,refresh_token", "--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "read")), &app)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api")), &api)

	secrets := []string{app.ClientSecret, api.ClientSecret, password}
	// Client credentials: issue, introspect, revoke.
	at := srv.token(api.ClientID, api.ClientSecret)
	srv.active(api.ClientID, api.ClientSecret, at)
	srv.revoke(api.ClientID, api.ClientSecret, at)
	// The code flow with PKCE, a refresh, and a revocation of the refresh token.
	cfg := oauth2.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, RedirectURL: "http://127.0.0.1:9/cb",
		Scopes: []string{"read"}, Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token"}}
	verifier := oauth2.GenerateVerifier()
	p := newPerson(t)
	q := p.authorize(srv.url, cfg.AuthCodeURL("state-1", oauth2.S256ChallengeOption(verifier)), "alice", password)
	ctx := context.Background()
	tok, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	tok2, err := cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	srv.post("/oauth2/revoke", app.ClientID, app.ClientSecret, url.Values{"token": {tok2.RefreshToken}})
	var cookies []string
	for _, c := range p.hc.Jar.Cookies(mustURL(t, srv.url)) {
		cookies = append(cookies, c.Value)
	}
	secrets = append(secrets, at, q.Get("code"), verifier, tok.AccessToken, tok.RefreshToken, tok2.AccessToken, tok2.RefreshToken)
	secrets = append(secrets, cookies...)
	// A failed client authentication, with a secret that must not be logged either.
	const wrong = "wrong-secret-3b7e1d"
	if code, _ := srv.post("/oauth2/introspect", api.ClientID, wrong, url.Values{"token": {at}}); code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: %d", code)
	}
	secrets = append(secrets, wrong)

	waitForLog(t, srv, `"msg":"client authentication failed"`)
	// The request's own line follows once the answer is written (under -race and load, after
	// the line above is already there).
	logText := waitForLog(t, srv, `"path":"/oauth2/introspect","status":401`)
	for _, s := range secrets {
		if s != "" && strings.Contains(logText, s) {
			t.Errorf("the log contains a secret, token, code or cookie: %.12s...", s)
		}
	}
	type line struct {
		Level, Msg, Method, Path, Remote, ClientID, Reason string
		Status                                             int
		Duration                                           *float64 `json:"duration_ms"`
	}
	var reqs []line
	var failed []line
	for _, l := range strings.Split(strings.TrimSpace(logText), "\n") {
		var ln line
		if err := json.Unmarshal([]byte(l), &ln); err != nil {
			t.Fatalf("not a JSON log line: %s", l)
		}
		ln.ClientID = jsonField(l, "client_id")
		switch ln.Msg {
		case "request":
			reqs = append(reqs, ln)
		case "client authentication failed":
			failed = append(failed, ln)
		}
	}
	find := func(method, path string, status int, clientID string) {
		t.Helper()
		for _, r := range reqs {
			if r.Method == method && r.Path == path && r.Status == status && r.ClientID == clientID &&
				r.Level == "INFO" && r.Duration != nil && strings.HasPrefix(r.Remote, "127.0.0.1:") {
				return
			}
		}
		t.Errorf("no access log line for %s %s %d client_id=%q among:\n%+v", method, path, status, clientID, reqs)
	}
	find("POST", "/oauth2/token", 200, api.ClientID)
	find("POST", "/oauth2/introspect", 200, api.ClientID)
	find("POST", "/oauth2/revoke", 200, api.ClientID)
	find("GET", "/oauth2/authorize", 303, "")
	find("POST", "/login", 303, "")
	find("POST", "/oauth2/token", 200, app.ClientID)
	find("POST", "/oauth2/revoke", 200, app.ClientID)
	find("POST", "/oauth2/introspect", 401, "")
	find("GET", "/readyz", 200, "")
	if len(failed) != 1 || failed[0].Level != "INFO" || failed[0].ClientID != api.ClientID || failed[0].Reason != "wrong secret" {
		t.Errorf("failed authentication lines: %+v", failed)
	}

	// Without --access-log: no request lines, but failed authentications still logged.
	quiet := startServer(t, filepath.Join(shortTempDir(t), "d"), nil)
	quiet.post("/oauth2/token", "no-such-client", "x", url.Values{"grant_type": {"client_credentials"}})
	logText = waitForLog(t, quiet, `msg="client authentication failed" client_id=no-such-client`)
	if strings.Contains(logText, "msg=request") {
		t.Fatalf("request lines without --access-log:\n%s", logText)
	}
	if !strings.Contains(logText, "level=INFO") || !strings.Contains(logText, `reason="unknown client"`) {
		t.Fatalf("failed authentication line:\n%s", logText)
	}
}

// waitForLog waits (up to 5 s) until the server's log contains want, and returns the log.
func waitForLog(t *testing.T, s *server, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l := s.log.String()
		if strings.Contains(l, want) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log lacks %q:\n%s", want, l)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonField(line, name string) string {
	var m map[string]any
	json.Unmarshal([]byte(line), &m)
	s, _ := m[name].(string)
	return s
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
