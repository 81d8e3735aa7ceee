package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/web"
)

// from127002 is an HTTP client whose connections come from 127.0.0.2: another source address
// on loopback.
var from127002 = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
	DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}

func adminGet(t *testing.T, hc *http.Client, u, token string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

// TestResourceServerClients: through the real binary and CLI, a resource-server client
// introspects another client's token while an unrelated client learns nothing, and client get
// shows what the client is.
func TestResourceServerClients(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	var app, api, other admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "app", "--scope", "read")), &app)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server",
		"--resource", "https://api.example", "--resource", "https://api.example/v2")), &api)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "other")), &other)
	if !api.ResourceServer || len(api.Resources) != 2 || other.ResourceServer || other.Resources == nil {
		t.Fatalf("created: api %+v, other %+v", api, other)
	}
	got := cli(t, nil, "client", "get", "--data-dir", data, api.ClientID)
	if !strings.Contains(got, `"resource_server": true`) || !strings.Contains(got, `"https://api.example/v2"`) ||
		!strings.Contains(got, `"allow_insecure_redirect": false`) {
		t.Fatalf("client get: %s", got)
	}
	code, body := srv.post("/oauth2/token", app.ClientID, app.ClientSecret, url.Values{"grant_type": {"client_credentials"}, "resource": {"https://api.example"}})
	if code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &tr)
	_, asAPI := srv.post("/oauth2/introspect", api.ClientID, api.ClientSecret, url.Values{"token": {tr.AccessToken}})
	var in map[string]any
	json.Unmarshal(asAPI, &in)
	if in["active"] != true || in["client_id"] != app.ClientID || in["aud"] != "https://api.example" {
		t.Fatalf("the resource server's introspection: %s", asAPI)
	}
	if _, asOther := srv.post("/oauth2/introspect", other.ClientID, other.ClientSecret, url.Values{"token": {tr.AccessToken}}); string(asOther) != `{"active":false}` {
		t.Fatalf("an unrelated client learnt: %s", asOther)
	}
	// A token for the issuer (no resource) is not the api's to see.
	plain := srv.token(app.ClientID, app.ClientSecret)
	if _, b := srv.post("/oauth2/introspect", api.ClientID, api.ClientSecret, url.Values{"token": {plain}}); string(b) != `{"active":false}` {
		t.Fatalf("resource server for another audience learnt: %s", b)
	}
	// Resources need a resource server; registration rules say which rule a URI breaks.
	if _, errOut, err := runCLI(nil, "client", "create", "--data-dir", data, "--name", "x", "--resource", "https://a.example"); err == nil ||
		!strings.Contains(errOut, "--resource-server") {
		t.Fatalf("--resource without --resource-server: %v %s", err, errOut)
	}
	for uri, rule := range map[string]string{"javascript:alert(1)//": "javascript: scheme", "http://evil.example/cb": "only on loopback",
		"https://app.example/cb#x": "fragment"} {
		if _, errOut, err := runCLI(nil, "client", "create", "--data-dir", data, "--name", "x", "--redirect-uri", uri); err == nil ||
			!strings.Contains(errOut, rule) {
			t.Fatalf("redirect URI %s: %v %s; want the rule %q named", uri, err, errOut, rule)
		}
	}
	var dev admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "dev", "--redirect-uri", "http://dev.example/cb",
		"--allow-insecure-redirect")), &dev)
	if !dev.AllowInsecureRedirect || !strings.Contains(cli(t, nil, "client", "get", "--data-dir", data, dev.ClientID), `"allow_insecure_redirect": true`) {
		t.Fatalf("--allow-insecure-redirect: %+v", dev)
	}
}

// TestSecretFromStdin: client create takes a chosen secret from stdin only; --secret is refused
// with a pointer to --secret-stdin, and nothing is created.
func TestSecretFromStdin(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	_, errOut, err := runCLI(nil, "client", "create", "--data-dir", data, "--name", "argv", "--secret", "visible-in-ps")
	if err == nil || !strings.Contains(errOut, "--secret-stdin") {
		t.Fatalf("--secret: %v %s", err, errOut)
	}
	if list := cli(t, nil, "client", "list", "--data-dir", data); strings.Contains(list, `"argv"`) {
		t.Fatal("a client was created with --secret")
	}
	const sec = "my own secret: with spaces"
	var c admin.ClientInfo
	json.Unmarshal([]byte(cliInput(t, sec+"\n", "client", "create", "--data-dir", data, "--name", "stdin", "--secret-stdin")), &c)
	if c.ClientSecret != sec {
		t.Fatalf("secret = %q, want %q", c.ClientSecret, sec)
	}
	if srv.token(c.ClientID, sec) == "" {
		t.Fatal("no token with the secret from stdin")
	}
}

