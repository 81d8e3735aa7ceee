package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/browsertest"
)

// signIn signs a new person in on srv through the login form and returns them, with their
// session cookie's value.
func signIn(t *testing.T, srv *server, username, password string) (*person, string) {
	t.Helper()
	p := newPerson(t)
	_, page := p.get(srv.url + "/login")
	f := formOf(page)
	f.Set("username", username)
	f.Set("password", password)
	if res, body := p.post(srv.url+"/login", f); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: %d %s", username, res.StatusCode, body)
	}
	u, _ := url.Parse(srv.url)
	for _, c := range p.hc.Jar.Cookies(u) {
		if c.Name == "rescind_session" {
			return p, c.Value
		}
	}
	t.Fatal("no session cookie after sign-in")
	return nil, ""
}

// replay asks srv for the apps page with nothing but the session cookie value, as someone who
// copied the cookie would: true if the page is served, false if the browser is sent to sign in.
func replay(t *testing.T, srv *server, cookie string) bool {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.url+"/account/apps", nil)
	req.AddCookie(&http.Cookie{Name: "rescind_session", Value: cookie})
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	switch {
	case res.StatusCode == http.StatusOK:
		return true
	case res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), "/login?"):
		return false
	}
	t.Fatalf("replayed cookie: %d %q", res.StatusCode, res.Header.Get("Location"))
	return false
}

// csrfOf returns the CSRF token of the person's session, from their sessions page.
func (p *person) csrfOf(srv *server) string {
	p.t.Helper()
	_, page := p.get(srv.url + "/account/sessions")
	tok := formOf(page).Get("csrf_token")
	if tok == "" {
		p.t.Fatalf("no CSRF token on the sessions page: %s", page)
	}
	return tok
}

