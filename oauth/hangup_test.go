package oauth_test

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/sqlite"
)

// slowRevocations is a store whose grant revocations, once armed, take until the context they
// are given ends or 300 ms pass (a busy database), then go on with that context.
type slowRevocations struct {
	rescind.Store
	armed atomic.Bool
}

func (s *slowRevocations) RevokeGrants(ctx context.Context, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	if s.armed.Load() {
		select {
		case <-ctx.Done():
		case <-time.After(300 * time.Millisecond):
		}
	}
	return s.Store.RevokeGrants(ctx, f, rev)
}

// TestTheftRevocationSurvivesTheReplayerHangingUp: a code or refresh token replayed by its own
// client revokes the grant (RFC 6749 §4.1.2, RFC 9700 §4.14.2) even if the replayer, perhaps the
// thief, hangs up before the answer: the revocation is the server's, not the request's.
func TestTheftRevocationSurvivesTheReplayerHangingUp(t *testing.T) {
	for _, replay := range []string{"code", "refresh token"} {
		t.Run(replay, func(t *testing.T) {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			ss := &slowRevocations{Store: st}
			e := newEnvStore(t, ss)
			b := e.browser()
			b.login("alice")
			verifier, challenge := pkcePair("x")
			code := b.approve(authorizeQuery("webapp", "https://app.example/cb", "read", challenge)).Get("code")
			form := codeForm(code, "https://app.example/cb", verifier)
			r, tk := e.exchange("webapp", appSecret, form)
			if r.status != 200 {
				t.Fatalf("redemption: %d %s", r.status, r.body)
			}
			if replay == "refresh token" {
				if r, _ := e.exchange("webapp", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}); r.status != 200 {
					t.Fatalf("refresh: %d %s", r.status, r.body)
				}
				form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}}
			}
			ss.armed.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			hr, _ := http.NewRequestWithContext(ctx, "POST", e.srv.URL+"/oauth2/token", strings.NewReader(form.Encode()))
			hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			hr.SetBasicAuth("webapp", url.QueryEscape(appSecret))
			if res, err := http.DefaultClient.Do(hr); err == nil {
				res.Body.Close()
				t.Fatalf("the replay was answered (%d) before the client hung up", res.StatusCode)
			}
			for deadline := time.Now().Add(5 * time.Second); e.active(tk.access); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("5 s after a %s replay whose client hung up, the grant's access token is active", replay)
				}
			}
		})
	}
}
