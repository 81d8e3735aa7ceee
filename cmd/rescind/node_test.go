package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/internal/testenv"
	"github.com/rescind/rescind/resource"
)

// nodeProject is the Node.js interop project: package.json and package-lock.json pin
// openid-client and oauth4webapi; .ci/run installs them with npm ci.
const nodeProject = "testdata/node"

// requireNode returns the node binary, or skips the test (fails it when RESCIND_TEST_REQUIRE
// names node) if node or the project's node_modules is missing.
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		testenv.Unavailable(t, "node", "node is not installed")
	}
	for _, m := range []string{"openid-client", "oauth4webapi"} {
		if _, err := os.Stat(filepath.Join(nodeProject, "node_modules", m, "package.json")); err != nil {
			testenv.Unavailable(t, "node", m+" is not installed: run npm ci in cmd/rescind/"+nodeProject)
		}
	}
	return node
}

// nodeResult is what dpop.mjs reports.
type nodeResult struct {
	Lib string `json:"lib"`
	CC  struct {
		TokenType   string `json:"token_type"`
		Resource    int    `json:"resource"`
		AfterRevoke int    `json:"after_revoke"`
	} `json:"cc"`
	Code struct {
		TokenType          string `json:"token_type"`
		Refresh            bool   `json:"refresh"`
		Resource           int    `json:"resource"`
		RefreshedTokenType string `json:"refreshed_token_type"`
		RefreshedResource  int    `json:"refreshed_resource"`
	} `json:"code"`
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	JKT          string `json:"jkt"`
	Seen         struct {
		Requests    map[string]int `json:"requests"`
		NonceErrors int            `json:"nonceErrors"`
	} `json:"seen"`
}

