package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
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
			text, _ := signedInRefreshToken(t, e, tc.scope)
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

// redeemEndingStore ends session s1 once, right after a code's redemption commits (when end is
// set): a logout that commits between RedeemCode and the token response.
type redeemEndingStore struct {
	rescind.Store
	e    *env
	end  bool
	done bool
}

func (s *redeemEndingStore) RedeemCode(ctx context.Context, hash string, now, exp time.Time, aud []string) (rescind.AuthCode, error) {
	c, err := s.Store.RedeemCode(ctx, hash, now, exp, aud)
	if err == nil && s.end && !s.done {
		s.done = true
		if _, err := s.e.committer.EndSessions(ctx, rescind.SessionFilter{UserID: "alice-id", ID: "s1"},
			rescind.Revocation{RevokedAt: now, Actor: "alice", Reason: "rp-initiated logout"}); err != nil {
			s.e.t.Errorf("ending the session: %v", err)
		}
	}
	return c, err
}

// TestCodeRedemptionRacingLogout: a code exchange whose session ends (a logout commits, its
// logout token queued) right after the code's redemption answers as a refresh racing a logout
// does: without offline_access, invalid_grant; with it, tokens but no ID token naming the ended
// session, and a refresh token whose refreshes get none either. While the session lives, the
// same exchange has an ID token with its sid.
// Re-audit 4 #2.
func TestCodeRedemptionRacingLogout(t *testing.T) {
	for _, tc := range []struct {
		name, scope string
		end         bool
		wantStatus  int
		wantIDToken bool
	}{
		{"session lives", "openid read", false, 200, true},
		{"openid", "openid read", true, 400, false},
		{"openid offline_access", "openid offline_access read", true, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnvWith(t, func(e *env, c *oauth.Config) { c.Store = &redeemEndingStore{Store: c.Store, e: e, end: tc.end} })
			now := e.clock()
			if err := e.store.CreateSession(ctx, rescind.Session{ID: "s1", Hash: "h1", UserID: "alice-id", CreatedAt: now, LastSeenAt: now,
				IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(8 * time.Hour), AuthTime: now}); err != nil {
				t.Fatal(err)
			}
			g, err := e.store.SaveGrant(ctx, rescind.Grant{ID: "g1", ClientID: "webapp", UserID: "alice-id", Scopes: strings.Fields(tc.scope),
				CreatedAt: now, LastUsedAt: now, SessionID: "s1"})
			if err != nil {
				t.Fatal(err)
			}
			verifier, challenge := pkcePair("c")
			text, hash, _ := token.NewStored(token.CodePrefix)
			if err := e.store.CreateCode(ctx, rescind.AuthCode{Hash: hash, ClientID: "webapp", UserID: "alice-id", GrantID: g.ID,
				RedirectURI: "https://app.example/cb", RedirectURIGiven: true, Scope: tc.scope, Challenge: challenge, ChallengeMethod: "S256",
				CreatedAt: now, ExpiresAt: now.Add(time.Minute), SessionID: "s1", AuthTime: now}); err != nil {
				t.Fatal(err)
			}
			r, _ := e.exchange("webapp", appSecret, codeForm(text, "https://app.example/cb", verifier))
			if _, err := e.store.GetSessionByID(ctx, "s1"); tc.end != (err != nil) {
				t.Fatalf("session s1 after the exchange: %v; want it ended: %v", err, tc.end)
			}
			if tc.wantStatus == 400 {
				wantError(t, r, 400, "invalid_grant")
				return
			}
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			m := r.json(t)
			if m["access_token"] == nil || m["refresh_token"] == nil {
				t.Fatalf("the exchange: %s; want an access token and a refresh token", r.body)
			}
			raw, _ := m["id_token"].(string)
			if !tc.wantIDToken {
				if raw != "" {
					t.Fatalf("after session s1 ended, the code exchange issued an ID token: %s", r.body)
				}
				// The refresh token issued names the ended session too: its refresh has no ID
				// token either (had it lost the sid, a refresh would issue one).
				rr, _ := e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)}})
				if rr.status != 200 || rr.json(t)["id_token"] != nil {
					t.Fatalf("refreshing the code's refresh token after the session ended: %d %s; want tokens without an ID token", rr.status, rr.body)
				}
				return
			}
			var c struct {
				SID string `json:"sid"`
			}
			parts := strings.Split(raw, ".")
			if len(parts) != 3 {
				t.Fatalf("no ID token while the session lives: %s", r.body)
			}
			b, _ := base64.RawURLEncoding.DecodeString(parts[1])
			if err := json.Unmarshal(b, &c); err != nil || c.SID != "s1" {
				t.Fatalf("the ID token while the session lives: %s; want sid s1", b)
			}
		})
	}
}

