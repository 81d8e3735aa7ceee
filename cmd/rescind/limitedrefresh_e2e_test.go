package main

import (
	"context"
	"encoding/json"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/resource"
)

// TestLimitedRefreshRevocationReachesResourceServer: a person signs in to an app that names no
// resource (its grant records the issuer's audience); the operator then limits the app to
// https://api.example (--allowed-resource), so a refresh issues a token for https://api.example.
// Revoking the grant (RFC 7009 on the refresh token) must reach the push-subscribed resource
// server of that audience, which then refuses the token: the status list's ttl (1 h) and the
// introspection cache (10 min) are far longer than the 5 s the test waits. The control row sets
// the limit before the sign-in, so the grant records https://api.example from its consent.
// Re-audit 3A #1.
func TestLimitedRefreshRevocationReachesResourceServer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		format     string
		limitFirst bool
	}{
		{"jwt, limited after the sign-in", "jwt", false},
		{"opaque, limited after the sign-in", "opaque", false},
		{"jwt, limited before the sign-in", "jwt", true},
	} {
		t.Run(tc.name, func(t *testing.T) { limitedRefreshRevocation(t, tc.format, tc.limitFirst) })
	}
}

func limitedRefreshRevocation(t *testing.T, format string, limitFirst bool) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--status-list-ttl", "1h")
	createUser(t, data, "alice", "alice-password")
	var app, rs admin.ClientInfo
	redirect := "http://127.0.0.1:9/cb"
	if err := json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "app", "--scope", "read",
		"--token-format", format, "--grant-types", "authorization_code,refresh_token", "--redirect-uri", redirect)), &app); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api",
		"--resource-server", "--resource", "https://api.example")), &rs); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mw, err := resource.New(ctx, resource.Config{Issuer: srv.url, Audience: "https://api.example",
		ClientID: rs.ClientID, ClientSecret: rs.ClientSecret, Push: true, IntrospectionCacheTTL: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	waitPushConnected(t, mw)

	limit := func() {
		cli(t, nil, "client", "update", "--data-dir", data, app.ClientID, "--allowed-resource", "https://api.example")
	}
	if limitFirst {
		limit()
	}
	conf := oauth2.Config{ClientID: app.ClientID, ClientSecret: app.ClientSecret, RedirectURL: redirect, Scopes: []string{"read"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	p := newPerson(t)
	v := oauth2.GenerateVerifier()
	q := p.authorize(srv.url, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(v)), "alice", "alice-password")
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if !limitFirst {
		limit()
	}
	// The server learns of the client's change by its cache or notification: the refresh is
	// retried until its token is for https://api.example (5 s at most).
	var nt *oauth2.Token
	rt := tok.RefreshToken
	for deadline := time.Now().Add(5 * time.Second); ; {
		if nt, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token(); err != nil {
			t.Fatalf("refresh: %v", err)
		}
		rt = nt.RefreshToken
		if _, err = mw.Verify(ctx, nt.AccessToken); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the refreshed token is not accepted at https://api.example: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	code, body := srv.post("/oauth2/revoke", app.ClientID, app.ClientSecret, url.Values{"token": {nt.RefreshToken}})
	if code != 200 {
		t.Fatalf("revoking the refresh token: %d %s", code, body)
	}
	start := time.Now()
	for {
		_, err := mw.Verify(ctx, nt.AccessToken)
		if err != nil {
			t.Logf("refused %v after the revocation: %v", time.Since(start).Round(time.Millisecond), err)
			return
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("the revoked token is still accepted by a push-subscribed resource server of its audience 5 s after the revocation (staleness bound %v)",
				mw.StalenessBound())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
