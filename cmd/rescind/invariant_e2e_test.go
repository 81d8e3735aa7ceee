package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
)

// introspection returns the body of an introspection answer, compacted.
func (s *server) introspection(id, secret, tok string) string {
	s.t.Helper()
	code, body := s.post("/oauth2/introspect", id, secret, url.Values{"token": {tok}})
	if code != 200 {
		s.t.Fatalf("introspect: %d %s", code, body)
	}
	var v any
	json.Unmarshal(body, &v)
	b, _ := json.Marshal(v)
	return string(b)
}

// codeFlow is one authorization with golang.org/x/oauth2: its code, verifier and tokens.
type codeFlow struct {
	cfg      oauth2.Config
	code     string
	verifier string
	tok      *oauth2.Token
}

func runCodeFlow(t *testing.T, srv *server, c admin.ClientInfo, user, password string) codeFlow {
	t.Helper()
	f := codeFlow{cfg: oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1:9/cb",
		Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token"}}}
	f.verifier = oauth2.GenerateVerifier()
	f.code = newPerson(t).authorize(srv.url, f.cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(f.verifier)), user, password).Get("code")
	var err error
	if f.tok, err = f.cfg.Exchange(context.Background(), f.code, oauth2.VerifierOption(f.verifier)); err != nil {
		t.Fatal(err)
	}
	return f
}

// redeem presents f's code again, as client c would, at srv; it must be refused with
// invalid_grant.
func (f codeFlow) redeemAs(t *testing.T, srv *server, c admin.ClientInfo) {
	t.Helper()
	cfg := f.cfg
	cfg.ClientID, cfg.ClientSecret = c.ClientID, c.ClientSecret
	cfg.Endpoint.TokenURL = srv.url + "/oauth2/token"
	_, err := cfg.Exchange(context.Background(), f.code, oauth2.VerifierOption(f.verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("code presented again by %s: %v, want invalid_grant", c.Name, err)
	}
}

// TestRevokedStaysRevoked is issue 11's two scenarios on the real binary, through janitor
// sweeps every second until well past the end the records used to be given (the configured
// ttl of the moment plus a minute, plus the grace):
//   - tokens issued under a 24 h default, the server restarted with --access-token-ttl 1s, the
//     refresh token revoked: the access token stays {"active":false};
//   - a short-ttl client presenting another client's code changes nothing (that grant stays
//     alive), and the code's own client replaying it revokes the grant for good.
func TestRevokedStaysRevoked(t *testing.T) {
	t.Parallel() // it mostly waits
	data := filepath.Join(shortTempDir(t), "d")
	fast := []string{"--clock-skew", "1s", "--janitor-interval", "1s"}
	srv := startServer(t, data, nil, append([]string{"--access-token-ttl", "24h"}, fast...)...)
	for _, u := range []string{"alice", "bob", "carol"} {
		createUser(t, data, u, u+"-password")
	}
	mk := func(args ...string) admin.ClientInfo {
		var c admin.ClientInfo
		json.Unmarshal([]byte(cli(t, nil, append([]string{"client", "create", "--data-dir", data, "--redirect-uri", "http://127.0.0.1:9/cb"}, args...)...)), &c)
		return c
	}
	app := mk("--name", "app")                          // the server's default lifetime
	long := mk("--name", "long", "--token-ttl", "24h")  // its own
	short := mk("--name", "short", "--token-ttl", "1s") // the replaying client
	var rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)

	carol := runCodeFlow(t, srv, app, "carol", "carol-password")
	alice := runCodeFlow(t, srv, long, "alice", "alice-password")
	bob := runCodeFlow(t, srv, long, "bob", "bob-password")

	srv.stop()
	srv = startServer(t, data, nil, append([]string{"--access-token-ttl", "1s"}, fast...)...)
	introspect := func(tok string) string { return srv.introspection(rs.ClientID, rs.ClientSecret, tok) }
	if got := introspect(carol.tok.AccessToken); got == `{"active":false}` {
		t.Fatal("carol's token is inactive before any revocation")
	}
	// Scenario 1: the refresh token revoked after the restart.
	code, body := srv.post("/oauth2/revoke", app.ClientID, app.ClientSecret, url.Values{"token": {carol.tok.RefreshToken}})
	if code != 200 || len(body) != 0 {
		t.Fatalf("revoking carol's refresh token: %d %s", code, body)
	}
	// Scenario 2: the short-ttl client presents alice's code (with its verifier); the code's own
	// client replays bob's.
	alice.redeemAs(t, srv, short)
	bob.redeemAs(t, srv, long)
	// A record the janitor must delete, to show it runs: a revoked token of a second.
	quick := srv.token(short.ClientID, short.ClientSecret)
	srv.revoke(short.ClientID, short.ClientSecret, quick)

	// The records used to end a minute and a second after the revocation (plus a second's grace).
	for end := time.Now().Add(70 * time.Second); time.Now().Before(end); time.Sleep(2 * time.Second) {
		if got := introspect(carol.tok.AccessToken); got != `{"active":false}` {
			t.Fatalf("carol's access token after her refresh token's revocation: %s", got)
		}
		if got := introspect(alice.tok.AccessToken); got == `{"active":false}` {
			t.Fatal("another client's presentation of alice's code revoked her grant")
		}
		if got := introspect(bob.tok.AccessToken); got != `{"active":false}` {
			t.Fatalf("bob's access token after his code's replay: %s", got)
		}
	}
	metrics, err := admin.NewUnixClient(filepath.Join(data, "admin.sock")).Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^rescind_janitor_deleted_total (\S+)$`).FindStringSubmatch(metrics)
	if len(m) < 2 {
		t.Fatal("the metrics have no rescind_janitor_deleted_total")
	}
	if n, _ := strconv.ParseFloat(m[1], 64); n < 1 {
		t.Fatalf("the janitor deleted nothing: %v", m)
	}
	for name, f := range map[string]codeFlow{"carol": carol, "bob": bob} {
		cfg := f.cfg
		cfg.Endpoint.TokenURL = srv.url + "/oauth2/token"
		if _, err := cfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: f.tok.RefreshToken}).Token(); err == nil {
			t.Fatalf("%s's refresh token works after the revocation", name)
		}
	}
	alicecfg := alice.cfg
	alicecfg.Endpoint.TokenURL = srv.url + "/oauth2/token"
	if _, err := alicecfg.TokenSource(context.Background(), &oauth2.Token{RefreshToken: alice.tok.RefreshToken}).Token(); err != nil {
		t.Fatalf("alice's refresh token: %v", err)
	}
}