// sessionEnds runs every way a person's sessions end, through instance a, and checks that a
// copy of each cookie ended is refused at once by a and by b (b may be a: one instance); b has
// seen each session in use before, so that its cache holds it. It also checks the answers of
// the operator's commands and that signing in again works where it should. It returns the
// cookies of the sessions it ended.
func sessionEnds(t *testing.T, a, b *server) []string {
	var ended []string
	createUser(t, a.dataDir, "alice", "alice-password")
	live := func(cookies ...string) {
		t.Helper()
		for _, c := range cookies {
			if !replay(t, a, c) || !replay(t, b, c) {
				t.Fatal("a live session is refused")
			}
		}
	}
	refused := func(what string, cookies ...string) {
		t.Helper()
		ended = append(ended, cookies...)
		for _, c := range cookies {
			if replay(t, a, c) {
				t.Fatalf("%s: the cookie still works on the instance where it happened", what)
			}
			if b != a {
				within(t, what+": refused by the other instance", func() bool { return !replay(t, b, c) })
			}
		}
	}
	userResult := func(out string) admin.UserResult {
		t.Helper()
		var r admin.UserResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r
	}

	// POST /logout.
	p, c := signIn(t, a, "alice", "alice-password")
	live(c)
	if res, _ := p.post(a.url+"/logout", url.Values{"csrf_token": {p.csrfOf(a)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.StatusCode)
	}
	refused("logout", c)

	// "Sign out everywhere", from one of two browsers.
	p1, c1 := signIn(t, a, "alice", "alice-password")
	_, c2 := signIn(t, b, "alice", "alice-password")
	live(c1, c2)
	if res, _ := p1.post(a.url+"/account/sessions/end-all", url.Values{"csrf_token": {p1.csrfOf(a)}}); res.StatusCode != http.StatusSeeOther ||
		res.Header.Get("Location") != "/login" {
		t.Fatalf("sign out everywhere: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	refused("sign out everywhere", c1, c2)

	// rescind user logout.
	_, c1 = signIn(t, a, "alice", "alice-password")
	_, c2 = signIn(t, b, "alice", "alice-password")
	live(c1, c2)
	var listed []admin.SessionInfo
	json.Unmarshal([]byte(cli(t, nil, "user", "sessions", "--data-dir", a.dataDir, "alice")), &listed)
	if len(listed) != 2 || listed[0].ID == "" || listed[0].UserAgent == "" || listed[0].Address != "127.0.0.1" {
		t.Fatalf("user sessions: %+v", listed)
	}
	if r := userResult(cli(t, nil, "user", "logout", "--data-dir", a.dataDir, "alice")); r.SessionsEnded != 2 {
		t.Fatalf("user logout: %+v", r)
	}
	refused("user logout", c1, c2)

	// rescind user set-password: the old password no longer signs in, the new one does.
	_, c1 = signIn(t, a, "alice", "alice-password")
	live(c1)
	if r := userResult(cliInput(t, "new-alice-password\n", "user", "set-password", "--data-dir", a.dataDir, "alice", "--password-stdin")); r.SessionsEnded != 1 {
		t.Fatalf("user set-password: %+v", r)
	}
	refused("user set-password", c1)
	old := newPerson(t)
	_, page := old.get(b.url + "/login")
	f := formOf(page)
	f.Set("username", "alice")
	f.Set("password", "alice-password")
	if res, _ := old.post(b.url+"/login", f); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the old password after set-password: %d", res.StatusCode)
	}

	// rescind user delete.
	_, c1 = signIn(t, b, "alice", "new-alice-password")
	live(c1)
	if r := userResult(cli(t, nil, "user", "delete", "--data-dir", a.dataDir, "alice")); r.SessionsEnded != 1 {
		t.Fatalf("user delete: %+v", r)
	}
	refused("user delete", c1)
	return ended
}

// stillRefused restarts srv with other session settings (longer sessions than those ended
// had) and checks that every ended session's cookie is still refused.
func stillRefused(t *testing.T, srv *server, env []string, ended []string) *server {
	t.Helper()
	srv.stop()
	srv = startServer(t, srv.dataDir, env, "--session-max", "8760h", "--session-idle", "8760h")
	for i, c := range ended {
		if replay(t, srv, c) {
			t.Fatalf("after a restart with longer sessions, ended session %d works again", i)
		}
	}
	return srv
}

// TestSessionsEnd: on one instance (SQLite), a cookie copied before a logout, "sign out
// everywhere", user logout, user set-password or user delete is refused afterwards, and still
// after a restart with longer session settings.
func TestSessionsEnd(t *testing.T) {
	srv := startServer(t, filepath.Join(shortTempDir(t), "d"), nil)
	stillRefused(t, srv, nil, sessionEnds(t, srv, srv))
}

// TestClusterSessionsEnd: the same with two instances on PostgreSQL, each end made through
// one: the other refuses the cookie at once, though it had the session in its cache, and after
// its restart.
func TestClusterSessionsEnd(t *testing.T) {
	env, _ := clusterEnv(t)
	dir := shortTempDir(t)
	a := startServer(t, filepath.Join(dir, "a"), env)
	b := startServer(t, filepath.Join(dir, "b"), env)
	stillRefused(t, b, env, sessionEnds(t, a, b))
}

// TestPublicClientConsent: a public client's second authorization request shows the consent
// page again; a first-party public client's and a confidential client's do not.
func TestPublicClientConsent(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")
	p, _ := signIn(t, srv, "alice", "alice-password")
	for _, tc := range []struct {
		name     string
		args     []string
		askAgain bool
	}{
		{"public", []string{"--public"}, true},
		{"first-party public", []string{"--public", "--first-party"}, false},
		{"confidential", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c admin.ClientInfo
			json.Unmarshal([]byte(cli(t, nil, append([]string{"client", "create", "--data-dir", data, "--name", tc.name,
				"--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "read"}, tc.args...)...)), &c)
			authURL := srv.url + "/oauth2/authorize?" + url.Values{"response_type": {"code"}, "client_id": {c.ClientID},
				"scope": {"read"}, "code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}.Encode()
			for i := range 2 {
				res, page := p.get(authURL)
				asked := res.StatusCode == http.StatusOK && strings.Contains(page, `name="decision"`)
				if want := i == 0 || tc.askAgain; asked != want {
					t.Fatalf("request %d: consent page %v, want %v (%d)", i+1, asked, want, res.StatusCode)
				}
				if !asked {
					if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "code=") {
						t.Fatalf("request %d: %d %q; want a code", i+1, res.StatusCode, loc)
					}
					continue
				}
				f := formOf(page)
				f.Set("decision", "allow")
				if res, _ := p.post(srv.url+"/oauth2/authorize", f); !strings.Contains(res.Header.Get("Location"), "code=") {
					t.Fatalf("consent: %d %q", res.StatusCode, res.Header.Get("Location"))
				}
			}
		})
	}
}

var otherSessionButton = regexp.MustCompile(`aria-label="Sign out session ([^"]+)"`)

// TestSessionsInBrowser: a person signs in on two browsers (separate profiles), sees both
// sessions on the sessions page of one, signs the other out with its button, and the other
// browser, which still holds its cookie, is sent to sign in; the cookie replayed is refused.
func TestSessionsInBrowser(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")

	browser := browsertest.Start(t)
	other, cancelOther := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	defer cancelOther()
	if err := chromedp.Do(other, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	otherCtx, cancel2 := context.WithTimeout(other, 90*time.Second)
	defer cancel2()

	signInBrowser := func(ctx context.Context) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(srv.url+"/login?next=%2Faccount%2Fsessions"),
			chromedp.WaitVisible(chromedp.CSS(`#username`)),
			chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
			chromedp.SendKeys(chromedp.CSS(`#password`), "alice-password"),
			chromedp.Click(chromedp.CSS(`button[type=submit]`)),
			chromedp.WaitVisible(chromedp.CSS(`#sign-out-everywhere`))); err != nil {
			t.Fatalf("signing in: %v", err)
		}
	}
	sessionCookie := func(ctx context.Context) string {
		t.Helper()
		cookies, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
			res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.url}})
			return res.Cookies, err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cookies {
			if c.Name == "rescind_session" {
				return c.Value
			}
		}
		return ""
	}
	signInBrowser(otherCtx)
	signInBrowser(ctx)
	otherCookie := sessionCookie(otherCtx)
	if otherCookie == "" || otherCookie == sessionCookie(ctx) {
		t.Fatal("the two browsers do not hold two sessions")
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.url+"/account/sessions"), chromedp.WaitVisible(chromedp.CSS(`table`))); err != nil {
		t.Fatal(err)
	}
	html, err := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	buttons := otherSessionButton.FindAllStringSubmatch(html, -1)
	if strings.Count(html, `data-session=`) != 2 || strings.Count(html, "(this session)") != 1 || len(buttons) != 1 {
		t.Fatalf("the sessions page does not show the two sessions, this one marked:\n%s", html)
	}
	label := `button[aria-label="Sign out session ` + buttons[0][1] + `"]`
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(label)), chromedp.WaitNotPresent(chromedp.CSS(label))); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("tr[data-session]").length`)); err != nil || n != 1 {
		t.Fatalf("after signing the other session out: %d rows (%v)", n, err)
	}

	// The other browser still holds its cookie, and is sent to sign in.
	if sessionCookie(otherCtx) != otherCookie {
		t.Fatal("the other browser lost its cookie: the test would prove nothing")
	}
	if err := chromedp.Do(otherCtx, chromedp.Navigate(srv.url+"/account/sessions"), chromedp.WaitVisible(chromedp.CSS(`#username`))); err != nil {
		t.Fatal(err)
	}
	path, err := chromedp.Run(otherCtx, chromedp.Evaluate[string](`location.pathname`))
	if err != nil || path != "/login" {
		t.Fatalf("the signed-out browser is at %q (%v); want the login page", path, err)
	}
	if replay(t, srv, otherCookie) {
		t.Fatal("the signed-out session's cookie, replayed, still works")
	}
	// This browser is still signed in.
	if replay(t, srv, sessionCookie(ctx)) == false {
		t.Fatal("signing the other session out ended this one")
	}
}

