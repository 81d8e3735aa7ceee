package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// refreshOnce redeems refresh at the token endpoint for c, as golang.org/x/oauth2 does.
func refreshOnce(t *testing.T, srv *server, c rp, refresh string) *oauth2.Token {
	t.Helper()
	conf := oauth2.Config{ClientID: c.info.ClientID, ClientSecret: c.info.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	tok, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: refresh}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return tok
}

// TestRefreshAfterLogoutIssuesNoIDToken: once the session a sign-in happened in ended (here by
// RP-initiated logout, which told the RP), refreshing that sign-in's refresh token issues no ID
// token: a new one would assert the ended sid and let the RP revive the session (audit 17 #1).
// While the session lives, the refreshed ID token keeps its sid.
func TestRefreshAfterLogoutIssuesNoIDToken(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	createUser(t, data, "alice", "alice-password")
	lr := newLogoutReceiver(t, srv.url)
	one := newRP(t, data, lr, "one")
	p := newPerson(t)
	tok1, id1, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password")
	var c1 struct {
		SID string `json:"sid"`
	}
	if err := id1.Claims(&c1); err != nil || c1.SID == "" {
		t.Fatalf("ID token sid %q, %v", c1.SID, err)
	}
	verifier := func() *oidc.IDTokenVerifier {
		provider, err := oidc.NewProvider(context.Background(), srv.url)
		if err != nil {
			t.Fatal(err)
		}
		return provider.Verifier(&oidc.Config{ClientID: one.info.ClientID})
	}()

	// While the session lives, a refresh brings an ID token of the same sign-in.
	live := refreshOnce(t, srv, one, tok1.RefreshToken)
	raw, _ := live.Extra("id_token").(string)
	idl, err := verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("refreshed ID token while signed in: %v", err)
	}
	var cl struct {
		SID string `json:"sid"`
	}
	idl.Claims(&cl)
	if cl.SID != c1.SID {
		t.Fatalf("refreshed ID token sid = %q, want %q", cl.SID, c1.SID)
	}

	hint, _ := tok1.Extra("id_token").(string)
	p.get(srv.url + "/oauth2/logout?" + url.Values{"id_token_hint": {hint}}.Encode())
	if got := lr.waitLogouts(1); got[0].SID != c1.SID {
		t.Fatalf("logout token sid = %q, want %q", got[0].SID, c1.SID)
	}

	ended := refreshOnce(t, srv, one, live.RefreshToken)
	if raw, ok := ended.Extra("id_token").(string); ok && raw != "" {
		t.Errorf("refresh after the session %s ended issued an ID token: %s", c1.SID, raw)
	}
	if ended.AccessToken == "" {
		t.Errorf("refresh after logout issued no access token")
	}
}

// TestUserinfoRefusesTokenForAnotherResource: an access token whose audience is only another
// resource server (RFC 8707 resource=) is refused at userinfo with 401 invalid_token, so that
// server cannot replay it to read the person's claims (audit 17 #3); the same person's token
// of the same client and scope, without a resource (audience: the issuer), is answered.
func TestUserinfoRefusesTokenForAnotherResource(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	cliInput(t, "alice-password\n", "user", "create", "--data-dir", data, "--username", "alice", "--password-stdin",
		"--name", "Alice Liddell", "--email", "alice@example.com")
	cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server", "--resource", "https://api.example")
	lr := newLogoutReceiver(t, srv.url)
	one := newRP(t, data, lr, "one")
	p := newPerson(t)

	own, _, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password")
	if status, chal, m := userinfo(t, srv, own.AccessToken); status != 200 || m["email"] != "alice@example.com" {
		t.Fatalf("userinfo with the issuer's token: %d %s %v", status, chal, m)
	}

	api, _, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password", oauth2.SetAuthURLParam("resource", "https://api.example"))
	code, body := srv.post("/oauth2/introspect", one.info.ClientID, one.info.ClientSecret, url.Values{"token": {api.AccessToken}})
	if code != 200 || !strings.Contains(string(body), `"active":true`) || !strings.Contains(string(body), "https://api.example") {
		t.Fatalf("introspecting the resource-restricted token: %d %s", code, body)
	}
	status, chal, m := userinfo(t, srv, api.AccessToken)
	if status != 401 || !strings.Contains(chal, `error="invalid_token"`) {
		t.Errorf("userinfo with a token for https://api.example only: %d %q %v; want 401 invalid_token", status, chal, m)
	}
	if _, ok := m["email"]; ok {
		t.Errorf("userinfo disclosed claims to a token for another resource: %v", m)
	}
}

