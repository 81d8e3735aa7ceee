package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/browsertest"
)

// TestConnectedAppsInBrowser: a person logs in, approves two apps, sees both on the connected
// apps page, revokes one with its button, and that app's tokens die while the other's live.
func TestConnectedAppsInBrowser(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")

	// The apps' redirect URI: a callback server that records the codes it receives.
	var mu sync.Mutex
	codes := map[string]string{}
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		codes[r.URL.Query().Get("state")] = r.URL.Query().Get("code")
		mu.Unlock()
		w.Write([]byte("<!doctype html><title>app</title><p id=done>signed in</p>"))
	}))
	defer cb.Close()

	mk := func(name string) admin.ClientInfo {
		var c admin.ClientInfo
		json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", name, "--grant-types",
			"authorization_code,refresh_token", "--redirect-uri", cb.URL+"/cb", "--scope", "photos.read")), &c)
		return c
	}
	one, two := mk("Photo Printer"), mk("Calendar Sync")
	var rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)
	cfgOf := func(c admin.ClientInfo) oauth2.Config {
		return oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: cb.URL + "/cb", Scopes: []string{"photos.read"},
			Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token"}}
	}

	browser := browsertest.Start(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()

	approve := func(c admin.ClientInfo, state string, login bool) *oauth2.Token {
		t.Helper()
		cfg := cfgOf(c)
		v := oauth2.GenerateVerifier()
		steps := []chromedp.Action[chromedp.Void]{chromedp.Navigate(cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(v)))}
		if login {
			steps = append(steps,
				chromedp.WaitVisible(chromedp.CSS(`#username`)),
				chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
				chromedp.SendKeys(chromedp.CSS(`#password`), "alice-password"),
				chromedp.Click(chromedp.CSS(`button[type=submit]`)))
		}
		steps = append(steps,
			chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)),
			chromedp.Click(chromedp.CSS(`button[value=allow]`)),
			chromedp.WaitVisible(chromedp.CSS(`#done`)))
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("approving %s: %v", c.Name, err)
		}
		mu.Lock()
		code := codes[state]
		mu.Unlock()
		tok, err := cfg.Exchange(context.Background(), code, oauth2.VerifierOption(v))
		if err != nil {
			t.Fatalf("exchanging %s's code: %v", c.Name, err)
		}
		return tok
	}
	t1 := approve(one, "s1", true)
	t2 := approve(two, "s2", false)

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.url+"/account/apps"), chromedp.WaitVisible(chromedp.CSS(`table`))); err != nil {
		t.Fatal(err)
	}
	page, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page, "Photo Printer") || !strings.Contains(page, "Calendar Sync") || !strings.Contains(page, "photos.read") {
		t.Fatalf("apps page does not list both apps:\n%s", page)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button[aria-label="Revoke access for Photo Printer"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`button[aria-label="Revoke access for Photo Printer"]`))); err != nil {
		t.Fatal(err)
	}
	if page, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`main`))); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(page, "Photo Printer") || !strings.Contains(page, "Calendar Sync") {
		t.Fatalf("after revoking, the page shows:\n%s", page)
	}
	// Access tokens as the resource server sees them; refresh tokens as their own app (no one
	// else may introspect them).
	active := func(tok string) bool { return srv.active(rs.ClientID, rs.ClientSecret, tok) }
	if active(t1.AccessToken) || srv.active(one.ClientID, one.ClientSecret, t1.RefreshToken) {
		t.Fatal("the revoked app's tokens are still active")
	}
	if !active(t2.AccessToken) || !srv.active(two.ClientID, two.ClientSecret, t2.RefreshToken) {
		t.Fatal("the other app's tokens stopped working")
	}
}