// TestAdminTokenRules: a short RESCIND_ADMIN_TOKEN stops start-up with a message like the
// secrets key's; failed admin authentications from an address are rate-limited (429 with
// Retry-After, even for the right token while limited) and other addresses are not; /metrics on
// the admin listener needs the token.
func TestAdminTokenRules(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	_, errOut, err := runCLI([]string{"RESCIND_ADMIN_TOKEN=short-token"}, "serve", "--addr", freePort(t), "--data-dir", data, "--admin-addr", freePort(t))
	if err == nil || !strings.Contains(errOut, "admin_token") || !strings.Contains(errOut, "at least 32 bytes") || strings.Contains(errOut, "short-token") {
		t.Fatalf("short admin token: %v %s", err, errOut)
	}
	token := strings.Repeat("a", 31) + "b" // 32 bytes
	env := []string{"RESCIND_ADMIN_TOKEN=" + token}
	adminAddr := freePort(t)
	startServer(t, data, env, "--admin-addr", adminAddr, "--auth-failure-burst", "3", "--auth-failure-per-minute", "1")
	base := "http://" + adminAddr
	if code, _, _ := adminGet(t, http.DefaultClient, base+"/admin/v1/clients", token); code != 200 {
		t.Fatalf("right token: %d", code)
	}
	if code, _, body := adminGet(t, http.DefaultClient, base+"/metrics", token); code != 200 || !strings.Contains(string(body), "rescind_") {
		t.Fatalf("metrics with the token: %d", code)
	}
	wrong := strings.Repeat("x", 40)
	for i := range 3 {
		if code, _, _ := adminGet(t, http.DefaultClient, base+"/admin/v1/clients", wrong); code != 401 {
			t.Fatalf("wrong token %d: %d, want 401", i, code)
		}
	}
	code, h, body := adminGet(t, http.DefaultClient, base+"/admin/v1/clients", wrong)
	if code != 429 || h.Get("Retry-After") == "" || !strings.Contains(string(body), "slow_down") {
		t.Fatalf("after the burst: %d %v %s", code, h, body)
	}
	if code, _, _ := adminGet(t, http.DefaultClient, base+"/admin/v1/clients", token); code != 429 {
		t.Fatalf("the right token while limited: %d, want 429 (answering it would confirm a guess)", code)
	}
	if code, _, _ := adminGet(t, http.DefaultClient, base+"/metrics", ""); code != 429 {
		t.Fatalf("metrics without a token while limited: %d", code)
	}
	if code, _, _ := adminGet(t, from127002, base+"/admin/v1/clients", token); code != 200 {
		t.Fatalf("another address: %d, want 200 (not limited by this one's failures)", code)
	}
	if code, _, _ := adminGet(t, from127002, base+"/metrics", ""); code != 401 {
		t.Fatalf("metrics over TCP without the token: %d, want 401", code)
	}
	// The CLI too: a wrong token long enough to be sent gets the server's answer.
	if _, errOut, err := runCLI([]string{"RESCIND_ADMIN_TOKEN=" + wrong}, "client", "list", "--admin-url", base); err == nil || !strings.Contains(errOut, "429") {
		t.Fatalf("CLI with a wrong token: %v %s", err, errOut)
	}
}