// TestLoginNext: a sign-in link's next, as an attacker would write it in a URL (tab, newline,
// backslash, their percent-encoded forms, "//", schemes), sends the browser after sign-in to a
// path of this server only: hostile values to the apps page, a local path as it is.
func TestLoginNext(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")
	for _, tc := range []struct{ query, want string }{
		{"next=/%09/evil.example/x", "/account/apps"},
		{"next=/%0A/evil.example/x", "/account/apps"},
		{"next=/%0D%0A/evil.example", "/account/apps"},
		{"next=/%5Cevil.example", "/account/apps"},
		{"next=%5C%5Cevil.example", "/account/apps"},
		{"next=//evil.example", "/account/apps"},
		{"next=%2F%2Fevil.example", "/account/apps"},
		{"next=/%2F%2Fevil.example", "/account/apps"}, // "///evil.example" once the query is decoded
		{"next=%2Faccount%2Fsessions", "/account/sessions"},
		{"next=%09//evil.example", "/account/apps"},
		{"next=https://evil.example/", "/account/apps"},
		{"next=https:evil.example", "/account/apps"},
		{"next=javascript:alert(1)", "/account/apps"},
		{"next=data:text/html,x", "/account/apps"},
		{"next=/%00/evil.example", "/account/apps"},
		{"next=", "/account/apps"},
		{"next=/account/sessions", "/account/sessions"},
		{"next=" + url.QueryEscape("/oauth2/authorize?client_id=x&state=a%2Fb"), "/oauth2/authorize?client_id=x&state=a%2Fb"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			p := newPerson(t)
			_, page := p.get(srv.url + "/login?" + tc.query)
			f := formOf(page)
			f.Set("username", "alice")
			f.Set("password", "alice-password")
			res, _ := p.post(srv.url+"/login", f)
			if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != tc.want {
				t.Fatalf("%d Location %q; want %q", res.StatusCode, loc, tc.want)
			}
		})
	}
}
