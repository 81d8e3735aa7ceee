package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
)

// TestAuthcodeExample runs examples/authcode against the real server, as a public and as a
// confidential client; the test plays the browser (sign-in, consent, then following the
// redirect to the example's loopback listener). The example must print a token and revoke it:
// afterwards the refresh token is refused and introspection says the access token is inactive.
func TestAuthcodeExample(t *testing.T) {
	dir := shortTempDir(t)
	example := filepath.Join(dir, "authcode")
	if out, err := exec.Command("go", "build", "-o", example, "../../examples/authcode").CombinedOutput(); err != nil {
		t.Fatalf("building examples/authcode: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")

	for _, public := range []bool{true, false} {
		name := map[bool]string{true: "public", false: "confidential"}[public]
		t.Run(name, func(t *testing.T) {
			listen := freePort(t)
			redirect := "http://" + listen + "/callback"
			args := []string{"client", "create", "--data-dir", data, "--name", "cli-" + name, "--redirect-uri", redirect, "--scope", "read"}
			if public {
				args = append(args, "--public")
			}
			var c admin.ClientInfo
			if err := json.Unmarshal([]byte(cli(t, nil, args...)), &c); err != nil {
				t.Fatal(err)
			}
			env := []string{"RESCIND_ISSUER=" + srv.url, "RESCIND_CLIENT_ID=" + c.ClientID, "RESCIND_CLIENT_SECRET=" + c.ClientSecret}
			if !public {
				// Control: these credentials see a live token as active.
				live := srv.token(c.ClientID, c.ClientSecret)
				if !srv.active(c.ClientID, c.ClientSecret, live) {
					t.Fatal("control: a live token is inactive")
				}
			}

			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, example, "-listen", listen, "-scope", "read")
			cmd.Env = append(os.Environ(), env...)
			stdout, _ := cmd.StdoutPipe()
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan string, 100)
			go func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			next := func(prefix string) string {
				t.Helper()
				for {
					select {
					case l, ok := <-lines:
						if !ok {
							t.Fatalf("the example ended before printing %q; stderr:\n%s", prefix, stderr.String())
						}
						if strings.HasPrefix(strings.TrimSpace(l), prefix) {
							return strings.TrimSpace(l)
						}
					case <-ctx.Done():
						t.Fatalf("no %q within the deadline; stderr:\n%s", prefix, stderr.String())
					}
				}
			}

			authURL := next(srv.url + "/oauth2/authorize?")
			q := newPerson(t).authorize(srv.url, authURL, "alice", "alice-password")
			// The browser follows the redirect to the example's listener.
			res, err := http.Get(redirect + "?" + q.Encode())
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || !strings.Contains(string(page), "Signed in") {
				t.Fatalf("the example's callback answered %d: %s", res.StatusCode, page)
			}
			next("Signed in.")
			var tok struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
				Scope        string `json:"scope"`
			}
			if err := json.Unmarshal([]byte(next("{")), &tok); err != nil || !strings.HasPrefix(tok.AccessToken, "rsc_at_") ||
				!strings.HasPrefix(tok.RefreshToken, "rsc_rt_") || tok.Scope != "read" {
				t.Fatalf("token response %+v (%v)", tok, err)
			}
			next("Revoked the tokens")
			if err := cmd.Wait(); err != nil {
				t.Fatalf("the example failed: %v\n%s", err, stderr.String())
			}

			// The refresh token is dead (the grant is revoked), whatever the kind of client.
			cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.url + "/oauth2/token"}}
			if public {
				cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
			}
			_, err = cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			var re *oauth2.RetrieveError
			if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Fatalf("refresh after the example revoked: %v; want invalid_grant", err)
			}
			if !public && srv.active(c.ClientID, c.ClientSecret, tok.AccessToken) {
				t.Fatal("the access token the example revoked is active")
			}
		})
	}
}