// TestCrossSitePostLogoutGoesByGet: an RP-initiated logout by POST from the RP's site comes
// without the SameSite=Lax session cookie; it is not reported as done (no redirect to the RP
// with state) but sent on to the same request by GET, which the browser makes with its
// cookie, and which ends the session, tells the RP, and then sends the browser back with
// state (audit 17 #2).
func TestCrossSitePostLogoutGoesByGet(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	createUser(t, data, "alice", "alice-password")
	lr := newLogoutReceiver(t, srv.url)
	one := newRP(t, data, lr, "one")
	p := newPerson(t)
	tok1, id1, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password")
	var c1 struct {
		SID string `json:"sid"`
	}
	id1.Claims(&c1)
	hint, _ := tok1.Extra("id_token").(string)
	bye := "http://127.0.0.1:9/bye/one"
	form := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}, "state": {"x 1"}}
	if ar, page := p.get(srv.url + "/account/sessions"); ar.StatusCode != http.StatusOK || !strings.Contains(page, "end-all") {
		t.Fatalf("account sessions page while signed in: %d", ar.StatusCode)
	}

	// What a browser sends for a cross-site form POST: no SameSite=Lax cookie, a foreign Origin.
	req, _ := http.NewRequest("POST", srv.url+"/oauth2/logout", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://rp.example")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, err := url.Parse(res.Header.Get("Location"))
	if err != nil || res.StatusCode != http.StatusSeeOther || loc.Path != "/oauth2/logout" || loc.Host != "" {
		t.Fatalf("cross-site POST logout: %d Location=%q; want 303 to GET /oauth2/logout", res.StatusCode, res.Header.Get("Location"))
	}
	if got := loc.Query(); got.Encode() != form.Encode() {
		t.Fatalf("the GET's parameters = %v; want the POST's %v", got, form)
	}
	if got, _ := lr.received(); len(got) != 0 {
		t.Fatalf("logout tokens before the session was found: %v", got)
	}

	// The browser follows by GET (a top-level navigation: its Lax cookie goes along).
	res, _ = p.get(srv.url + loc.String())
	if l := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || l != bye+"?state=x+1" {
		t.Fatalf("GET logout with the cookie: %d Location=%q; want 303 to %s?state=x+1", res.StatusCode, l, bye)
	}
	if got := lr.waitLogouts(1); got[0].SID != c1.SID {
		t.Fatalf("logout token sid = %q, want %q", got[0].SID, c1.SID)
	}
	if ar, page := p.get(srv.url + "/account/sessions"); ar.StatusCode == http.StatusOK && strings.Contains(page, "end-all") {
		t.Errorf("still signed in after the logout: %d", ar.StatusCode)
	}
}

// TestRefreshWithoutOfflineAccessDiesWithSession: two sign-ins of the same app in the same
// session, one with offline_access and one without; once the session ends, the refresh token
// without offline_access is refused (invalid_grant, Back-Channel Logout 1.0 §2.7) and the one
// with it still refreshes (without an ID token). Before the end, both refresh.
func TestRefreshWithoutOfflineAccessDiesWithSession(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	createUser(t, data, "alice", "alice-password")
	lr := newLogoutReceiver(t, srv.url)
	one := newRP(t, data, lr, "one")
	p := newPerson(t)
	offline, _, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password")
	online, _, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password", oauth2.SetAuthURLParam("scope", "openid profile email"))
	if s, _ := online.Extra("scope").(string); strings.Contains(s, "offline_access") {
		t.Fatalf("second sign-in's scope %q; want it without offline_access", s)
	}
	offline = refreshOnce(t, srv, one, offline.RefreshToken)
	online = refreshOnce(t, srv, one, online.RefreshToken)

	hint, _ := offline.Extra("id_token").(string)
	p.get(srv.url + "/oauth2/logout?" + url.Values{"id_token_hint": {hint}}.Encode())
	lr.waitLogouts(1)

	conf := oauth2.Config{ClientID: one.info.ClientID, ClientSecret: one.info.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	_, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: online.RefreshToken}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("refresh without offline_access after logout: %v; want invalid_grant", err)
	}
	if tok := refreshOnce(t, srv, one, offline.RefreshToken); tok.Extra("id_token") != nil && tok.Extra("id_token") != "" {
		t.Errorf("refresh with offline_access after logout issued an ID token")
	}
}