// TestAdminTLS: with TLS the TCP admin listener is HTTPS with the same certificate; the CLI
// trusts it with --admin-ca; plain HTTP gets nothing. Without TLS, an admin listener off
// loopback is refused at start.
func TestAdminTLS(t *testing.T) {
	dir := shortTempDir(t)
	cert, key := selfSigned(t, dir)
	token := strings.Repeat("t", 40)
	env := []string{"RESCIND_ADMIN_TOKEN=" + token}
	addr, adminAddr := freePort(t), freePort(t)
	cmd := exec.Command(binary, "serve", "--addr", addr, "--data-dir", filepath.Join(dir, "d"), "--tls-cert", cert, "--tls-key", key,
		"--admin-addr", adminAddr)
	cmd.Env = append(os.Environ(), env...)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	adminURL := "https://" + adminAddr
	var out, errOut string
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		out, errOut, err = runCLI(env, "client", "create", "--admin-url", adminURL, "--admin-ca", cert, "--name", "over-tls")
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil || !strings.Contains(out, "client_secret") {
		t.Fatalf("client create over HTTPS with --admin-ca: %v %s %s\n%s", err, out, errOut, log.String())
	}
	if _, errOut, err := runCLI(env, "client", "list", "--admin-url", adminURL); err == nil || !strings.Contains(errOut, "certificate") {
		t.Fatalf("without --admin-ca the self-signed certificate must not be trusted: %v %s", err, errOut)
	}
	if res, err := http.Get("http://" + adminAddr + "/admin/v1/clients"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest { // Go answers plain HTTP on a TLS port with 400
			t.Fatalf("plain HTTP to the TLS admin listener: %d", res.StatusCode)
		}
	}
	// Off loopback without TLS: refused before listening.
	_, errOut, err = runCLI(env, "serve", "--addr", freePort(t), "--data-dir", filepath.Join(dir, "e"), "--admin-addr", "0.0.0.0:0")
	if err == nil || !strings.Contains(errOut, "in clear") {
		t.Fatalf("plain admin listener off loopback: %v %s", err, errOut)
	}
}

// TestMetricsAddr: --metrics-addr serves GET /metrics without authentication, parsed here by
// Prometheus' own text parser, and nothing else.
func TestMetricsAddr(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	metricsAddr := freePort(t)
	srv := startServer(t, data, nil, "--metrics-addr", metricsAddr)
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "m")), &c)
	srv.revoke(c.ClientID, c.ClientSecret, srv.token(c.ClientID, c.ClientSecret))

	res, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d", res.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	issued, ok := families["rescind_tokens_issued_total"]
	if !ok || issued.GetMetric()[0].GetCounter().GetValue() != 1 {
		t.Fatalf("rescind_tokens_issued_total = %v", issued)
	}
	for _, name := range []string{"rescind_tokens_revoked_total", "rescind_http_requests_total", "go_goroutines"} {
		if _, ok := families[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
	for _, p := range []struct{ method, path string }{{"GET", "/"}, {"GET", "/admin/v1/clients"}, {"POST", "/admin/v1/clients"},
		{"GET", "/metrics/x"}, {"POST", "/metrics"}, {"GET", "/oauth2/introspect"}, {"DELETE", "/admin/v1/clients/" + c.ClientID}} {
		req, _ := http.NewRequest(p.method, "http://"+metricsAddr+p.path, strings.NewReader("{}"))
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Fatalf("%s %s on the metrics listener: %d, want 404", p.method, p.path, res.StatusCode)
		}
	}
	if list := cli(t, nil, "client", "list", "--data-dir", data); !strings.Contains(list, c.ClientID) {
		t.Fatal("the client is gone")
	}
}

