package oauth_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/revocation"
)

// TestCodeOnlyItsClientConsumes: a code presented by another client, or without its redirect URI
// or PKCE verifier, is refused and changes nothing (it still redeems for its own client
// afterwards; a used one does not revoke the grant). Only its own client presenting it again with
// its verifier is a replay, and revokes the grant (RFC 6749 §4.1.2).
func TestCodeOnlyItsClientConsumes(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("s")
	wrongVerifier, _ := pkcePair("w")
	newCode := func() string {
		return b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)).Get("code")
	}
	presentations := []struct {
		name, client, secret, redirect, verifier string
	}{
		{"another confidential client with the right verifier", "plainok", appSecret, "https://app.example/cb", verifier},
		{"a public client naming itself", "spa", "", "https://app.example/cb", verifier},
		{"its own client with the wrong verifier", "webapp", appSecret, "https://app.example/cb", wrongVerifier},
		{"its own client without a verifier", "webapp", appSecret, "https://app.example/cb", ""},
		{"its own client with another redirect URI", "webapp", appSecret, "https://app.example/other", verifier},
	}
	for _, p := range presentations {
		t.Run("unused code, "+p.name, func(t *testing.T) {
			code := newCode()
			r, _ := e.exchange(p.client, p.secret, codeForm(code, p.redirect, p.verifier))
			wantError(t, r, 400, "invalid_grant")
			r, tk := e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
			if r.status != 200 || !e.active(tk.access) {
				t.Fatalf("the code's own redemption after the refused one: %d %s", r.status, r.body)
			}
		})
	}
	for _, p := range presentations {
		t.Run("used code, "+p.name, func(t *testing.T) {
			code := newCode()
			r, tk := e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
			if r.status != 200 {
				t.Fatalf("redemption: %d %s", r.status, r.body)
			}
			r, _ = e.exchange(p.client, p.secret, codeForm(code, p.redirect, p.verifier))
			wantError(t, r, 400, "invalid_grant")
			if !e.active(tk.access) || !e.active(tk.refresh) {
				t.Fatal("a presentation that is not the code's own replay revoked the grant")
			}
		})
	}
	t.Run("used code replayed by its own client with its verifier", func(t *testing.T) {
		code := newCode()
		r, tk := e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
		if r.status != 200 {
			t.Fatalf("redemption: %d %s", r.status, r.body)
		}
		r, _ = e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
		wantError(t, r, 400, "invalid_grant")
		if e.active(tk.access) || e.active(tk.refresh) {
			t.Fatal("the code's replay left its grant alive")
		}
	})
}

// TestConcurrentRedemption: of two simultaneous correct redemptions one wins; the other is a
// replay, which revokes the grant (the winner's tokens included).
func TestConcurrentRedemption(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("c")
	for range 5 {
		code := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)).Get("code")
		var wg sync.WaitGroup
		rs := make([]resp, 2)
		tks := make([]tokens, 2)
		for i := range rs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rs[i], tks[i] = e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
			}()
		}
		wg.Wait()
		if (rs[0].status == 200) == (rs[1].status == 200) {
			t.Fatalf("concurrent redemptions answered %d and %d; want exactly one 200", rs[0].status, rs[1].status)
		}
		for i, r := range rs {
			if r.status != 200 {
				wantError(t, r, 400, "invalid_grant")
			} else if e.active(tks[i].access) {
				t.Fatal("the winner's token survives the replay")
			}
		}
	}
}

// TestRefreshTokenOfAnotherClient: another client presenting a refresh token, used or not, is
// refused and changes nothing.
func TestRefreshTokenOfAnotherClient(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("o")
	code := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)).Get("code")
	_, first := e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
	refresh := func(client, secret, rt string) (resp, tokens) {
		return e.exchange(client, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	}
	r, second := refresh("webapp", appSecret, first.refresh)
	if r.status != 200 {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	for _, rt := range []string{first.refresh, second.refresh} { // used, then current
		r, _ := refresh("plainok", appSecret, rt)
		wantError(t, r, 400, "invalid_grant")
	}
	if !e.active(second.access) || !e.active(second.refresh) {
		t.Fatal("another client's presentation of a refresh token changed the grant")
	}
	if r, _ := refresh("webapp", appSecret, second.refresh); r.status != 200 {
		t.Fatalf("the current refresh token no longer works for its client: %d %s", r.status, r.body)
	}
}

// TestGrantRecordOutlivesTTLChange: a grant revoked after its client's token lifetime was
// lowered keeps its record until the tokens already issued expire, through janitor sweeps.
func TestGrantRecordOutlivesTTLChange(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("t")
	code := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)).Get("code")
	_, tk := e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier)) // 1 h, the server default
	exp := e.clock().Add(time.Hour).Truncate(time.Second)

	ctx := context.Background()
	second := time.Second
	if _, err := e.store.UpdateClient(ctx, "webapp", rescind.ClientUpdate{TokenTTL: &second}); err != nil {
		t.Fatal(err)
	}
	e.clients.Invalidate("webapp")
	if r := e.do(req{path: "/oauth2/revoke", body: "token=" + url.QueryEscape(tk.refresh), user: "webapp", pass: appSecret}); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	recs, _ := e.store.RevocationsSince(ctx, 0, e.clock(), 10)
	if len(recs) != 1 || recs[0].Kind != rescind.RevokeGrant || !recs[0].ExpiresAt.Equal(exp) {
		t.Fatalf("records = %+v; want the grant's, until its access token's exp %v", recs, exp)
	}
	janitor := revocation.JanitorConfig{Store: e.store, State: e.state, Grace: time.Minute, Now: e.clock}
	for range 6 { // sweeps every 10 minutes, long past the second the client's tokens now get
		e.advance(10 * time.Minute)
		if _, err := janitor.Sweep(ctx); err != nil {
			t.Fatal(err)
		}
		if e.active(tk.access) || !e.state.IsRevoked("", recs[0].Key, "webapp", time.Time{}) {
			t.Fatalf("at %v the revoked grant's access token is active again", e.clock())
		}
	}
	e.advance(time.Minute) // past exp plus the grace: the record may go, the token is dead by its exp
	janitor.Sweep(ctx)
	if n, _ := e.store.CountRevocations(ctx); n != 0 || e.active(tk.access) {
		t.Fatalf("after exp and the grace: %d records; active=%t", n, e.active(tk.access))
	}
}

