package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/resource"
	"github.com/rescind/rescind/token"
)

// jwtSetup starts a server with args, and creates a JWT client and a resource server client
// for https://api.example (the audience the JWT client asks for).
func jwtSetup(t testing.TB, args ...string) (*server, admin.ClientInfo, admin.ClientInfo) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, args...)
	var app, rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "app", "--scope", "read", "--token-format", "jwt")), &app)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api",
		"--resource-server", "--resource", "https://api.example")), &rs)
	return srv, app, rs
}

func jwtToken(t testing.TB, srv *server, app admin.ClientInfo) string {
	code, body := srv.post("/oauth2/token", app.ClientID, app.ClientSecret, url.Values{"grant_type": {"client_credentials"}, "resource": {"https://api.example"}})
	if code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &tr)
	return tr.AccessToken
}

// waitPushConnected waits until the middleware's event stream is connected (its staleness bound is
// then zero), for at most 10 seconds.
func waitPushConnected(t testing.TB, mw *resource.Middleware) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for mw.StalenessBound() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the middleware's event stream did not connect in 10 s (staleness bound %v)", mw.StalenessBound())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refusedWithin polls check until it reports the token revoked, and fails if that takes longer
// than limit (a loose bound: the figures are measured by benchmarks, not here).
func refusedWithin(t *testing.T, what string, limit time.Duration, check func() error) {
	t.Helper()
	start := time.Now()
	for {
		err := check()
		if errors.Is(err, resource.ErrRevoked) {
			t.Logf("%s: refused %v after the revocation's 200", what, time.Since(start).Round(time.Microsecond))
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: still accepted after %v", what, limit)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestResourceServerPush: with push, a revoked JWT is refused as the event arrives. The status
// list ttl is an hour, so no list refresh can be what refuses it.
func TestResourceServerPush(t *testing.T) {
	srv, app, rs := jwtSetup(t, "--status-list-ttl", "1h")
	mw, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, Audience: "https://api.example",
		ClientID: rs.ClientID, ClientSecret: rs.ClientSecret, Push: true})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	waitPushConnected(t, mw)
	tok := jwtToken(t, srv, app)
	other := jwtToken(t, srv, app)
	if c, err := mw.Verify(context.Background(), tok); err != nil || c.ClientID != app.ClientID || !slices.Contains(c.Scopes, "read") {
		t.Fatalf("valid JWT: %+v, %v", c, err)
	}
	srv.revoke(app.ClientID, app.ClientSecret, tok)
	refusedWithin(t, "push", 2*time.Second, func() error { _, err := mw.Verify(context.Background(), tok); return err })
	if _, err := mw.Verify(context.Background(), other); err != nil {
		t.Fatalf("an unrevoked token is refused: %v", err)
	}
	// Introspection agrees.
	if srv.active(rs.ClientID, rs.ClientSecret, tok) || !srv.active(rs.ClientID, rs.ClientSecret, other) {
		t.Fatal("introspection disagrees with the middleware")
	}
}

// TestResourceServerStatusList: without push, the revocation reaches the resource server through
// the status list, after its refresh (ttl 1 s here).
func TestResourceServerStatusList(t *testing.T) {
	srv, app, rs := jwtSetup(t, "--status-list-ttl", "1s")
	mw, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, Audience: "https://api.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	tok := jwtToken(t, srv, app)
	if _, err := mw.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	if b := mw.StalenessBound(); b != time.Second {
		t.Fatalf("StalenessBound = %v, want the list's ttl (1s)", b)
	}
	srv.revoke(app.ClientID, app.ClientSecret, tok)
	refusedWithin(t, "status list", 5*time.Second, func() error { _, err := mw.Verify(context.Background(), tok); return err })
	_ = rs
}

// TestJWTKeyRotation: after `keys rotate`, the new signing key is published at once but tokens
// are still signed by the old key (it signs after the JWKS cache lifetime); after
// `keys rotate --now`, the newest key signs at once. Every token verifies at the middleware and
// is active at introspection, also after a restart.
func TestJWTKeyRotation(t *testing.T) {
	srv, app, rs := jwtSetup(t)
	mw, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, Audience: "https://api.example"})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	old := jwtToken(t, srv, app)
	if _, err := mw.Verify(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	data := filepath.Dir(srv.dataDir) + "/d"
	var rot admin.RotateKeysResponse
	json.Unmarshal([]byte(cli(t, nil, "keys", "rotate", "--data-dir", data)), &rot)
	if rot.SigningKeyID == "" || rot.SigningActivates.Before(time.Now().Add(5*time.Minute)) {
		t.Fatalf("keys rotate = %+v; want a signing key that activates past the JWKS max-age", rot)
	}
	if kids := jwksKids(t, srv); !slices.Contains(kids, rot.SigningKeyID) || !slices.Contains(kids, jwtKid(t, old)) || len(kids) != 6 {
		t.Fatalf("JWKS after rotate = %v; want the new keys published at once, beside the old (two per algorithm)", kids)
	}
	pending := jwtToken(t, srv, app)
	if kid := jwtKid(t, old); jwtKid(t, pending) != kid {
		t.Fatal("the new key signs before its activation")
	}
	var now admin.RotateKeysResponse
	json.Unmarshal([]byte(cli(t, nil, "keys", "rotate", "--now", "--data-dir", data)), &now)
	fresh := jwtToken(t, srv, app)
	if jwtKid(t, fresh) != now.SigningKeyID {
		t.Fatalf("after rotate --now, signed by %s; want %s", jwtKid(t, fresh), now.SigningKeyID)
	}
	for name, tok := range map[string]string{"old": old, "pending": pending, "new": fresh} {
		if _, err := mw.Verify(context.Background(), tok); err != nil {
			t.Fatalf("%s key's token: %v", name, err)
		}
		if !srv.active(rs.ClientID, rs.ClientSecret, tok) {
			t.Fatalf("%s key's token inactive at introspection", name)
		}
	}
	issuer := srv.url
	srv.stop()
	srv = startServer(t, data, nil, "--issuer", issuer) // the same issuer: a JWT names it
	if !srv.active(rs.ClientID, rs.ClientSecret, old) {
		_, body := srv.post("/oauth2/introspect", rs.ClientID, rs.ClientSecret, url.Values{"token": {old}})
		t.Fatalf("old key's token inactive after restart: %s\n%s", body, srv.log)
	}
	if tok := jwtToken(t, srv, app); jwtKid(t, tok) != now.SigningKeyID {
		t.Fatal("a restarted server signs with another key")
	}
}