// TestIDTokenKeyPendingKeepsTheGrant: while no key of the client's ID token algorithm is in force
// (a chain's first key waiting to be published everywhere), a refresh of an OpenID sign-in
// answers 503 temporarily_unavailable with Retry-After before it uses the refresh token, so the
// retry, once the key is in force, gets its tokens and ID token.
func TestIDTokenKeyPendingKeepsTheGrant(t *testing.T) {
	var ready atomic.Bool
	e := newEnvWith(t, func(e *env, c *oauth.Config) {
		c.IDSigner = oauth.AlgSigner{Algs: []string{rescind.AlgRS256}, CanSign: func(string) bool { return ready.Load() },
			Sign: func(_ context.Context, _ string, claims any, typ string) (string, error) {
				return e.signer.Sign(claims, typ)
			}}
	})
	text, _ := signedInRefreshToken(t, e, "openid read")
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

// TestRefreshOfEndedSessionKeepsTheToken: a refresh token (no offline_access) of a session that
// has ended is refused with invalid_grant before it is used: it is not rotated, so the grant's
// other tokens are not revoked as if it had been stolen and replayed, and a second attempt gets
// the same answer. Re-audit 6 #4 (the check before the rotation could be removed unseen).
func TestRefreshOfEndedSessionKeepsTheToken(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	now := e.clock()
	text, hash := signedInRefreshToken(t, e, "openid read")
	if _, err := e.committer.EndSessions(ctx, rescind.SessionFilter{UserID: "alice-id", ID: "s1"},
		rescind.Revocation{RevokedAt: now, Actor: "alice", Reason: "rp-initiated logout"}); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		r := e.do(req{path: "/oauth2/token", body: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {text}}.Encode(),
			user: "webapp", pass: appSecret})
		wantError(t, r, 400, "invalid_grant")
		if !strings.Contains(string(r.body), "session") {
			t.Fatalf("attempt %d: %s; want the ended session named", attempt, r.body)
		}
		rt, err := e.store.GetRefreshToken(ctx, hash)
		if err != nil || !rt.UsedAt.IsZero() {
			t.Fatalf("attempt %d: the refresh token was used (%v, used at %v)", attempt, err, rt.UsedAt)
		}
		if g, err := e.store.GetGrant(ctx, "g1"); err != nil || !g.RevokedAt.IsZero() {
			t.Fatalf("attempt %d: the grant was revoked as if its refresh token were replayed (%v)", attempt, err)
		}
	}
}

// signedInRefreshToken stores alice's session s1, her grant g1 to webapp (openid read) made in
// it, and a refresh token of scope under that grant and session; it returns the token's text
// and hash.
func signedInRefreshToken(t *testing.T, e *env, scope string) (text, hash string) {
	t.Helper()
	ctx, now := context.Background(), e.clock()
	if err := e.store.CreateSession(ctx, rescind.Session{ID: "s1", Hash: "h1", UserID: "alice-id", CreatedAt: now, LastSeenAt: now,
		IdleExpiresAt: now.Add(time.Hour), ExpiresAt: now.Add(8 * time.Hour), AuthTime: now}); err != nil {
		t.Fatal(err)
	}
	g, err := e.store.SaveGrant(ctx, rescind.Grant{ID: "g1", ClientID: "webapp", UserID: "alice-id", Scopes: []string{"openid", "read"},
		CreatedAt: now, LastUsedAt: now, SessionID: "s1"})
	if err != nil {
		t.Fatal(err)
	}
	text, hash, _ = token.NewStored(token.RefreshPrefix)
	if err := e.store.CreateRefreshToken(ctx, rescind.RefreshToken{Hash: hash, GrantID: g.ID, ClientID: "webapp", Scope: scope,
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), SessionID: "s1", AuthTime: now}); err != nil {
		t.Fatal(err)
	}
	return text, hash
}
