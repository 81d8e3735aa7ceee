package admin_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
)

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// slowCommits is a store whose commits of client cut-offs take commit on the clock.
type slowCommits struct {
	rescind.Store
	clock  *testClock
	commit time.Duration
}

func (s *slowCommits) Revoke(ctx context.Context, revs []rescind.Revocation) error {
	for _, r := range revs {
		if r.Kind == rescind.RevokeClient {
			s.clock.Advance(s.commit)
			break
		}
	}
	return s.Store.Revoke(ctx, revs)
}

// cutoffEnv is an admin server with its revocation state, on SQLite.
type cutoffEnv struct {
	clock *testClock
	store rescind.Store
	state *revocation.State
	h     *admin.Server
}

func newCutoffEnv(t *testing.T, skew, commit time.Duration) *cutoffEnv {
	st, err := sqlite.Open(context.Background(), t.TempDir()+"/db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &testClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	store := &slowCommits{Store: st, clock: clock, commit: commit}
	state := revocation.NewState()
	committer := revocation.NewCommitter(store, state, nil)
	t.Cleanup(committer.Close)
	reg, err := clientreg.New(clientreg.Config{Store: store, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	h := admin.New(admin.Config{Store: store, Clients: reg, Revoked: state, Committer: committer, ClockSkew: skew,
		TokenTTL: func(d time.Duration) time.Duration { return max(d, time.Hour) }, HashParams: secret.Params{Memory: 64, Time: 1, Threads: 1},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: clock.Now})
	return &cutoffEnv{clock: clock, store: store, state: state, h: h}
}

func (e *cutoffEnv) call(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	w := httptest.NewRecorder()
	e.h.Handler(false).ServeHTTP(w, httptest.NewRequest(method, path, strings.NewReader(body)))
	return w.Code, w.Body.Bytes()
}

func (e *cutoffEnv) newClient(t *testing.T) string {
	t.Helper()
	code, body := e.call(t, "POST", "/admin/v1/clients", `{"client_name":"svc"}`)
	var info admin.ClientInfo
	if json.Unmarshal(body, &info); code != 201 || info.ClientID == "" {
		t.Fatalf("creating a client: %d %s", code, body)
	}
	return info.ClientID
}

// clientRecord returns the stored cut-off of client id.
func (e *cutoffEnv) clientRecord(t *testing.T, id string) rescind.Revocation {
	t.Helper()
	revs, err := e.store.RevocationsSince(context.Background(), 0, time.Time{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		if r.Kind == rescind.RevokeClient && r.Key == id {
			return r
		}
	}
	t.Fatalf("no cut-off stored for client %s", id)
	return rescind.Revocation{}
}

// TestRevokeAllClientCoversEveryTokenIssuedBeforeTheAnswer: revoke-all --client revokes every
// token of the client that any instance can have issued before the revocation was acknowledged:
// those issued while its commit ran, and those of an instance whose clock is ahead by up to the
// clock skew. A token is covered when its iat is at or before the cut-off; the latest iat such a
// token can carry is this instance's clock at the answer plus the skew.
func TestRevokeAllClientCoversEveryTokenIssuedBeforeTheAnswer(t *testing.T) {
	cases := []struct {
		name         string
		skew, commit time.Duration
	}{
		{"instant commit, default skew", time.Minute, 0},
		{"commit of 300 ms", time.Minute, 300 * time.Millisecond},
		{"commit longer than the first margin", time.Minute, 3 * time.Second},
		{"skew of an hour, commit of 10 s", time.Hour, 10 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newCutoffEnv(t, tc.skew, tc.commit)
			id := e.newClient(t)
			before := e.clock.Now()
			code, body := e.call(t, "POST", "/admin/v1/revoke-all", `{"client":"`+id+`"}`)
			acked := e.clock.Now()
			var res admin.RevokeResult
			if json.Unmarshal(body, &res); code != 200 || !res.ClientTokensRevoked || res.RevokedBefore == nil {
				t.Fatalf("revoke-all --client: %d %s", code, body)
			}
			latest := acked.Add(tc.skew) // issued just before the answer by an instance ahead by the skew
			for _, iat := range []time.Time{before.Add(-time.Hour), before, acked, latest} {
				if !e.state.IsRevoked("x", "", id, iat) {
					t.Errorf("a token issued at %s (revocation asked at %s, answered at %s, skew %s) is not revoked",
						iat.Format(time.TimeOnly), before.Format(time.TimeOnly), acked.Format(time.TimeOnly), tc.skew)
				}
			}
			rec := e.clientRecord(t, id)
			if !rec.RevokedAt.Equal(*res.RevokedBefore) || rec.RevokedAt.Before(latest) {
				t.Errorf("stored cut-off %s, answered %s; want one and the same, at or after %s", rec.RevokedAt, res.RevokedBefore, latest)
			}
			// Every covered token lives at most 30 days from its iat (at most the cut-off).
			if want := rec.RevokedAt.Add(rescind.MaxAccessTokenTTL); !rec.ExpiresAt.Equal(want) {
				t.Errorf("the cut-off's record expires at %s, want %s (30 days after the cut-off)", rec.ExpiresAt, want)
			}
			audit, err := e.store.ListAudit(context.Background(), 100)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, a := range audit {
				if a.Action == "revoke_client" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d audit entries for the cut-off, want 1", n)
			}
		})
	}
}

// TestRevokeAllClientRefusesWhenCommitsNeverFitTheMargin: a store whose commits take an hour
// never lets the cut-off be shown to cover what was issued meanwhile: the revocation is not
// acknowledged (500), though its records are in force.
func TestRevokeAllClientRefusesWhenCommitsNeverFitTheMargin(t *testing.T) {
	e := newCutoffEnv(t, time.Minute, time.Hour)
	id := e.newClient(t)
	code, body := e.call(t, "POST", "/admin/v1/revoke-all", `{"client":"`+id+`"}`)
	if code != 500 || !strings.Contains(string(body), "server_error") {
		t.Fatalf("revoke-all --client with hour-long commits: %d %s, want 500", code, body)
	}
}

// TestDeletedClientRecordOutlivesTokensOfSkewedStaleInstances: a deleted client's record lives
// until every token the client can have been issued has expired, including one issued by an
// instance that had not learnt of the deletion yet (its cached copy of the client lasts a
// minute) and whose clock is ahead by the whole skew, up to an hour.
func TestDeletedClientRecordOutlivesTokensOfSkewedStaleInstances(t *testing.T) {
	for _, skew := range []time.Duration{time.Second, time.Minute, time.Hour} {
		t.Run(skew.String(), func(t *testing.T) {
			e := newCutoffEnv(t, skew, 0)
			id := e.newClient(t)
			deleted := e.clock.Now()
			if code, body := e.call(t, "DELETE", "/admin/v1/clients/"+id, ""); code != 204 {
				t.Fatalf("deleting the client: %d %s", code, body)
			}
			// A stale instance, ahead by the skew, issues a token a minute after the deletion,
			// with the longest lifetime there is.
			iat := deleted.Add(time.Minute + skew)
			exp := iat.Add(rescind.MaxAccessTokenTTL)
			rec := e.clientRecord(t, id)
			if !e.state.IsRevoked("x", "", id, iat) {
				t.Errorf("the stale instance's token is not covered by the deletion (cut-off %s, iat %s)", rec.RevokedAt, iat)
			}
			if rec.ExpiresAt.Before(exp) {
				t.Errorf("the deletion's record expires at %s, before the stale instance's token (exp %s): the janitor would revive it",
					rec.ExpiresAt, exp)
			}
		})
	}
}