// TestDeletedUserSessionEnds: once a user is deleted (their grants revoked), a session cookie
// minted before cannot consent to a new grant.
func TestDeletedUserSessionEnds(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("bob")
	_, challenge := pkcePair("d")
	if q := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)); q.Get("code") == "" {
		t.Fatalf("before the deletion: %v", q)
	}
	// As the admin API does: the store deletes the user, ending their sessions and revoking
	// their grants, and the records are applied to this instance's state.
	revs, _, err := e.store.DeleteUser(context.Background(), "bob-id", rescind.Revocation{RevokedAt: e.clock()}, rescind.SessionEnd{})
	if err != nil {
		t.Fatal(err)
	}
	e.committer.Apply(revs...)
	res, _ := b.get("/oauth2/authorize?" + authorizeQuery("webapp", "https://app.example/cb", "read", challenge))
	if loc := res.Header.Get("Location"); res.StatusCode != 303 || !strings.HasPrefix(loc, "/login?") {
		t.Fatalf("a deleted user's session was honoured: %d %s", res.StatusCode, loc)
	}
	if gs, _ := e.store.ListGrants(context.Background(), rescind.GrantFilter{UserID: "bob-id"}); len(gs) != 0 {
		t.Fatalf("a deleted user has grants: %+v", gs)
	}
}

// TestEveryGrantTokenRaisesTheBound: each path that issues a grant's access token (code
// redemption, refresh) has recorded that token's exp on the grant before the token is seen, and
// a shorter token never lowers the bound.
func TestEveryGrantTokenRaisesTheBound(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.login("alice")
	verifier, challenge := pkcePair("b")
	ctx := context.Background()
	setTTL := func(d time.Duration) {
		if _, err := e.store.UpdateClient(ctx, "webapp", rescind.ClientUpdate{TokenTTL: &d}); err != nil {
			t.Fatal(err)
		}
		e.clients.Invalidate("webapp")
	}
	exp := func(tok string) time.Time {
		r := e.do(req{path: "/oauth2/introspect", body: "token=" + url.QueryEscape(tok), user: "webapp", pass: appSecret})
		return time.Unix(int64(r.json(t)["exp"].(float64)), 0)
	}
	bound := func() time.Time {
		gs, err := e.store.ListGrants(ctx, rescind.GrantFilter{ClientID: "webapp", UserID: "alice-id"})
		if err != nil || len(gs) != 1 {
			t.Fatalf("grants: %+v, %v", gs, err)
		}
		return gs[0].TokensExpireAt
	}
	setTTL(time.Hour)
	code := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)).Get("code")
	_, tk := e.exchange("webapp", appSecret, codeForm(code, "https://app.example/cb", verifier))
	if got, want := bound(), exp(tk.access); !got.Equal(want) {
		t.Fatalf("after the code's redemption the bound is %v, the token's exp %v", got, want)
	}
	for _, step := range []struct {
		ttl    time.Duration
		raises bool
	}{{2 * time.Hour, true}, {time.Second, false}, {3 * time.Hour, true}} {
		setTTL(step.ttl)
		e.advance(time.Second)
		before := bound()
		_, next := e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}})
		tk = next
		got, tokExp := bound(), exp(tk.access)
		if step.raises && !got.Equal(tokExp) || !step.raises && (!got.Equal(before) || tokExp.After(got)) {
			t.Fatalf("refresh with ttl %v: bound %v (before %v), token exp %v", step.ttl, got, before, tokExp)
		}
	}
}