// jwksKids returns the kids the server publishes.
func jwksKids(t *testing.T, srv *server) []string {
	t.Helper()
	res, err := http.Get(srv.url + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	json.NewDecoder(res.Body).Decode(&set)
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	return out
}

// jwtKid returns the kid in a JWT's header.
func jwtKid(t *testing.T, tok string) string {
	t.Helper()
	kid, err := token.JWTKeyID(tok)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// BenchmarkPushRevocationToRefusal measures, over loopback, the time from the revocation
// endpoint's 200 to the middleware refusing the token through push:
//
//	go test -run x -bench PushRevocationToRefusal -benchtime 300x ./cmd/rescind/
func BenchmarkPushRevocationToRefusal(b *testing.B) {
	srv, app, rs := jwtSetup(b, "--status-list-ttl", "1h")
	mw, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, Audience: "https://api.example",
		ClientID: rs.ClientID, ClientSecret: rs.ClientSecret, Push: true})
	if err != nil {
		b.Fatal(err)
	}
	defer mw.Close()
	waitPushConnected(b, mw)
	lat := make([]time.Duration, 0, b.N)
	for range b.N {
		b.StopTimer()
		tok := jwtToken(b, srv, app)
		if _, err := mw.Verify(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		srv.revoke(app.ClientID, app.ClientSecret, tok)
		acked := time.Now()
		for {
			if _, err := mw.Verify(context.Background(), tok); errors.Is(err, resource.ErrRevoked) {
				break
			}
		}
		lat = append(lat, time.Since(acked))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// TestExampleResourceServer runs examples/resource-server against the real server: it accepts
// a JWT, and refuses it once it is revoked (push).
func TestExampleResourceServer(t *testing.T) {
	srv, app, rs := jwtSetup(t, "--status-list-ttl", "1h")
	bin := filepath.Join(t.TempDir(), "resource-server")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/resource-server").CombinedOutput(); err != nil {
		t.Fatalf("building the example: %v\n%s", err, out)
	}
	addr := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "RESCIND_ISSUER="+srv.url, "RESCIND_CLIENT_ID="+rs.ClientID,
		"RESCIND_CLIENT_SECRET="+rs.ClientSecret, "ADDR="+addr, "AUDIENCE=https://api.example")
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	var tr struct{ AccessToken string }
	tr.AccessToken = jwtToken(t, srv, app) // resource=https://api.example
	get := func() int {
		req, _ := http.NewRequest("GET", "http://"+addr+"/photos", nil)
		req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		res.Body.Close()
		return res.StatusCode
	}
	deadline := time.Now().Add(30 * time.Second)
	for get() != 200 {
		if time.Now().After(deadline) {
			t.Fatalf("the example never accepted the token\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.revoke(app.ClientID, app.ClientSecret, tr.AccessToken)
	for get() != 401 {
		if time.Now().After(deadline) {
			t.Fatalf("the example still accepts the revoked token\n%s", log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
