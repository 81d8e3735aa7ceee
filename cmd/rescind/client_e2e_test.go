package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/client"
	"github.com/rescind/rescind/internal/testenv"
)

func newClientFor(t *testing.T, data string) admin.ClientInfo {
	t.Helper()
	var c admin.ClientInfo
	if err := json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "c", "--scope", "read write")), &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientPackageAgainstServer walks discover, token, introspect, revoke, introspect with the
// client package against the real server.
func TestClientPackageAgainstServer(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	info := newClientFor(t, data)
	ctx := context.Background()

	md, err := client.Discover(ctx, srv.url, nil)
	if err != nil || md.RevocationEndpoint != srv.url+"/oauth2/revoke" {
		t.Fatalf("Discover = %+v, %v", md, err)
	}
	for _, method := range []string{"", client.AuthBasic, client.AuthPost} {
		c := &client.Client{Issuer: srv.url, ClientID: info.ClientID, ClientSecret: info.ClientSecret, AuthMethod: method}
		tok, err := c.ClientCredentials(ctx, "read")
		if err != nil {
			t.Fatalf("%q: %v", method, err)
		}
		in, err := c.Introspect(ctx, tok.AccessToken, "access_token")
		if err != nil || !in.Active || in.Scope != "read" || in.ClientID != info.ClientID || in.Iss != srv.url {
			t.Fatalf("%q: introspect = %+v, %v", method, in, err)
		}
		if err := c.RevokeToken(ctx, tok); err != nil {
			t.Fatalf("%q: revoke: %v", method, err)
		}
		if in, err := c.Introspect(ctx, tok.AccessToken, ""); err != nil || in.Active || string(in.Raw) != `{"active":false}` {
			t.Fatalf("%q: after revoke: %+v, %v", method, in, err)
		}
	}
	bad := &client.Client{Issuer: srv.url, ClientID: info.ClientID, ClientSecret: "wrong"}
	var e *client.Error
	if err := bad.Revoke(ctx, "x", ""); !errors.As(err, &e) || e.Code != "invalid_client" || e.StatusCode != 401 {
		t.Fatalf("wrong secret: %v", err)
	}
}

// TestClientCLIAgainstServer does the same walk with the CLI verbs.
func TestClientCLIAgainstServer(t *testing.T) {
	dir := shortTempDir(t)
	data := filepath.Join(dir, "d")
	srv := startServer(t, data, nil)
	info := newClientFor(t, data)
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte(info.ClientSecret+"\n"), 0o600)
	flags := []string{"--issuer", srv.url, "--client-id", info.ClientID, "--client-secret-file", secretFile}

	tok := strings.TrimSpace(cli(t, nil, append([]string{"token", "--scope", "read", "--output", "token"}, flags...)...))
	if !strings.HasPrefix(tok, "rsc_at_") {
		t.Fatalf("token printed %q", tok)
	}
	pretty := cli(t, nil, append([]string{"introspect"}, append(flags, tok)...)...)
	if !strings.Contains(pretty, "\n  \"active\": true") {
		t.Fatalf("introspect (pretty): %s", pretty)
	}
	// The secret from the environment; the token from stdin; --verbose masks both.
	env := []string{"RESCIND_CLIENT_SECRET=" + info.ClientSecret}
	cmd := exec.Command(binary, "revoke", "--issuer", srv.url, "--client-id", info.ClientID, "--hint", "access_token", "--verbose", "-")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(tok + "\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if strings.Contains(string(out), tok) || strings.Contains(string(out), info.ClientSecret) || !strings.Contains(string(out), "token=****") ||
		!strings.Contains(string(out), "Authorization: Basic ****") || !strings.Contains(string(out), "200 OK") {
		t.Fatalf("verbose output leaks or lacks the exchange:\n%s", out)
	}
	compact := cli(t, env, "introspect", "--output", "json", "--issuer", srv.url, "--client-id", info.ClientID, tok)
	if strings.TrimSpace(compact) != `{"active":false}` {
		t.Fatalf("introspect after revoke: %s", compact)
	}
	// --endpoint instead of discovery; the server's error text and a non-zero exit on failure.
	_, errOut, err := runCLI([]string{"RESCIND_CLIENT_SECRET=wrong"}, "revoke", "--endpoint", srv.url+"/oauth2/revoke", "--client-id", info.ClientID, tok)
	if err == nil || !strings.Contains(errOut, "invalid_client") {
		t.Fatalf("wrong secret: err %v, stderr %s", err, errOut)
	}
}

// TestExamples runs examples/python and examples/go against the real server.
func TestExamples(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	info := newClientFor(t, data)
	env := append(os.Environ(), "RESCIND_ISSUER="+srv.url, "RESCIND_CLIENT_ID="+info.ClientID, "RESCIND_CLIENT_SECRET="+info.ClientSecret)
	const success = "ok: token revoked; introspection says active=false"

	t.Run("go", func(t *testing.T) {
		cmd := exec.Command("go", "run", "../../examples/go")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), success) {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("python", func(t *testing.T) {
		requirePython(t, "requests")
		cmd := exec.Command(systemPython, "../../examples/python/revoke.py")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), success) {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	t.Run("curl", func(t *testing.T) {
		for _, tool := range []string{"curl", "jq"} {
			if _, err := exec.LookPath(tool); err != nil {
				testenv.Unavailable(t, tool, tool+" is not installed")
			}
		}
		cmd := exec.Command("bash", "../../examples/curl/revoke.sh")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ok: token revoked") || !strings.Contains(string(out), `after: {"active":false}`) {
			t.Fatalf("%v\n%s", err, out)
		}
	})
}
