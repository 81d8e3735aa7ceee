package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/testenv"
)

// nodeProc is a script of the Node.js project run by a test: it prints JSON lines and reads
// lines on stdin.
type nodeProc struct {
	t      *testing.T
	name   string
	stdin  io.WriteCloser
	lines  *bufio.Scanner
	stderr *syncBuffer
}

// runNode starts node on script (in nodeProject) with env and args; it is killed when the test
// ends, or after a minute.
func runNode(t *testing.T, script string, env []string, args ...string) *nodeProc {
	t.Helper()
	node := requireNode(t)
	if _, err := os.Stat(filepath.Join(nodeProject, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		testenv.Unavailable(t, "node", "@modelcontextprotocol/sdk is not installed: run npm ci in cmd/rescind/"+nodeProject)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	cmd := exec.CommandContext(ctx, node, append([]string{script}, args...)...)
	cmd.Dir = nodeProject
	cmd.Env = append(os.Environ(), env...)
	p := &nodeProc{t: t, name: script, stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	p.stdin, _ = cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	p.lines = bufio.NewScanner(stdout)
	p.lines.Buffer(make([]byte, 64<<10), 1<<20)
	return p
}

// next returns the script's next line, decoded.
func (p *nodeProc) next() map[string]json.RawMessage {
	p.t.Helper()
	if !p.lines.Scan() {
		p.t.Fatalf("%s stopped: %v\n%s", p.name, p.lines.Err(), p.stderr.String())
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p.lines.Bytes(), &m); err != nil {
		p.t.Fatalf("%s printed %q", p.name, p.lines.Text())
	}
	return m
}

// field decodes member k of a line into v.
func field(t *testing.T, m map[string]json.RawMessage, k string, v any) {
	t.Helper()
	if err := json.Unmarshal(m[k], v); err != nil {
		t.Fatalf("member %s of %v: %v", k, m, err)
	}
}

func (p *nodeProc) send(line string) { io.WriteString(p.stdin, line+"\n") }

// jwtAudience returns the aud claim of a JWT, as a list.
func jwtAudience(t *testing.T, tok string) []string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40s", tok)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Aud json.RawMessage `json:"aud"`
	}
	json.Unmarshal(payload, &c)
	return audience(t, c.Aud)
}

// audience decodes an aud member: a string or an array of strings.
func audience(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		t.Fatalf("aud %s", raw)
	}
	return many
}

// introspectedAudience returns the aud of an active token, as the resource server for every
// audience (rs) is told.
func (s *server) introspectedAudience(t *testing.T, rs admin.ClientInfo, tok string) []string {
	t.Helper()
	code, body := s.post("/oauth2/introspect", rs.ClientID, rs.ClientSecret, url.Values{"token": {tok}})
	var in struct {
		Active bool            `json:"active"`
		Aud    json.RawMessage `json:"aud"`
	}
	if json.Unmarshal(body, &in); code != 200 || !in.Active {
		t.Fatalf("introspection: %d %s", code, body)
	}
	return audience(t, in.Aud)
}

var (
	exampleOnce sync.Once
	exampleBin  string
	exampleErr  error
)

