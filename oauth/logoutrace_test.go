package oauth_test

import (
	"context"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/token"
)

// endingStore ends session s1 once, just before the first refresh token rotation: a logout that
// commits between the token endpoint's check of the session and the rotation.
type endingStore struct {
	rescind.Store
	e    *env
	done bool
}

func (s *endingStore) RotateRefreshToken(ctx context.Context, hash string, next rescind.RefreshToken, now, exp time.Time, aud []string) (rescind.RefreshToken, error) {
	if !s.done {
		s.done = true
		if _, err := s.e.committer.EndSessions(ctx, rescind.SessionFilter{UserID: "alice-id", ID: "s1"},
			rescind.Revocation{RevokedAt: now, Actor: "alice", Reason: "rp-initiated logout"}); err != nil {
			s.e.t.Errorf("ending the session: %v", err)
		}
	}
	return s.Store.RotateRefreshToken(ctx, hash, next, now, exp, aud)
}

// TestRefreshRacingLogout: a refresh whose session ends (a logout commits) after the token
// endpoint checked it and before the rotation answers as if the logout had come first: without
// offline_access, invalid_grant; with it, tokens but no ID token naming the ended session.
// Re-audit 3A #3.
func TestRefreshRacingLogout(t *testing.T) {
	for _, tc := range []struct {
		name, scope string
		wantStatus  int
	}{
		{"openid", "openid read", 400},
		{"openid offline_access", "openid offline_access read", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnvWith(t, func(e *env, c *oauth.Config) { c.Store = &endingStore{Store: c.Store, e: e} })
			now := e.clock()
			if err := e.store.CreateSession(ctx, rescind.Session{ID: "s1", Hash: "h1", UserID: "alice-id", CreatedAt: now, LastSeenAt: now,
				IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(8 * time.Hour), AuthTime: now}); err != nil {
				t.Fatal(err)
			}
			g, err := e.store.SaveGrant(ctx, rescind.Grant{ID: "g1", ClientID: "webapp", UserID: "alice-id", Scopes: []string{"openid", "read"},
				CreatedAt: now, LastUsedAt: now, SessionID: "s1"})
			if err != nil {
				t.Fatal(err)
			}
			text, hash, _ := token.NewStored(token.RefreshPrefix)
			if err := e.store.CreateRefreshToken(ctx, rescind.RefreshToken{Hash: hash, GrantID: g.ID, ClientID: "webapp", Scope: tc.scope,
				CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), SessionID: "s1", AuthTime: now}); err != nil {
				t.Fatal(err)
			}
			r := e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {text}}.Encode(),
				user: "webapp", pass: appSecret})
			if _, err := e.store.GetSessionByID(ctx, "s1"); err == nil {
				t.Fatal("the session was not ended during the refresh")
			}
			if tc.wantStatus == 400 {
				wantError(t, r, 400, "invalid_grant")
				return
			}
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if m := r.json(t); m["id_token"] != nil || m["access_token"] == nil {
				t.Fatalf("the refresh after the session ended: %s; want an access token and no ID token", r.body)
			}
		})
	}
}

// TestIDTokenKeyPendingKeepsTheGrant: while no key of the client's ID token algorithm is in force
// (a chain's first key waiting to be published everywhere), a refresh of an OpenID sign-in
// answers 503 temporarily_unavailable with Retry-After before it uses the refresh token, so the
// retry, once the key is in force, gets its tokens and ID token.
func TestIDTokenKeyPendingKeepsTheGrant(t *testing.T) {
	ctx := context.Background()
	var ready atomic.Bool
	e := newEnvWith(t, func(e *env, c *oauth.Config) {
		c.IDSigner = oauth.AlgSigner{Algs: []string{rescind.AlgRS256}, CanSign: func(string) bool { return ready.Load() },
			Sign: func(_ context.Context, _ string, claims any, typ string) (string, error) {
				return e.signer.Sign(claims, typ)
			}}
	})
	now := e.clock()
	if err := e.store.CreateSession(ctx, rescind.Session{ID: "s1", Hash: "h1", UserID: "alice-id", CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(8 * time.Hour), AuthTime: now}); err != nil {
		t.Fatal(err)
	}
	g, err := e.store.SaveGrant(ctx, rescind.Grant{ID: "g1", ClientID: "webapp", UserID: "alice-id", Scopes: []string{"openid", "read"},
		CreatedAt: now, LastUsedAt: now, SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	text, hash, _ := token.NewStored(token.RefreshPrefix)
	if err := e.store.CreateRefreshToken(ctx, rescind.RefreshToken{Hash: hash, GrantID: g.ID, ClientID: "webapp", Scope: "openid read",
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), SessionID: "s1", AuthTime: now}); err != nil {
		t.Fatal(err)
	}
	refresh := func() resp {
		return e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {text}}.Encode(),
			user: "webapp", pass: appSecret})
	}
	r := refresh()
	wantError(t, r, 503, "temporarily_unavailable")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	ready.Store(true)
	r = refresh()
	if r.status != 200 || r.json(t)["id_token"] == nil {
		t.Fatalf("the retry once the key is in force: %d %s", r.status, r.body)
	}
}