// TestNodeDPoPInterop: openid-client (DPoP option) and oauth4webapi (DPoP() handle) get
// DPoP-bound tokens from the real server through client credentials and the code flow (a public
// client, whose refresh token is bound and whose code is bound by dpop_jkt), refresh them, call a resource server that uses the
// resource middleware, retry when the server and the resource server ask for a nonce, and
// revoke. Copies of their tokens without the key are refused by the middleware, by
// introspection-based checks and at the token endpoint.
func TestNodeDPoPInterop(t *testing.T) {
	node := requireNode(t)
	dir := shortTempDir(t)
	data := filepath.Join(dir, "d")
	// Nonces everywhere, so that both libraries' retries are exercised.
	srv := startServer(t, data, nil, "--dpop-nonce", "always")
	createUser(t, data, "alice", "a long password")
	var cc, pub, rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "node-cc", "--scope", "read")), &cc)
	const redirect = "http://127.0.0.1/callback"
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "node-spa", "--public", "--scope", "read",
		"--redirect-uri", redirect)), &pub)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)

	// The resource server: the middleware, introspecting opaque tokens without caching (so a
	// revocation shows at once), demanding its own nonces.
	key := make([]byte, 32)
	copy(key, "resource server nonce key, 32 b.")
	nonces, _ := dpop.NewNonces(key, time.Minute)
	api := httptest.NewUnstartedServer(nil)
	mw, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, ClientID: rs.ClientID, ClientSecret: rs.ClientSecret,
		IntrospectionCacheTTL: time.Nanosecond, DPoPNonces: nonces, BaseURL: "http://" + api.Listener.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	api.Config.Handler = mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"photos":["cat.jpg"]}`)
	}))
	api.Start()
	defer api.Close()

	for _, lib := range []string{"openid-client", "oauth4webapi"} {
		t.Run(lib, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "dpop.mjs", lib)
			cmd.Dir = nodeProject
			cmd.Env = append(os.Environ(), "ISSUER="+srv.url, "CC_CLIENT_ID="+cc.ClientID, "CC_CLIENT_SECRET="+cc.ClientSecret,
				"PUBLIC_CLIENT_ID="+pub.ClientID, "REDIRECT_URI="+redirect, "RESOURCE_URL="+api.URL+"/photos")
			var stderr syncBuffer
			cmd.Stderr = &stderr
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cancel()
			lines := bufio.NewScanner(stdout)
			lines.Buffer(make([]byte, 64<<10), 1<<20)
			next := func() map[string]json.RawMessage {
				t.Helper()
				if !lines.Scan() {
					t.Fatalf("%s stopped: %v\n%s", lib, lines.Err(), stderr.String())
				}
				var m map[string]json.RawMessage
				if err := json.Unmarshal(lines.Bytes(), &m); err != nil {
					t.Fatalf("%s printed %q", lib, lines.Text())
				}
				return m
			}

			// The person signs in and consents; the redirect goes back to the script.
			var authURL, verifier string
			start := next()
			json.Unmarshal(start["authorize"], &authURL)
			json.Unmarshal(start["verifier"], &verifier)
			if !strings.Contains(authURL, "dpop_jkt=") {
				t.Fatalf("%s's authorization request has no dpop_jkt: %s", lib, authURL)
			}
			q := newPerson(t).authorize(srv.url, authURL, "alice", "a long password")
			if q.Get("code") == "" {
				t.Fatalf("no code: %v", q)
			}
			// Someone who intercepted the code and even the PKCE verifier, but has not the key
			// (RFC 9449 §10): refused, and the code is left to the client.
			thief, _ := dpop.GenerateKey(dpop.ES256)
			codeForm := func() url.Values {
				return url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "code_verifier": {verifier},
					"redirect_uri": {redirect}}
			}
			tp, _ := thief.Proof("POST", srv.url+"/oauth2/token", dpop.ProofOptions{})
			nonce := tokenWithProofs(t, srv.url, pub.ClientID, "", codeForm(), tp).header.Get("DPoP-Nonce")
			tp, _ = thief.Proof("POST", srv.url+"/oauth2/token", dpop.ProofOptions{Nonce: nonce})
			if rep := tokenWithProofs(t, srv.url, pub.ClientID, "", codeForm(), tp); rep.status != 400 || rep.code() != "invalid_grant" {
				t.Fatalf("the code with a thief's key: %d %v", rep.status, rep.body)
			}
			io.WriteString(stdin, redirect+"?"+q.Encode()+"\n")

			var r nodeResult
			if err := json.Unmarshal(next()["result"], &r); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: client credentials %+v, code flow %+v, requests %+v", lib, r.CC, r.Code, r.Seen)
			if !strings.EqualFold(r.CC.TokenType, "DPoP") || r.CC.Resource != 200 || r.CC.AfterRevoke != 401 {
				t.Fatalf("client credentials: %+v", r.CC)
			}
			if !strings.EqualFold(r.Code.TokenType, "DPoP") || !r.Code.Refresh || r.Code.Resource != 200 ||
				!strings.EqualFold(r.Code.RefreshedTokenType, "DPoP") || r.Code.RefreshedResource != 200 {
				t.Fatalf("code flow: %+v", r.Code)
			}
			// Nonces were asked for and answered: at the token endpoint (client credentials, code,
			// refresh: at least the first of each key's requests) and at the resource server.
			if r.Seen.NonceErrors < 2 || r.Seen.Requests["/oauth2/token"] < 4 {
				t.Fatalf("no nonce retries seen: %+v", r.Seen)
			}

			// Copies of the tokens, without the key.
			code, body := srv.post("/oauth2/introspect", rs.ClientID, rs.ClientSecret, url.Values{"token": {r.AccessToken}})
			if code != 200 || !strings.Contains(string(body), `"cnf":{"jkt":"`+r.JKT+`"}`) {
				t.Fatalf("introspection of %s's token: %d %s", lib, code, body)
			}
			res := getWith(t, api.URL+"/photos", "Bearer "+r.AccessToken)
			if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "invalid_token") {
				t.Fatalf("copied token as Bearer: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
			thief, _ = dpop.GenerateKey(dpop.ES256)
			nonce = res.Header.Get("DPoP-Nonce")
			if nonce == "" {
				nonce = nonces.Current(time.Now())
			}
			p, _ := thief.Proof("GET", api.URL+"/photos", dpop.ProofOptions{AccessToken: r.AccessToken, Nonce: nonce})
			res = getWith(t, api.URL+"/photos", "DPoP "+r.AccessToken, p)
			if res.StatusCode != 401 || !strings.Contains(res.Header.Get("WWW-Authenticate"), "invalid_dpop_proof") {
				t.Fatalf("copied token with a thief's proof: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
			// The refresh token, without the key: refused, and not used up.
			refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}
			if rep := tokenWithProofs(t, srv.url, pub.ClientID, "", refresh); rep.status != 400 || rep.code() != "invalid_grant" {
				t.Fatalf("copied refresh token: %d %v", rep.status, rep.body)
			}

			// Revoke (the script revokes the refresh token: the grant dies).
			io.WriteString(stdin, "revoke\n")
			if _, ok := next()["revoked"]; !ok {
				t.Fatal("no revocation")
			}
			code, body = srv.post("/oauth2/introspect", rs.ClientID, rs.ClientSecret, url.Values{"token": {r.AccessToken}})
			if code != 200 || string(body) != `{"active":false}` {
				t.Fatalf("after revoking the refresh token: %d %s", code, body)
			}
		})
	}
}

// getWith sends GET u with the Authorization header and DPoP proofs.
func getWith(t *testing.T, u, auth string, proofs ...string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", auth)
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}