// startExampleRS builds (once) and runs examples/resource-server on addr for audience, with the
// resource server client rs; it returns once the server publishes its metadata.
func startExampleRS(t *testing.T, srv *server, rs admin.ClientInfo, addr, audience string) *syncBuffer {
	t.Helper()
	exampleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rescind-example")
		if err != nil {
			exampleErr = err
			return
		}
		exampleBin = filepath.Join(dir, "resource-server")
		if out, err := exec.Command("go", "build", "-o", exampleBin, "../../examples/resource-server").CombinedOutput(); err != nil {
			exampleErr = fmt.Errorf("building the example: %v\n%s", err, out)
		}
	})
	if exampleErr != nil {
		t.Fatal(exampleErr)
	}
	cmd := exec.Command(exampleBin)
	cmd.Env = append(os.Environ(), "RESCIND_ISSUER="+srv.url, "RESCIND_CLIENT_ID="+rs.ClientID, "RESCIND_CLIENT_SECRET="+rs.ClientSecret,
		"ADDR="+addr, "AUDIENCE="+audience)
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + addr + "/.well-known/oauth-protected-resource")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return log
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example resource server did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// revokeApp revokes, as the signed-in person on /account/apps, the grant of the app named name,
// and returns when the revocation was acknowledged.
func (p *person) revokeApp(base, name string) {
	p.t.Helper()
	_, page := p.get(base + "/account/apps")
	// The app's row: its name, then its revoke form's grant_id.
	m := regexp.MustCompile(`(?s)<td><bdi class="name">` + regexp.QuoteMeta(name) + `</bdi>.*?name="grant_id" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		p.t.Fatalf("the apps page does not list %q:\n%s", name, page)
	}
	f := formOf(page)
	f.Set("grant_id", m[1])
	if res, body := p.post(base+"/account/apps/revoke", f); res.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("revoking %s: %d %s", name, res.StatusCode, body)
	}
}

// TestMCPAgent: an AI agent written with the MCP TypeScript SDK's OAuth client gets a token
// for examples/resource-server knowing only its URL (RFC 9728 discovery from the 401, RFC 8414
// metadata, RFC 7591 registration or a Client ID Metadata Document, PKCE, RFC 8707 resource),
// calls it; a person revokes the agent on /account/apps, and the agent's next call is refused,
// within a second with push (asserted loosely: 5 s).
func TestMCPAgent(t *testing.T) {
	requireNode(t)
	// The agent's metadata document, on https (loopback: served only because of
	// --allow-insecure-redirect), with a certificate the server is told to trust.
	redirect := "http://" + freePort(t) + "/callback"
	var docURL string
	docs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"client_id": docURL, "client_name": "MCP document agent", "redirect_uris": []string{redirect},
			"grant_types": []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none"})
	}))
	defer docs.Close()
	docURL = docs.URL + "/agent/client.json"
	certFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: docs.Certificate().Raw}), 0o600)

	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, []string{"SSL_CERT_FILE=" + certFile}, "--registration", "open", "--client-metadata-documents",
		"--allow-insecure-redirect")
	createUser(t, data, "alice", "a long password")
	person := newPerson(t)

	for _, tc := range []struct {
		name, tokenFormat, docURL, appName, authMethod string
	}{
		// Registered with the SDK's defaults: JWT access tokens, the default of clients that
		// register themselves.
		{"registered, JWT", "", "", "MCP test agent", ""},
		// As the SDK's example client registers: it asks for client_secret_post, and open
		// registration answers with a public client; this one asks for opaque tokens.
		{"registered, opaque, asking for a secret", "opaque", "", "MCP test agent", "client_secret_post"},
		{"metadata document", "", docURL, "MCP document agent", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rsAddr := freePort(t)
			aud := "http://" + rsAddr
			var rs admin.ClientInfo
			json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "photos-api "+tc.name, "--resource-server",
				"--resource", aud)), &rs)
			rsLog := startExampleRS(t, srv, rs, rsAddr, aud)

			env := []string{"RESOURCE_URL=" + aud + "/photos", "REDIRECT_URI=" + redirect}
			if tc.tokenFormat != "" {
				env = append(env, "TOKEN_FORMAT="+tc.tokenFormat)
			}
			if tc.docURL != "" {
				env = append(env, "CLIENT_METADATA_URL="+tc.docURL)
			}
			if tc.authMethod != "" {
				env = append(env, "AUTH_METHOD="+tc.authMethod)
			}
			agent := runNode(t, "mcp-agent.mjs", env)

			var ch struct {
				Status           int    `json:"status"`
				WWW              string `json:"www"`
				ResourceMetadata string `json:"resource_metadata"`
				Scope            string `json:"scope"`
			}
			field(t, agent.next(), "challenge", &ch)
			if ch.Status != 401 || ch.ResourceMetadata != aud+"/.well-known/oauth-protected-resource" || ch.Scope != "read" {
				t.Fatalf("the resource server's challenge: %+v", ch)
			}
			var authURL string
			field(t, agent.next(), "authorize", &authURL)
			u, _ := url.Parse(authURL)
			if q := u.Query(); q.Get("resource") != aud || q.Get("code_challenge_method") != "S256" || q.Get("scope") != "read" ||
				(tc.docURL != "" && q.Get("client_id") != tc.docURL) {
				t.Fatalf("the agent's authorization request: %s", authURL)
			}
			q := person.authorize(srv.url, authURL, "alice", "a long password")
			if q.Get("code") == "" || q.Get("iss") != srv.url {
				t.Fatalf("authorization response: %v", q)
			}
			agent.send(redirect + "?" + q.Encode())

			var got struct {
				Status      int            `json:"status"`
				Body        map[string]any `json:"body"`
				ClientID    string         `json:"client_id"`
				AccessToken string         `json:"access_token"`
				Scope       string         `json:"scope"`
				AuthMethod  string         `json:"auth_method"`
				HasSecret   bool           `json:"has_secret"`
			}
			field(t, agent.next(), "authorized", &got)
			if got.Status != 200 || got.Body["client_id"] != got.ClientID || got.Scope != "read" || got.HasSecret ||
				(tc.docURL == "" && got.AuthMethod != "none") {
				t.Fatalf("the agent's call: %+v\n%s", got, rsLog)
			}
			if isJWT := strings.Count(got.AccessToken, ".") == 2; isJWT != (tc.tokenFormat != "opaque") {
				t.Fatalf("the agent's token %.20s... is a JWT: %v, want %v", got.AccessToken, isJWT, tc.tokenFormat != "opaque")
			} else if isJWT && !slices.Equal(jwtAudience(t, got.AccessToken), []string{aud}) {
				t.Fatalf("the JWT's aud = %v, want the resource %s", jwtAudience(t, got.AccessToken), aud)
			}
			if a := srv.introspectedAudience(t, rs, got.AccessToken); !slices.Equal(a, []string{aud}) {
				t.Fatalf("the token's aud = %v, want the resource %s", a, aud)
			}
			// The server knows how the agent was registered: client list says so.
			var list []admin.ClientInfo
			json.Unmarshal([]byte(cli(t, nil, "client", "list", "--data-dir", data)), &list)
			i := slices.IndexFunc(list, func(c admin.ClientInfo) bool { return c.ClientID == got.ClientID })
			wantReg := "dynamic"
			if tc.docURL != "" {
				wantReg = "metadata_document"
			}
			if i < 0 || !list[i].DynamicallyRegistered || list[i].Registration != wantReg || list[i].TokenEndpointAuthMethod != "none" {
				t.Fatalf("client list does not mark the agent %s: %+v", got.ClientID, list)
			}
			_, apps := person.get(srv.url + "/account/apps")
			if mark := "dynamically registered"; tc.docURL != "" && !strings.Contains(apps, "from "+strings.TrimPrefix(docs.URL, "https://")) ||
				tc.docURL == "" && !strings.Contains(apps, mark) {
				t.Fatalf("the apps page does not mark the agent:\n%s", apps)
			}

			// The person takes the agent's access back; its next call is refused.
			person.revokeApp(srv.url, tc.appName)
			revoked := time.Now()
			deadline := revoked.Add(10 * time.Second)
			for {
				agent.send("call")
				var status int
				field(t, agent.next(), "call", &status)
				if status == 401 {
					break
				}
				if status != 200 || time.Now().After(deadline) {
					t.Fatalf("after the revocation the agent's call got %d\n%s", status, rsLog)
				}
				time.Sleep(20 * time.Millisecond)
			}
			took := time.Since(revoked)
			t.Logf("%s: the agent's call was refused %v after the revocation was acknowledged", tc.name, took.Round(time.Millisecond))
			if took > 5*time.Second {
				t.Fatalf("refused only after %v (push should make it well under a second)", took)
			}
			agent.send("quit")
		})
	}
}

// TestNodeResourceIndicators: openid-client and oauth4webapi send two resource parameters (RFC
// 8707) and get a token whose aud has both, by client credentials and by the code flow (where
// the authorization request names them too); a refresh that names one gets that one.
func TestNodeResourceIndicators(t *testing.T) {
	requireNode(t)
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "a long password")
	const a, b, redirect = "https://photos.example/api", "https://calendar.example", "http://127.0.0.1/callback"
	var cc, pub, rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "node-cc", "--scope", "read",
		"--allowed-resource", a, "--allowed-resource", b)), &cc)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "node-spa", "--public", "--scope", "read",
		"--redirect-uri", redirect, "--token-format", "jwt")), &pub)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)
	for _, lib := range []string{"openid-client", "oauth4webapi"} {
		t.Run(lib, func(t *testing.T) {
			p := runNode(t, "resources.mjs", []string{"ISSUER=" + srv.url, "CC_CLIENT_ID=" + cc.ClientID, "CC_CLIENT_SECRET=" + cc.ClientSecret,
				"PUBLIC_CLIENT_ID=" + pub.ClientID, "REDIRECT_URI=" + redirect, "RESOURCE_A=" + a, "RESOURCE_B=" + b}, lib)
			var authURL string
			field(t, p.next(), "authorize", &authURL)
			u, _ := url.Parse(authURL)
			if res := u.Query()["resource"]; !slices.Equal(res, []string{a, b}) {
				t.Fatalf("%s's authorization request names resources %v", lib, res)
			}
			q := newPerson(t).authorize(srv.url, authURL, "alice", "a long password")
			p.send(redirect + "?" + q.Encode())
			var r struct{ CC, Code, Refreshed string }
			field(t, p.next(), "result", &r)
			if aud := srv.introspectedAudience(t, rs, r.CC); !slices.Equal(aud, []string{a, b}) {
				t.Fatalf("client credentials: aud %v, want both", aud)
			}
			if aud := jwtAudience(t, r.Code); !slices.Equal(aud, []string{a, b}) {
				t.Fatalf("code flow: aud %v, want both", aud)
			}
			if aud := jwtAudience(t, r.Refreshed); !slices.Equal(aud, []string{a}) {
				t.Fatalf("refresh for one: aud %v, want %s", aud, a)
			}
		})
	}
	// The allowed resources bind what the client may ask for.
	code, body := srv.post("/oauth2/token", cc.ClientID, cc.ClientSecret, url.Values{"grant_type": {"client_credentials"},
		"resource": {a, "https://elsewhere.example"}})
	if code != 400 || !strings.Contains(string(body), `"invalid_target"`) {
		t.Fatalf("a resource the client may not ask for: %d %s", code, body)
	}
}

// TestRegistrationThroughTheBinary: --registration token with `rescind registration-token
// create`: the token (printed alone, shown once, stored hashed) registers clients until it is
// deleted or expires; its --scope is what they may get by client credentials, and a token
// without one gives them nothing there (re-audit 3A #2); --registration off serves no endpoint.
func TestRegistrationThroughTheBinary(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--registration", "token")
	register := func(tok string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.url+"/oauth2/register", strings.NewReader(
			`{"client_name":"CI bot","grant_types":["client_credentials"],"scope":"deploy"}`))
		return registerWith(t, req, tok)
	}
	if code, m := register(""); code != 401 || m["error"] != "invalid_token" {
		t.Fatalf("without a token: %d %v", code, m)
	}
	tok := strings.TrimSpace(cli(t, nil, "registration-token", "create", "--data-dir", data, "--expires", "1h", "--scope", "deploy",
		"--allowed-resource", "https://deploy.example"))
	if !strings.HasPrefix(tok, "rsc_iat_") || strings.ContainsAny(tok, " \n{") {
		t.Fatalf("registration-token create printed %q", tok)
	}
	code, m := register(tok)
	if code != 201 || m["client_secret"] == nil || m["registration_access_token"] == nil {
		t.Fatalf("with the token: %d %v", code, m)
	}
	if code, body := srv.post("/oauth2/token", m["client_id"].(string), m["client_secret"].(string),
		url.Values{"grant_type": {"client_credentials"}}); code != 200 || !strings.Contains(string(body), `"scope":"deploy"`) {
		t.Fatalf("the registered client's token: %d %s; want scope deploy", code, body)
	}
	if code, body := srv.post("/oauth2/token", m["client_id"].(string), m["client_secret"].(string),
		url.Values{"grant_type": {"client_credentials"}, "resource": {"https://payments.example"}}); code != 400 || !strings.Contains(string(body), "invalid_target") {
		t.Fatalf("the registered client's token for another resource: %d %s; want invalid_target", code, body)
	}
	if code, _ := register(tok); code != 201 {
		t.Fatalf("the token works again until it expires: %d", code)
	}
	var list []admin.RegistrationTokenInfo
	json.Unmarshal([]byte(cli(t, nil, "registration-token", "list", "--data-dir", data)), &list)
	if len(list) != 1 || list[0].Token != "" || list[0].Expired || time.Until(list[0].ExpiresAt) > time.Hour ||
		list[0].Scope == nil || *list[0].Scope != "deploy" || !slices.Equal(list[0].AllowedResources, []string{"https://deploy.example"}) {
		t.Fatalf("registration-token list: %+v", list)
	}
	if db, _ := os.ReadFile(filepath.Join(data, "rescind.db")); strings.Contains(string(db), tok) {
		t.Fatal("the registration token is stored in plaintext")
	}
	// A token made without --scope: its clients get no scope by client credentials.
	var js admin.RegistrationTokenInfo
	json.Unmarshal([]byte(cli(t, nil, "registration-token", "create", "--data-dir", data, "--output", "json")), &js)
	if !strings.HasPrefix(js.Token, "rsc_iat_") || js.ID == "" || js.ExpiresAt.Sub(js.CreatedAt) != 24*time.Hour || js.Scope != nil {
		t.Fatalf("--output json: %+v", js)
	}
	if code, m := register(js.Token); code != 201 {
		t.Fatalf("with the unscoped token: %d %v", code, m)
	} else if code, body := srv.post("/oauth2/token", m["client_id"].(string), m["client_secret"].(string),
		url.Values{"grant_type": {"client_credentials"}, "scope": {"deploy"}}); code != 400 || !strings.Contains(string(body), "invalid_scope") {
		t.Fatalf("a client of the unscoped token asking deploy: %d %s; want invalid_scope", code, body)
	}
	cli(t, nil, "registration-token", "delete", "--data-dir", data, js.ID)
	cli(t, nil, "registration-token", "delete", "--data-dir", data, list[0].ID)
	if code, m := register(tok); code != 401 {
		t.Fatalf("a deleted token: %d %v", code, m)
	}
	if _, errOut, err := runCLI(nil, "registration-token", "delete", "--data-dir", data, list[0].ID); err == nil || !strings.Contains(errOut, "not_found") {
		t.Fatalf("deleting it again: %v %s", err, errOut)
	}
	// The client list marks them.
	var clients []admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "list", "--data-dir", data)), &clients)
	if len(clients) != 3 || !clients[0].DynamicallyRegistered || clients[0].Registration != "dynamic" {
		t.Fatalf("client list: %+v", clients)
	}
}

// registerWith sends the registration req with the initial access token tok (none if empty)
// and returns the status and the JSON answer.
func registerWith(t *testing.T, req *http.Request, tok string) (int, map[string]any) {
	t.Helper()
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}
