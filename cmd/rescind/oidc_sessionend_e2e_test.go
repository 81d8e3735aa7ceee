package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/browsertest"
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

// TestCrossSitePostLogoutResubmitsByPost: an RP-initiated logout by POST from the RP's site
// comes without the SameSite=Lax session cookie; it is not reported as done (no redirect to
// the RP with state) but answered with a page of this server that posts the same request again
// (a script its Content-Security-Policy allows by hash), whose POST is same-site, carries the
// cookie, ends the session, tells the RP, and sends the browser back with state (audit 17 #2).
// The id_token_hint (the person's name and email) never goes into a URL (re-audit 3A #4); a
// marked POST from another site is answered with the page again.
func TestCrossSitePostLogoutResubmitsByPost(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	cliInput(t, "alice-password\n", "user", "create", "--data-dir", data, "--username", "alice", "--password-stdin",
		"--name", "Alice Liddell", "--email", "alice@example.com")
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
	crossSite := func(form url.Values) (*http.Response, string) {
		req, _ := http.NewRequest("POST", srv.url+"/oauth2/logout", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://rp.example")
		req.Header.Set("Sec-Fetch-Site", "cross-site")
		return newPerson(t).do(req)
	}
	res, page := crossSite(form)
	fields := resubmitFields(t, res, page)
	for k, v := range res.Header {
		if strings.Contains(strings.Join(v, " "), hint[:40]) {
			t.Fatalf("the id_token_hint is in the answer's %s header", k)
		}
	}
	want := url.Values{"logout_resubmitted": {"1"}}
	for k, v := range form {
		want[k] = v
	}
	if fields.Encode() != want.Encode() {
		t.Fatalf("the page posts %v; want the request's parameters and the mark %v", fields, want)
	}
	if got, _ := lr.received(); len(got) != 0 {
		t.Fatalf("logout tokens before the session was found: %v", got)
	}
	// The mark sent from another site: the page again, nothing reported.
	res, page = crossSite(fields)
	resubmitFields(t, res, page)

	// The page's POST, from this origin: same-site, so the Lax cookie goes along.
	req, _ := http.NewRequest("POST", srv.url+"/oauth2/logout", strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", srv.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, _ = p.do(req)
	if l := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || l != bye+"?state=x+1" {
		t.Fatalf("the resubmitted POST with the cookie: %d Location=%q; want 303 to %s?state=x+1", res.StatusCode, l, bye)
	}
	if got := lr.waitLogouts(1); got[0].SID != c1.SID {
		t.Fatalf("logout token sid = %q, want %q", got[0].SID, c1.SID)
	}
	if ar, page := p.get(srv.url + "/account/sessions"); ar.StatusCode == http.StatusOK && strings.Contains(page, "end-all") {
		t.Errorf("still signed in after the logout: %d", ar.StatusCode)
	}
}

var (
	resubmitInput  = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)
	resubmitScript = regexp.MustCompile(`<script>([^<]*)</script>`)
)

// resubmitFields checks that res and page are the page that posts a logout request again (200,
// no redirect, a form posting to /oauth2/logout, its one script allowed by hash by the
// Content-Security-Policy and nothing else, no form-action) and returns the fields it posts.
func resubmitFields(t *testing.T, res *http.Response, page string) url.Values {
	t.Helper()
	if res.StatusCode != http.StatusOK || res.Header.Get("Location") != "" ||
		!strings.Contains(page, `<form id="resubmit" method="post" action="/oauth2/logout">`) {
		t.Fatalf("cross-site POST logout: %d Location=%q; want the page that posts it again:\n%s", res.StatusCode, res.Header.Get("Location"), page)
	}
	m := resubmitScript.FindAllStringSubmatch(page, -1)
	if len(m) != 1 {
		t.Fatalf("the page has %d scripts, want 1:\n%s", len(m), page)
	}
	sum := sha256.Sum256([]byte(m[0][1]))
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"';") {
		t.Fatalf("Content-Security-Policy %q does not allow exactly the page's script %q", csp, m[0][1])
	}
	if strings.Contains(csp, "form-action") {
		// Chromium applies it to the 303 to the app that follows the submission (re-audit 4 #1).
		t.Fatalf("Content-Security-Policy %q restricts form-action", csp)
	}
	v := url.Values{}
	for _, f := range resubmitInput.FindAllStringSubmatch(page, -1) {
		v.Add(f[1], html.UnescapeString(f[2]))
	}
	return v
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

// anotherSite listens on loopback and returns its origin under the name localhost (another site
// than the server's 127.0.0.1, for the browser), and serve, which serves a handler there until
// the test ends.
func anotherSite(t *testing.T) (origin string, serve func(http.Handler)) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "http://localhost:" + port, func(h http.Handler) {
		hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
	}
}

