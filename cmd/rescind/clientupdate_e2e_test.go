package main

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
)

// lifetime returns exp - iat of an active token, as introspection shows them.
func (s *server) lifetime(id, secret, tok string) time.Duration {
	s.t.Helper()
	code, body := s.post("/oauth2/introspect", id, secret, url.Values{"token": {tok}})
	var ir struct {
		Active bool  `json:"active"`
		Exp    int64 `json:"exp"`
		Iat    int64 `json:"iat"`
	}
	json.Unmarshal(body, &ir)
	if code != 200 || !ir.Active {
		s.t.Fatalf("introspection: %d %s", code, body)
	}
	return time.Duration(ir.Exp-ir.Iat) * time.Second
}

// tokenStatus is the status of a client_credentials request with this secret.
func (s *server) tokenStatus(id, secret string) int {
	s.t.Helper()
	code, _ := s.post("/oauth2/token", id, secret, url.Values{"grant_type": {"client_credentials"}})
	return code
}

// TestClientUpdateAndRotateSecret drives `rescind client update` and `rescind client
// rotate-secret` on the real binary.
func TestClientUpdateAndRotateSecret(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "svc", "--scope", "read write", "--token-ttl", "1h")), &c)
	old := srv.token(c.ClientID, c.ClientSecret)
	revoked := srv.token(c.ClientID, c.ClientSecret)
	srv.revoke(c.ClientID, c.ClientSecret, revoked)

	var up admin.ClientInfo
	out := cli(t, nil, "client", "update", "--data-dir", data, c.ClientID, "--name", "svc2", "--scope", "read", "--token-ttl", "5m",
		"--redirect-uri", "https://svc.example/cb")
	if err := json.Unmarshal([]byte(out), &up); err != nil || up.Name != "svc2" || up.Scope != "read" || up.TokenTTL != 300 ||
		len(up.RedirectURIs) != 1 || up.ClientSecret != "" {
		t.Fatalf("client update printed %s", out)
	}
	if d := srv.lifetime(c.ClientID, c.ClientSecret, srv.token(c.ClientID, c.ClientSecret)); d != 5*time.Minute {
		t.Fatalf("a token issued after the update lives %v, want 5m", d)
	}
	if d := srv.lifetime(c.ClientID, c.ClientSecret, old); d != time.Hour {
		t.Fatalf("a token issued before the update now lives %v, want its 1h", d)
	}
	if srv.active(c.ClientID, c.ClientSecret, revoked) {
		t.Fatal("changing the ttl revived a revoked token")
	}
	for _, bad := range [][]string{
		{"--redirect-uri", "/relative"},
		{"--scope", `bad"scope`},
		{"--token-ttl", "1500ms"},
		{"--name", " "},
		{}, // nothing to change
	} {
		args := append([]string{"client", "update", "--data-dir", data, c.ClientID}, bad...)
		if out, errOut, err := runCLI(nil, args...); err == nil {
			t.Errorf("client update %v succeeded: %s", bad, out)
		} else if errOut == "" {
			t.Errorf("client update %v failed without saying why", bad)
		}
	}
	if _, errOut, err := runCLI(nil, "client", "update", "--data-dir", data, "nosuchclient", "--name", "x"); err == nil || !strings.Contains(errOut, "not_found") {
		t.Errorf("updating an unknown client: %v %s", err, errOut)
	}

	// Rotation with an overlap: both secrets work, then only the new one.
	var rot admin.ClientInfo
	out = cli(t, nil, "client", "rotate-secret", "--data-dir", data, c.ClientID, "--overlap", "3s")
	if err := json.Unmarshal([]byte(out), &rot); err != nil || len(rot.ClientSecret) < 32 || rot.ClientSecret == c.ClientSecret ||
		rot.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotate-secret printed %s", out)
	}
	if got := srv.tokenStatus(c.ClientID, c.ClientSecret); got != 200 {
		t.Fatalf("old secret during the overlap: %d", got)
	}
	if got := srv.tokenStatus(c.ClientID, rot.ClientSecret); got != 200 {
		t.Fatalf("new secret: %d", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for srv.tokenStatus(c.ClientID, c.ClientSecret) == 200 { // verified (and cached) just before
		if time.Now().After(deadline) {
			t.Fatal("the old secret still works 10 s after a 3 s overlap")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !time.Now().After(rot.PreviousSecretExpiresAt.Add(-time.Second)) {
		t.Fatalf("the old secret stopped at %v, before the overlap ended at %v", time.Now(), rot.PreviousSecretExpiresAt)
	}
	for range 3 {
		if got := srv.tokenStatus(c.ClientID, c.ClientSecret); got != 401 {
			t.Fatalf("old secret after the overlap: %d, want 401", got)
		}
	}
	// With --overlap 0 the replaced secret stops at once.
	var again admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "rotate-secret", "--data-dir", data, c.ClientID, "--overlap", "0")), &again)
	if got := srv.tokenStatus(c.ClientID, rot.ClientSecret); got != 401 {
		t.Fatalf("secret replaced without overlap: %d, want 401", got)
	}
	if got := srv.tokenStatus(c.ClientID, again.ClientSecret); got != 200 || again.PreviousSecretExpiresAt != nil {
		t.Fatalf("newest secret: %d (%+v)", got, again)
	}
	// Without --overlap the old secret keeps working for a day: the default.
	var third admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "rotate-secret", "--data-dir", data, c.ClientID)), &third)
	if third.PreviousSecretExpiresAt == nil || time.Until(*third.PreviousSecretExpiresAt) < 23*time.Hour ||
		srv.tokenStatus(c.ClientID, again.ClientSecret) != 200 || srv.tokenStatus(c.ClientID, third.ClientSecret) != 200 {
		t.Fatalf("default overlap: %+v", third)
	}
	var pub admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "spa", "--public", "--redirect-uri", "https://spa.example/cb")), &pub)
	if _, errOut, err := runCLI(nil, "client", "rotate-secret", "--data-dir", data, pub.ClientID); err == nil || !strings.Contains(errOut, "public") {
		t.Errorf("rotating a public client's secret: %v %s", err, errOut)
	}
}

// TestClusterClientUpdate: a client updated or given a new secret through one instance is seen
// so by the other at once, although the other cached the client and verified its old secret.
func TestClusterClientUpdate(t *testing.T) {
	env, _ := clusterEnv(t)
	dir := shortTempDir(t)
	a := startServer(t, filepath.Join(dir, "a"), env)
	b := startServer(t, filepath.Join(dir, "b"), env)
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", a.dataDir, "--name", "svc", "--token-ttl", "1h")), &c)
	if d := b.lifetime(c.ClientID, c.ClientSecret, b.token(c.ClientID, c.ClientSecret)); d != time.Hour {
		t.Fatalf("lifetime on B: %v", d)
	}
	cli(t, nil, "client", "update", "--data-dir", a.dataDir, c.ClientID, "--token-ttl", "2m")
	within(t, "B issues with the ttl updated on A", func() bool {
		return b.lifetime(c.ClientID, c.ClientSecret, b.token(c.ClientID, c.ClientSecret)) == 2*time.Minute
	})
	var rot admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "rotate-secret", "--data-dir", a.dataDir, c.ClientID, "--overlap", "0")), &rot)
	within(t, "B refuses the secret replaced on A", func() bool { return b.tokenStatus(c.ClientID, c.ClientSecret) == 401 })
	if got := b.tokenStatus(c.ClientID, rot.ClientSecret); got != 200 {
		t.Fatalf("new secret on B: %d", got)
	}
}
