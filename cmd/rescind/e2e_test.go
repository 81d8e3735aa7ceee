package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/pgtest"
)

// binary is the rescind binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "rescind-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "rescind")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building rescind:", err)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `rescind serve` process.
type server struct {
	t       testing.TB
	cmd     *exec.Cmd
	url     string
	dataDir string
	log     *syncBuffer
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// shortTempDir returns a temp dir whose admin.sock path fits a Unix socket address.
func shortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "rsc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// startServer runs `rescind serve` on a free port with dataDir and waits until it is ready.
func startServer(t testing.TB, dataDir string, env []string, args ...string) *server {
	t.Helper()
	return startServerAt(t, freePort(t), dataDir, env, args...)
}

// startServerAt is startServer on the address addr (a restart on the address of before).
func startServerAt(t testing.TB, addr, dataDir string, env []string, args ...string) *server {
	t.Helper()
	s := &server{t: t, url: "http://" + addr, dataDir: dataDir, log: &syncBuffer{}}
	s.cmd = exec.Command(binary, append([]string{"serve", "--addr", addr, "--data-dir", dataDir}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := http.Get(s.url + "/readyz")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not ready: %v\n%s", err, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends SIGKILL: no shutdown, no final commit, as in a crash.
func (s *server) kill() {
	s.cmd.Process.Kill()
	s.cmd.Wait()
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() {
	if s.cmd.ProcessState != nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			s.t.Errorf("server exited with %v after SIGTERM\n%s", err, s.log)
		}
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		s.t.Errorf("server did not stop on SIGTERM\n%s", s.log)
	}
}

// cli runs the binary and returns stdout; it fails the test on a non-zero exit.
func cli(t testing.TB, env []string, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(env, args...)
	if err != nil {
		t.Fatalf("rescind %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// cliInput runs the binary with stdin and returns stdout; it fails the test on a non-zero exit.
func cliInput(t testing.TB, stdin string, args ...string) string {
	t.Helper()
	out, errOut, err := runCLIInput(stdin, args...)
	if err != nil {
		t.Fatalf("rescind %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// runCLIInput runs the binary with stdin.
func runCLIInput(stdin string, args ...string) (string, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func runCLI(env []string, args ...string) (string, string, error) {
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

func (s *server) post(path, id, secret string, form url.Values) (int, []byte) {
	s.t.Helper()
	req, _ := http.NewRequest("POST", s.url+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (s *server) token(id, secret string) string {
	s.t.Helper()
	code, body := s.post("/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"}})
	if code != 200 {
		s.t.Fatalf("token: %d %s", code, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &tr)
	return tr.AccessToken
}

func (s *server) active(id, secret, tok string) bool {
	s.t.Helper()
	code, body := s.post("/oauth2/introspect", id, secret, url.Values{"token": {tok}})
	if code != 200 {
		s.t.Fatalf("introspect: %d %s", code, body)
	}
	var ir map[string]any
	json.Unmarshal(body, &ir)
	return ir["active"] == true
}

func (s *server) revoke(id, secret, tok string) {
	s.t.Helper()
	code, body := s.post("/oauth2/revoke", id, secret, url.Values{"token": {tok}, "token_type_hint": {"access_token"}})
	if code != 200 || len(body) != 0 {
		s.t.Fatalf("revoke: %d %q", code, body)
	}
}

// TestEndToEnd walks the core flow on the real binary, across restarts.
func TestEndToEnd(t *testing.T) {
	dir := shortTempDir(t)
	data := filepath.Join(dir, "data")
	srv := startServer(t, data, nil)

	var c admin.ClientInfo
	out := cli(t, nil, "client", "create", "--data-dir", data, "--name", "e2e", "--grant-types", "client_credentials",
		"--scope", "read write", "--token-ttl", "1h")
	if err := json.Unmarshal([]byte(out), &c); err != nil || c.ClientID == "" || len(c.ClientSecret) != 43 {
		t.Fatalf("client create printed %q (%v)", out, err)
	}
	if c.Scope != "read write" || c.TokenTTL != 3600 || c.TokenEndpointAuthMethod != "client_secret_basic" {
		t.Fatalf("client = %+v", c)
	}
	if got := cli(t, nil, "client", "get", "--data-dir", data, c.ClientID); strings.Contains(got, c.ClientSecret) || !strings.Contains(got, c.ClientID) {
		t.Fatalf("client get shows the secret or not the client: %s", got)
	}

	revoked := srv.token(c.ClientID, c.ClientSecret)
	kept := srv.token(c.ClientID, c.ClientSecret)
	if !srv.active(c.ClientID, c.ClientSecret, revoked) {
		t.Fatal("new token inactive")
	}
	srv.revoke(c.ClientID, c.ClientSecret, revoked)
	if srv.active(c.ClientID, c.ClientSecret, revoked) {
		t.Fatal("revoked token active")
	}

	// Restart on the same data: the revocation, the keys and the client survive.
	srv.stop()
	srv = startServer(t, data, nil)
	if srv.active(c.ClientID, c.ClientSecret, revoked) {
		t.Fatal("revoked token active after restart")
	}
	if !srv.active(c.ClientID, c.ClientSecret, kept) {
		t.Fatal("unrevoked token from before the restart is inactive")
	}
	fresh := srv.token(c.ClientID, c.ClientSecret)
	if !srv.active(c.ClientID, c.ClientSecret, fresh) {
		t.Fatal("new token after restart inactive")
	}

	// Metrics on the admin socket.
	m, err := admin.NewUnixClient(filepath.Join(data, "admin.sock")).Metrics(context.Background())
	if err != nil || !strings.Contains(m, "rescind_tokens_issued_total 1") || !strings.Contains(m, `rescind_http_requests_total{code="200",endpoint="introspect"}`) {
		t.Fatalf("metrics: %v\n%s", err, m)
	}

	// Deleting the client revokes all its tokens, durably; the client can get no new one.
	other := cli(t, nil, "client", "create", "--data-dir", data, "--name", "witness", "--resource-server")
	var w admin.ClientInfo
	json.Unmarshal([]byte(other), &w)
	cli(t, nil, "client", "delete", "--data-dir", data, c.ClientID)
	for _, tok := range []string{kept, fresh} {
		if srv.active(w.ClientID, w.ClientSecret, tok) {
			t.Fatal("token of a deleted client is active")
		}
	}
	if code, _ := srv.post("/oauth2/token", c.ClientID, c.ClientSecret, url.Values{"grant_type": {"client_credentials"}}); code != 401 {
		t.Fatalf("deleted client got token status %d, want 401", code)
	}
	if _, errOut, err := runCLI(nil, "client", "get", "--data-dir", data, c.ClientID); err == nil || !strings.Contains(errOut, "not_found") {
		t.Fatalf("client get of a deleted client: %v %s", err, errOut)
	}
	srv.stop()
	srv = startServer(t, data, nil)
	if srv.active(w.ClientID, w.ClientSecret, kept) {
		t.Fatal("deleted client's token active after restart")
	}
	list := cli(t, nil, "client", "list", "--data-dir", data)
	if strings.Contains(list, c.ClientID) || !strings.Contains(list, w.ClientID) {
		t.Fatalf("client list: %s", list)
	}
	if strings.Contains(srv.log.String(), w.ClientSecret) || strings.Contains(srv.log.String(), fresh) {
		t.Fatal("the server log contains a secret or a token")
	}
}

func TestKeyRotationKeepsTokens(t *testing.T) {
	// A data dir whose admin.sock path is longer than a Unix socket address can hold.
	data := filepath.Join(t.TempDir(), strings.Repeat("long-directory-name-", 6), "d")
	srv := startServer(t, data, nil)
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "k")), &c)
	old := srv.token(c.ClientID, c.ClientSecret)
	cli(t, nil, "keys", "rotate", "--data-dir", data)
	fresh := srv.token(c.ClientID, c.ClientSecret)
	srv.stop()
	srv = startServer(t, data, nil)
	if !srv.active(c.ClientID, c.ClientSecret, old) || !srv.active(c.ClientID, c.ClientSecret, fresh) {
		t.Fatal("a token sealed before or after rotation stopped working")
	}
}

func TestSecretsKeyFromEnvironment(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	key := []string{"RESCIND_SECRETS_KEY=" + strings.Repeat("k", 40)}
	srv := startServer(t, data, key)
	srv.stop()
	if _, err := os.Stat(filepath.Join(data, "secrets.key")); err == nil {
		t.Fatal("a key file was written although RESCIND_SECRETS_KEY was set")
	}
	// The wrong key is refused at start-up, with a clear message.
	cmd := exec.Command(binary, "serve", "--addr", freePort(t), "--data-dir", data)
	cmd.Env = append(os.Environ(), "RESCIND_SECRETS_KEY="+strings.Repeat("x", 40))
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "different secrets key") {
		t.Fatalf("wrong secrets key: %v\n%s", err, out)
	}
}

func TestAdminOverTCP(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	adminAddr := freePort(t)

	// Without a token, a TCP admin listener is refused at start-up.
	cmd := exec.Command(binary, "serve", "--addr", freePort(t), "--data-dir", data, "--admin-addr", adminAddr)
	cmd.Env = os.Environ()
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "RESCIND_ADMIN_TOKEN") {
		t.Fatalf("admin-addr without token: %v\n%s", err, out)
	}

	tokenEnv := []string{"RESCIND_ADMIN_TOKEN=admintoken-0123456789abcdef0123456789"}
	startServer(t, data, tokenEnv, "--admin-addr", adminAddr)
	adminURL := "http://" + adminAddr
	out := cli(t, tokenEnv, "client", "create", "--admin-url", adminURL, "--name", "tcp")
	if !strings.Contains(out, "client_secret") {
		t.Fatalf("create over TCP: %s", out)
	}
	if _, errOut, err := runCLI([]string{"RESCIND_ADMIN_TOKEN=wrong-0123456789abcdef0123456789abcdef"}, "client", "list", "--admin-url", adminURL); err == nil || !strings.Contains(errOut, "401") {
		t.Fatalf("wrong admin token accepted: %v %s", err, errOut)
	}
	res, err := http.Get(adminURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 {
		t.Fatalf("metrics over TCP without token: %d", res.StatusCode)
	}
}

func TestInvalidSettingsStopStartup(t *testing.T) {
	dir := shortTempDir(t)
	yamlBad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(yamlBad, []byte("addr: 127.0.0.1:1\nno_such_key: 1\n"), 0o600)
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"bad log format flag", nil, []string{"--log-format", "xml"}, "log_format"},
		{"bad addr env", []string{"RESCIND_ADDR=nonsense"}, nil, "RESCIND_ADDR"},
		{"bad issuer", nil, []string{"--issuer", "https://as.example/?x=1"}, "issuer"},
		{"bad ttl", nil, []string{"--access-token-ttl", "-5m"}, "access_token_ttl"},
		{"short secrets key", []string{"RESCIND_SECRETS_KEY=short"}, nil, "secrets_key"},
		{"short admin token", []string{"RESCIND_ADMIN_TOKEN=0123456789abcdef0123456789abcde"}, nil, "admin_token"},
		{"bad trusted proxies", nil, []string{"--trusted-proxies", "10.0.0.0/8,proxy.example"}, "trusted_proxies"},
		{"bad metrics address", nil, []string{"--metrics-addr", "9100"}, "metrics_addr"},
		{"unknown config key", nil, []string{"--config", yamlBad}, "no_such_key"},
		{"missing config file", nil, []string{"--config", filepath.Join(dir, "missing.toml")}, "config file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--data-dir", filepath.Join(dir, "d")}, tc.args...)
			_, errOut, err := runCLI(tc.env, args...)
			if err == nil || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %v, stderr %q; want failure mentioning %q", err, errOut, tc.want)
			}
		})
	}
}

func TestConfigFiles(t *testing.T) {
	for _, ext := range []string{".yaml", ".toml"} {
		t.Run(ext, func(t *testing.T) {
			dir := shortTempDir(t)
			addr := freePort(t)
			body := fmt.Sprintf("addr: %q\nissuer: \"https://auth.example\"\nlog_format: json\n", addr)
			if ext == ".toml" {
				body = fmt.Sprintf("addr = %q\nissuer = \"https://auth.example\"\nlog_format = \"json\"\n", addr)
			}
			cfg := filepath.Join(dir, "rescind"+ext)
			os.WriteFile(cfg, []byte(body), 0o600)
			cmd := exec.Command(binary, "serve", "--config", cfg, "--data-dir", filepath.Join(dir, "d"))
			var log syncBuffer
			cmd.Stderr = &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
			var md map[string]any
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) {
				if r, err := http.Get("http://" + addr + "/.well-known/oauth-authorization-server"); err == nil {
					json.NewDecoder(r.Body).Decode(&md)
					r.Body.Close()
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if md["issuer"] != "https://auth.example" {
				t.Fatalf("issuer = %v; log:\n%s", md["issuer"], log.String())
			}
			// The port answers a moment before the start-up line is written: wait for it.
			for deadline := time.Now().Add(10 * time.Second); !strings.Contains(log.String(), "rescind serving") && time.Now().Before(deadline); {
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.HasPrefix(strings.TrimSpace(log.String()), "{") {
				t.Fatalf("log_format json not applied: %s", log.String())
			}
		})
	}
}