// TestTrustedProxies: behind a trusted proxy the client address comes from X-Forwarded-For (or
// Forwarded), and rate limits and logs use it; without --trusted-proxies, those headers are
// ignored. Only loopback is dialled: the forwarded addresses are data.
func TestTrustedProxies(t *testing.T) {
	failing := func(t *testing.T, hc *http.Client, srv *server, id string, h map[string]string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.url+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, "wrong")
		for k, v := range h {
			req.Header.Set(k, v)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	t.Run("trusted", func(t *testing.T) {
		data := filepath.Join(shortTempDir(t), "d")
		srv := startServer(t, data, nil, "--trusted-proxies", "127.0.0.1/32", "--auth-failure-burst", "2", "--auth-failure-per-minute", "1")
		var c admin.ClientInfo
		json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "p")), &c)
		alice := map[string]string{"X-Forwarded-For": "203.0.113.50, 198.51.100.7"} // the proxy saw 198.51.100.7
		for i, want := range []int{401, 401, 429} {
			if got := failing(t, http.DefaultClient, srv, c.ClientID, alice); got != want {
				t.Fatalf("attempt %d from 198.51.100.7: %d, want %d", i, got, want)
			}
		}
		// Another client behind the same proxy is not limited; nor is one named by Forwarded.
		if got := failing(t, http.DefaultClient, srv, c.ClientID, map[string]string{"X-Forwarded-For": "198.51.100.8"}); got != 401 {
			t.Fatalf("198.51.100.8 behind the proxy: %d, want 401", got)
		}
		if got := failing(t, http.DefaultClient, srv, c.ClientID, map[string]string{"Forwarded": `for="198.51.100.9"`}); got != 401 {
			t.Fatalf("Forwarded for=198.51.100.9: %d, want 401", got)
		}
		// A forged hop to the left does not escape the limit.
		if got := failing(t, http.DefaultClient, srv, c.ClientID, map[string]string{"X-Forwarded-For": "1.2.3.4, 198.51.100.7"}); got != 429 {
			t.Fatalf("forged leftmost hop: %d, want 429", got)
		}
		// 127.0.0.2 is not a trusted proxy: its header is ignored, so naming 198.51.100.8 does
		// not borrow that address's bucket, and its own failures count against 127.0.0.2.
		for i, want := range []int{401, 401, 429} {
			if got := failing(t, from127002, srv, c.ClientID, map[string]string{"X-Forwarded-For": "198.51.100.10"}); got != want {
				t.Fatalf("untrusted peer, attempt %d: %d, want %d", i, got, want)
			}
		}
		if got := failing(t, http.DefaultClient, srv, c.ClientID, map[string]string{"X-Forwarded-For": "198.51.100.10"}); got != 401 {
			t.Fatalf("198.51.100.10 through the trusted proxy: %d, want 401 (the untrusted peer's header was not used)", got)
		}
		if !strings.Contains(srv.log.String(), "remote=198.51.100.7:0") {
			t.Fatalf("the log does not name the forwarded client:\n%s", srv.log.String())
		}
	})
	t.Run("untrusted by default", func(t *testing.T) {
		data := filepath.Join(shortTempDir(t), "d")
		srv := startServer(t, data, nil, "--auth-failure-burst", "2", "--auth-failure-per-minute", "1")
		var c admin.ClientInfo
		json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "p")), &c)
		for i, xff := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"} {
			want := 401
			if i == 2 {
				want = 429
			}
			if got := failing(t, http.DefaultClient, srv, c.ClientID, map[string]string{"X-Forwarded-For": xff}); got != want {
				t.Fatalf("attempt %d: %d, want %d (X-Forwarded-For must not pick the bucket)", i, got, want)
			}
		}
	})
	if _, errOut, err := runCLI(nil, "serve", "--data-dir", filepath.Join(shortTempDir(t), "d"), "--trusted-proxies", "10.0.0.0/33"); err == nil ||
		!strings.Contains(errOut, "trusted_proxies") {
		t.Fatalf("bad --trusted-proxies: %v %s", err, errOut)
	}
}

// TestDataDirAndLoginLog: a data directory that exists with 0755 is 0700 once the server has
// started; a failed login's log line carries a hash of the username, never what was typed.
func TestDataDirAndLoginLog(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755) // whatever the umask
	srv := startServer(t, data, nil)
	fi, err := os.Stat(data)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode = %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	const typed = "correct-horse-typed-as-username"
	p := newPerson(t)
	_, page := p.get(srv.url + "/login")
	f := formOf(page)
	f.Set("username", typed)
	f.Set("password", "whatever")
	if res, _ := p.post(srv.url+"/login", f); res.StatusCode != 401 {
		t.Fatalf("failed login: %d", res.StatusCode)
	}
	// The server writes its log through a pipe: the line may land a moment after the answer.
	log := waitForLog(t, srv, "failed login")
	if strings.Contains(log, typed) {
		t.Fatalf("the typed username is in the log:\n%s", log)
	}
	if !strings.Contains(log, "failed login") || !strings.Contains(log, "username_hash="+web.UsernameHash(typed)) {
		t.Fatalf("the failed login is not logged with the username's hash:\n%s", log)
	}
	if len(web.UsernameHash(typed)) != 16 {
		t.Fatal("the hash is not 8 bytes of hex")
	}
	// A shared directory such as /tmp is refused rather than made 0700.
	shared := filepath.Join(shortTempDir(t), "shared")
	os.Mkdir(shared, 0o777)
	os.Chmod(shared, 0o777|os.ModeSticky)
	if _, errOut, err := runCLI(nil, "serve", "--addr", freePort(t), "--data-dir", shared); err == nil || !strings.Contains(errOut, "sticky") {
		t.Fatalf("sticky data dir: %v %s", err, errOut)
	}
	if fi, _ := os.Stat(shared); fi.Mode().Perm() != 0o777 {
		t.Fatalf("the shared directory was changed to %v", fi.Mode().Perm())
	}
}
