package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
)

var hiddenField = regexp.MustCompile(`name="(csrf_token|request|next)" value="([^"]*)"`)

// formOf returns a page's hidden fields, as a browser would post them.
func formOf(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(page, -1) {
		v.Set(m[1], strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'").Replace(m[2]))
	}
	return v
}

// person is a browser-like HTTP client: cookies, redirects followed by hand.
type person struct {
	t  testing.TB
	hc *http.Client
}

func newPerson(t testing.TB) *person {
	jar, _ := cookiejar.New(nil)
	return &person{t: t, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (p *person) do(req *http.Request) (*http.Response, string) {
	p.t.Helper()
	res, err := p.hc.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (p *person) get(u string) (*http.Response, string) {
	req, _ := http.NewRequest("GET", u, nil)
	return p.do(req)
}

func (p *person) post(u string, form url.Values) (*http.Response, string) {
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return p.do(req)
}

// authorize follows an authorization URL through login and consent, as a browser would, and
// returns the query the client's redirect URI receives.
func (p *person) authorize(base, authURL, username, password string) url.Values {
	p.t.Helper()
	res, page := p.get(authURL)
	for hop := 0; hop < 6; hop++ {
		switch {
		case res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), "/"):
			res, page = p.get(base + res.Header.Get("Location"))
		case res.StatusCode == http.StatusSeeOther:
			u, _ := url.Parse(res.Header.Get("Location"))
			return u.Query()
		case strings.Contains(page, `action="/login"`):
			f := formOf(page)
			f.Set("username", username)
			f.Set("password", password)
			res, page = p.post(base+"/login", f)
		case strings.Contains(page, `name="decision"`):
			f := formOf(page)
			f.Set("decision", "allow")
			res, page = p.post(base+"/oauth2/authorize", f)
		default:
			p.t.Fatalf("unexpected page %d: %s", res.StatusCode, page)
		}
	}
	p.t.Fatal("too many hops")
	return nil
}

func createUser(t testing.TB, data, name, password string) {
	t.Helper()
	cmd := []string{"user", "create", "--data-dir", data, "--username", name, "--password-stdin"}
	out, errOut, err := runCLIInput(password+"\n", cmd...)
	if err != nil {
		t.Fatalf("user create: %v %s %s", err, out, errOut)
	}
}

// TestOAuth2CodeFlowAgainstServer: golang.org/x/oauth2 runs the code flow with PKCE against
// the real binary, refreshes twice, and reusing the first refresh token kills the family.
func TestOAuth2CodeFlowAgainstServer(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "Photo App",
		"--grant-types", "authorization_code,refresh_token", "--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "photos.read photos.write")), &c)
	var rs admin.ClientInfo // a resource server that introspects (access tokens of every audience)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)
	own := func(tok string) bool { return srv.active(c.ClientID, c.ClientSecret, tok) } // refresh tokens: their client alone

	cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1:9/cb",
		Scopes: []string{"photos.read"}, Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token"}}
	verifier := oauth2.GenerateVerifier()
	q := newPerson(t).authorize(srv.url, cfg.AuthCodeURL("xyz", oauth2.S256ChallengeOption(verifier)), "alice", "alice-password")
	if q.Get("state") != "xyz" || q.Get("code") == "" {
		t.Fatalf("redirect query = %v", q)
	}
	ctx := context.Background()
	t1, err := cfg.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if t1.RefreshToken == "" || t1.Extra("scope") != "photos.read" || !srv.active(rs.ClientID, rs.ClientSecret, t1.AccessToken) {
		t.Fatalf("exchange gave %+v", t1)
	}
	refresh := func(rt string) (*oauth2.Token, error) {
		return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
	}
	t2, err := refresh(t1.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	t3, err := refresh(t2.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if own(t1.RefreshToken) {
		t.Fatal("the first refresh token still works after rotation")
	}
	if !srv.active(rs.ClientID, rs.ClientSecret, t3.AccessToken) || !own(t3.RefreshToken) || srv.active(rs.ClientID, rs.ClientSecret, t3.RefreshToken) {
		t.Fatal("the live tokens are inactive before the reuse")
	}
	_, err = refresh(t1.RefreshToken)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("reuse: %v, want invalid_grant", err)
	}
	if srv.active(rs.ClientID, rs.ClientSecret, t3.AccessToken) || own(t3.RefreshToken) {
		t.Fatal("reusing a refresh token did not kill the family")
	}
	if !strings.Contains(srv.log.String(), "security: refresh token reuse") {
		t.Fatal("reuse not logged as a security event")
	}
	audit := cli(t, nil, "audit", "list", "--data-dir", data)
	if !strings.Contains(audit, "refresh token reuse") || strings.Contains(audit, t1.RefreshToken) {
		t.Fatalf("audit list: %s", audit)
	}
}

// TestUsersAndBulkRevocationCLI covers user create/list/delete and revoke-all through the CLI.
func TestUsersAndBulkRevocationCLI(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	// A small clock skew: revoke-all --client cuts off tokens issued up to the skew after it.
	srv := startServer(t, data, nil, "--clock-skew", "1s")
	createUser(t, data, "alice", "alice-password")
	createUser(t, data, "bob", "bob-password")
	if list := cli(t, nil, "user", "list", "--data-dir", data); !strings.Contains(list, `"alice"`) || strings.Contains(list, "argon2") {
		t.Fatalf("user list: %s", list)
	}
	if _, errOut, err := runCLIInput("x\n", "user", "create", "--data-dir", data, "--username", "alice", "--password-stdin"); err == nil {
		t.Fatalf("duplicate user accepted: %s", errOut)
	}
	mk := func(name string) admin.ClientInfo {
		var c admin.ClientInfo
		json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", name, "--grant-types",
			"authorization_code,refresh_token,client_credentials", "--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "read")), &c)
		return c
	}
	app1, app2 := mk("one"), mk("two")
	var rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)
	get := func(c admin.ClientInfo, user, pass string) *oauth2.Token {
		cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1:9/cb",
			Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token"}}
		v := oauth2.GenerateVerifier()
		q := newPerson(t).authorize(srv.url, cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)), user, pass)
		tok, err := cfg.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(v))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	a1, a2, b1 := get(app1, "alice", "alice-password"), get(app2, "alice", "alice-password"), get(app1, "bob", "bob-password")
	cc := srv.token(app1.ClientID, app1.ClientSecret)
	active := func(tok string) bool { return srv.active(rs.ClientID, rs.ClientSecret, tok) }

	var res admin.RevokeResult
	json.Unmarshal([]byte(cli(t, nil, "revoke-all", "--data-dir", data, "--user", "alice", "--client", app1.ClientID)), &res)
	if res.GrantsRevoked != 1 || res.RefreshTokensRevoked != 1 || active(a1.AccessToken) || !active(a2.AccessToken) || !active(b1.AccessToken) {
		t.Fatalf("revoke-all --user alice --client one: %+v", res)
	}
	json.Unmarshal([]byte(cli(t, nil, "revoke-all", "--data-dir", data, "--client", app1.ClientID)), &res)
	if res.GrantsRevoked != 1 || !res.ClientTokensRevoked || active(b1.AccessToken) || active(cc) || !active(a2.AccessToken) {
		t.Fatalf("revoke-all --client one: %+v", res)
	}
	// Tokens issued up to the cut-off (the skew past the revocation) would be covered too: the
	// client is told to come back after it.
	if res.RevokedBefore == nil || res.RevokedBefore.Before(time.Now()) {
		t.Fatalf("revoke-all --client one: revoked_before %v, want after the revocation", res.RevokedBefore)
	}
	code, body := srv.post("/oauth2/token", app1.ClientID, app1.ClientSecret, url.Values{"grant_type": {"client_credentials"}})
	if code != 503 || !strings.Contains(string(body), "temporarily_unavailable") {
		t.Fatalf("a token request right after revoke-all --client: %d %s, want 503 temporarily_unavailable", code, body)
	}
	time.Sleep(time.Until(*res.RevokedBefore) + 10*time.Millisecond)
	json.Unmarshal([]byte(cli(t, nil, "user", "delete", "--data-dir", data, "alice")), &res)
	if res.GrantsRevoked != 1 || active(a2.AccessToken) || srv.active(app2.ClientID, app2.ClientSecret, a2.RefreshToken) {
		t.Fatalf("user delete: %+v", res)
	}
	if fresh := srv.token(app1.ClientID, app1.ClientSecret); !active(fresh) {
		t.Fatal("a client credentials token issued after revoke-all is inactive")
	}
}
