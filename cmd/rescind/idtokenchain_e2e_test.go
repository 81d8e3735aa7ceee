package main

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	_ "modernc.org/sqlite"
)

// TestKeysRetiredNextIDTokenKeyIsMadeAgain: on a deployment upgraded from a release that made
// the chain of an algorithm on first need, the first start publishes an RS256 key that signs only
// after the activation delay. The operator retires that "next" key (`keys retire`: allowed, it is
// not in force). The code exchange of an RS256 (default) OpenID client is answered 503
// temporarily_unavailable while no RS256 key is in force, and that exchange makes the chain again:
// a new RS256 key is published at once (`keys list`: next, activating after the delay), so ID
// tokens resume then instead of being refused until a restart.
func TestKeysRetiredNextIDTokenKeyIsMadeAgain(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	srv.stop()
	// The upgrade: the keys of a release with no RS256 chain, made an hour ago.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(data, "rescind.db"))
	if err != nil {
		t.Fatal(err)
	}
	hourAgo := time.Now().Add(-time.Hour).UnixNano()
	if _, err := db.Exec(`DELETE FROM keys WHERE use = 'sign/RS256'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE keys SET created_at = ?, activates_at = ? WHERE use = 'sign'`, hourAgo, hourAgo); err != nil {
		t.Fatal(err)
	}
	db.Close()
	srv = startServer(t, data, nil, "--outbox-allow-loopback")

	rs256 := func() (live []string, next string) {
		for kid, k := range keyList(t, nil, data) {
			if k.Alg == "RS256" && k.State != "retired" {
				live, next = append(live, kid), kid
			}
		}
		return live, next
	}
	live, pending := rs256()
	if len(live) != 1 || keyList(t, nil, data)[pending].State != "next" {
		t.Fatalf("RS256 keys after the upgrade's first start: %v; want one next key", keyList(t, nil, data))
	}
	cli(t, nil, "keys", "retire", pending, "--data-dir", data)
	if live, _ := rs256(); len(live) != 0 {
		t.Fatalf("RS256 keys not retired after retiring the next one: %v", live)
	}

	cliInput(t, "alice-password\n", "user", "create", "--data-dir", data, "--username", "alice", "--password-stdin")
	lr := newLogoutReceiver(t, srv.url)
	app := newRP(t, data, lr, "app")
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, srv.url)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: app.info.ClientID, ClientSecret: app.info.ClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: app.redirect, Scopes: []string{oidc.ScopeOpenID}}
	verifier := oauth2.GenerateVerifier()
	q := newPerson(t).authorize(srv.url, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)), "alice", "alice-password")
	_, err = conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != 503 || re.ErrorCode != "temporarily_unavailable" {
		t.Fatalf("code exchange with no RS256 key in force: %v; want 503 temporarily_unavailable", err)
	}
	made := time.Now()
	deadline := made.Add(10 * time.Second)
	for {
		live, next := rs256()
		if len(live) == 1 {
			k := keyList(t, nil, data)[next]
			if next == pending || k.State != "next" || k.Activates.Before(made.Add(6*time.Minute)) {
				t.Fatalf("the RS256 chain made again: %+v; want a new next key activating after the delay", k)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no RS256 key made again 10 s after the exchange answered 503: %v", keyList(t, nil, data))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
