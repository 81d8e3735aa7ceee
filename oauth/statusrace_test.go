package oauth_test

import (
	"context"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// revokeBeforeStatus is a store that, once armed, has the grant revoked (acknowledged) just
// before the status list entry of a grant's JWT is recorded: the revocation that commits between
// the redemption or rotation and the recording.
type revokeBeforeStatus struct {
	rescind.Store
	armed  atomic.Bool
	revoke func(grantID string)
}

func (s *revokeBeforeStatus) RecordGrantTokenStatus(ctx context.Context, grantID, list string, idx int64, exp time.Time) error {
	if s.armed.CompareAndSwap(true, false) {
		s.revoke(grantID)
	}
	return s.Store.RecordGrantTokenStatus(ctx, grantID, list, idx, exp)
}

// TestGrantRevokedBeforeStatusEntry: a grant revoked after the code redemption or refresh that
// precedes its JWT, but before the JWT's status list entry is recorded, gets no token (the
// request fails with invalid_grant): a token whose entry the revocation could not flip would be
// valid in the status list until its exp. Every entry of a token the grant was issued is flipped.
func TestGrantRevokedBeforeStatusEntry(t *testing.T) {
	for _, path := range []string{"code", "refresh"} {
		t.Run(path, func(t *testing.T) {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
			if err != nil {
				t.Fatal(err)
			}
			rs := &revokeBeforeStatus{Store: st}
			e := newEnvStore(t, rs)
			rs.revoke = func(grantID string) {
				if _, _, err := e.committer.RevokeGrants(context.Background(), rescind.GrantFilter{GrantID: grantID},
					rescind.Revocation{RevokedAt: e.clock(), Actor: "user:alice", Reason: "connected apps page"}); err != nil {
					t.Errorf("revoking: %v", err)
				}
			}
			b := e.browser()
			b.login("alice")
			verifier, challenge := pkcePair("r")
			code := b.approve(authorizeQuery("jwtweb", "https://jwt.example/cb", "read", challenge)).Get("code")
			var issued []string
			if path == "code" {
				rs.armed.Store(true)
			}
			r, tk := e.exchange("jwtweb", appSecret, codeForm(code, "https://jwt.example/cb", verifier))
			if path == "refresh" {
				if r.status != 200 {
					t.Fatalf("redemption: %d %s", r.status, r.body)
				}
				issued = append(issued, tk.access)
				rs.armed.Store(true)
				r, _ = e.exchange("jwtweb", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}})
			}
			if rs.armed.Load() {
				t.Fatal("no status entry was recorded")
			}
			wantError(t, r, 400, "invalid_grant")
			for _, tok := range issued {
				ref := statusOf(t, e, tok)
				uri, idx, _ := strings.Cut(ref, "#")
				i, _ := strconv.ParseInt(idx, 10, 64)
				raw, _ := e.state.StatusList(uri[strings.LastIndex(uri, "/")+1:], 1<<17)
				if st, _ := token.StatusAt(raw, 1, i); st == token.StatusValid || e.active(tok) {
					t.Fatalf("a token of the revoked grant: status entry %d, active %t", st, e.active(tok))
				}
			}
		})
	}
}