// TestCrossSitePostLogoutInChromium: a real Chromium, signed in on the server
// (http://127.0.0.1:P), visits a page of another site (http://localhost:Q) that auto-submits an
// RP-initiated logout by POST. The server's page posts it again (its script allowed by the
// Content-Security-Policy's hash), the same-site POST carries the Lax session cookie, and the
// person is asked to confirm (the request names no id_token_hint): never told "You are signed
// out" while the session lives, never left on the intermediate page (re-audit 3A #4).
func TestCrossSitePostLogoutInChromium(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")

	other, serve := anotherSite(t)
	serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id=f method=post action="%s/oauth2/logout"><input name=state value=x></form>`+
			`<script>document.getElementById('f').submit()</script>`, srv.url)
	}))

	browser := browsertest.Start(t)
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(srv.url+"/account/sessions"),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "alice-password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`table`)),
	); err != nil {
		t.Fatal(err)
	}
	// The confirmation page (its "Sign out" button) within the deadline; not "You are signed
	// out", not the intermediate page.
	if err := chromedp.Do(ctx, chromedp.Navigate(other+"/"), chromedp.WaitVisible(chromedp.CSS(`button[value=logout]`))); err != nil {
		shot, cancel := context.WithTimeout(browser, 5*time.Second)
		defer cancel()
		body, _ := chromedp.Run(shot, chromedp.Text(chromedp.CSS(`body`)))
		t.Fatalf("after the cross-site POST: %v; the page says %q", err, body)
	}
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`body`)))
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if !strings.HasPrefix(loc, srv.url+"/oauth2/logout") || !strings.Contains(body, "Signed in as alice") || strings.Contains(body, "You are signed out") {
		t.Fatalf("after the cross-site POST: at %s: %q; want the confirmation page for alice", loc, body)
	}
}

// TestCrossSitePostLogoutReturnsToRPInChromium: a real Chromium signs in to a relying party on
// another site (http://localhost:Q; the server is http://127.0.0.1:P) by the code flow, then the
// RP's page auto-submits an RP-initiated logout by POST with the ID token as id_token_hint, its
// registered post_logout_redirect_uri and a state. The server's page posts it again from its own
// origin (the Lax cookie goes along), the session ends, and the 303 to the RP's URI must be
// followed: a form-action directive in that page's Content-Security-Policy would make Chromium
// block the redirect after the form submission and leave the person on "Signing out…"
// (re-audit 4 #1). The RP gets its state back, and the server's session is gone.
func TestCrossSitePostLogoutReturnsToRPInChromium(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")

	site, serve := anotherSite(t)
	var info admin.ClientInfo
	if err := json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "rp", "--scope", "openid profile",
		"--redirect-uri", site+"/cb", "--post-logout-redirect-uri", site+"/bye")), &info); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		code     string
		hint     string
		byeState []string
	)
	serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/cb":
			code = r.URL.Query().Get("code")
			fmt.Fprint(w, `<!doctype html><p id=signedin>signed in at the RP</p>`)
		case "/logout":
			fmt.Fprintf(w, `<!doctype html><form id=f method=post action="%s/oauth2/logout">`+
				`<input name=id_token_hint value="%s"><input name=post_logout_redirect_uri value="%s"><input name=state value="s 1">`+
				`</form><script>document.getElementById('f').submit()</script>`, srv.url, html.EscapeString(hint), site+"/bye")
		case "/bye":
			byeState = append(byeState, r.URL.Query().Get("state"))
			fmt.Fprint(w, `<!doctype html><p id=bye>back at the RP</p>`)
		default:
			http.NotFound(w, r)
		}
	}))

	conf := oauth2.Config{ClientID: info.ClientID, ClientSecret: info.ClientSecret, RedirectURL: site + "/cb", Scopes: []string{"openid", "profile"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	verifier := oauth2.GenerateVerifier()

	browser := browsertest.Start(t)
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx,
		chromedp.Navigate(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))),
		chromedp.WaitVisible(chromedp.CSS(`#username`)),
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "alice-password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)),
		chromedp.Click(chromedp.CSS(`button[value=allow]`)),
		chromedp.WaitVisible(chromedp.CSS(`#signedin`)),
	); err != nil {
		t.Fatalf("sign-in at the RP: %v", err)
	}
	mu.Lock()
	c := code
	mu.Unlock()
	tok, err := conf.Exchange(context.Background(), c, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	mu.Lock()
	hint, _ = tok.Extra("id_token").(string)
	mu.Unlock()
	if hint == "" {
		t.Fatal("no ID token")
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(site+"/logout"), chromedp.WaitVisible(chromedp.CSS(`#bye`))); err != nil {
		shot, cancel := context.WithTimeout(browser, 5*time.Second)
		defer cancel()
		loc, _ := chromedp.Run(shot, chromedp.Location())
		body, _ := chromedp.Run(shot, chromedp.Text(chromedp.CSS(`body`)))
		t.Fatalf("after the cross-site logout POST: %v; at %s, the page says %q; want the RP's post_logout_redirect_uri", err, loc, body)
	}
	mu.Lock()
	got := slices.Clone(byeState)
	mu.Unlock()
	if !slices.Equal(got, []string{"s 1"}) {
		t.Fatalf("the RP's post_logout_redirect_uri got state %q; want [\"s 1\"]", got)
	}
	// Signed out: the account pages ask for a sign-in again.
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.url+"/account/sessions"), chromedp.WaitVisible(chromedp.CSS(`#username`))); err != nil {
		t.Fatalf("the account pages after the logout: %v; want the sign-in form", err)
	}
}
