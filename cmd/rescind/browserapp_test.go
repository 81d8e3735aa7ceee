package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/browsertest"
	"github.com/rescind/rescind/internal/testenv"
)

// browserApp is a single-page app that uses oauth4webapi, from another origin than the server
// (ISSUER stands for the server's URL). On its first load it registers itself (RFC 7591: a JSON
// POST, so a CORS preflight) and goes to the authorization endpoint; back with the code, it
// exchanges it at the token endpoint, tries to read the introspection endpoint (which must not
// let it), revokes its tokens, and reports in #result.
const browserApp = `<!doctype html>
<title>Browser app</title>
<p>a browser app</p>
<script type="module">
import * as oauth from '/oauth4webapi.js';
const issuer = new URL('ISSUER');
const o = { [oauth.allowInsecureRequests]: true };
const redirect = location.origin + '/app.html';
const done = (r) => {
  const el = document.createElement('pre');
  el.id = 'result';
  el.textContent = JSON.stringify(r);
  document.body.append(el);
};
try {
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...o, algorithm: 'oauth2' }));
  const back = new URLSearchParams(location.search);
  if (!back.has('code') && !back.has('error')) {
    const reg = await oauth.processDynamicClientRegistrationResponse(await oauth.dynamicClientRegistrationRequest(as, {
      client_name: 'Browser App', redirect_uris: [redirect], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], scope: 'read' }, o));
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    sessionStorage.setItem('app', JSON.stringify({ client_id: reg.client_id, verifier, state }));
    const u = new URL(as.authorization_endpoint);
    for (const [k, v] of Object.entries({ client_id: reg.client_id, response_type: 'code', redirect_uri: redirect, scope: 'read', state,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256' })) u.searchParams.set(k, v);
    location.assign(u.href);
  } else {
    const saved = JSON.parse(sessionStorage.getItem('app'));
    const client = { client_id: saved.client_id };
    const params = oauth.validateAuthResponse(as, client, new URL(location.href), saved.state);
    const tok = await oauth.processAuthorizationCodeResponse(as, client,
      await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirect, saved.verifier, o));
    let introspection;
    try {
      const r = await fetch(as.introspection_endpoint, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=' + encodeURIComponent(tok.access_token) });
      introspection = 'readable: ' + r.status + ' ' + (await r.text());
    } catch (e) {
      introspection = 'blocked';
    }
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.None(), tok.refresh_token, o));
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, oauth.None(), tok.access_token, o));
    done({ client_id: client.client_id, access_token: tok.access_token, token_type: tok.token_type, introspection, revoked: true });
  }
} catch (e) {
  done({ error: String(e) + (e.cause ? ' ' + JSON.stringify(e.cause) : '') });
}
</script>
`

// browserAppResult is what the page reports.
type browserAppResult struct {
	ClientID      string `json:"client_id"`
	AccessToken   string `json:"access_token"`
	TokenType     string `json:"token_type"`
	Introspection string `json:"introspection"`
	Revoked       bool   `json:"revoked"`
	Error         string `json:"error"`
}

// TestBrowserApp: a page on another origin (a second loopback port) registers itself (a CORS
// preflight, for the JSON), runs oauth4webapi's code flow against the server in a real browser,
// and revokes its tokens; it cannot read the introspection endpoint's answers. Nothing it does
// needs credentials mode.
func TestBrowserApp(t *testing.T) {
	requireNode(t)
	lib := filepath.Join(nodeProject, "node_modules", "oauth4webapi", "build", "index.js")
	if _, err := os.Stat(lib); err != nil {
		testenv.Unavailable(t, "node", "oauth4webapi is not installed: run npm ci in cmd/rescind/"+nodeProject)
	}
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--registration", "open", "--access-log")
	createUser(t, data, "alice", "a long password")
	var rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /oauth4webapi.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		http.ServeFile(w, r, lib)
	})
	mux.HandleFunc("GET /app.html", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(strings.Replace(browserApp, "ISSUER", srv.url, 1)))
	})
	app := httptest.NewServer(mux)
	defer app.Close()

	browser := browsertest.Start(t)
	ctx, cancel := context.WithTimeout(browser, 90*time.Second)
	defer cancel()
	var out string
	err := chromedp.Do(ctx,
		chromedp.Navigate(app.URL+"/app.html"),
		chromedp.WaitVisible(chromedp.CSS(`#username`)), // registered, then sent to sign in
		chromedp.SendKeys(chromedp.CSS(`#username`), "alice"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "a long password"),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value=allow]`)),
		chromedp.Click(chromedp.CSS(`button[value=allow]`)),
		chromedp.WaitReady(chromedp.CSS(`#result`)),
	)
	if err != nil {
		t.Fatalf("the browser app: %v\n%s", err, srv.log.String())
	}
	if out, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#result`))); err != nil {
		t.Fatal(err)
	}
	var r browserAppResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("the page reported %q", out)
	}
	t.Logf("the page reported: client %s, token type %s, introspection %s, revoked %v", r.ClientID, r.TokenType, r.Introspection, r.Revoked)
	if r.Error != "" || r.ClientID == "" || r.AccessToken == "" || !strings.EqualFold(r.TokenType, "bearer") || !r.Revoked {
		t.Fatalf("the page: %+v", r)
	}
	if r.Introspection != "blocked" {
		t.Fatalf("the page read the introspection endpoint: %s", r.Introspection)
	}
	if srv.active(rs.ClientID, rs.ClientSecret, r.AccessToken) {
		t.Fatal("the page's revoked token is active")
	}
	log := srv.log.String()
	for _, want := range []string{"method=OPTIONS path=/oauth2/register status=204", "method=POST path=/oauth2/register status=201",
		"method=POST path=/oauth2/token status=200", "method=POST path=/oauth2/revoke status=200"} {
		if !strings.Contains(log, want) {
			t.Errorf("the access log has no %q", want)
		}
	}
}
