package revocation

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/store/postgres"
)

// TestCommitterBatchesOnPostgres: concurrent revocations that arrive while a commit is in
// flight share the next commit on PostgreSQL, as on SQLite, and each commit is one round trip
// to the server: 50 callers, one held commit, then one for the 49 queued behind it.
func TestCommitterBatchesOnPostgres(t *testing.T) {
	proxy, dsn := pgtest.NewProxy(t, pgtest.NewDatabase(t))
	st, err := postgres.Open(context.Background(), dsn+"&pool_max_conns=1")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	state := NewState()
	c := NewCommitter(st, state, nil)
	defer c.Close()
	rev := func(i int) rescind.Revocation {
		return rescind.Revocation{Kind: rescind.RevokeToken, Key: fmt.Sprint("t", i), ClientID: "c", RevokedAt: t0,
			ExpiresAt: t0.Add(time.Hour), Actor: "client:c", Reason: "test"}
	}
	if err := c.Revoke(context.Background(), rev(-1)); err != nil { // prepares the statements
		t.Fatal(err)
	}
	proxy.Reset()
	proxy.Hold()
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	wg.Add(1)
	go func() { defer wg.Done(); errs[0] = c.Revoke(context.Background(), rev(0)) }()
	for deadline := time.Now().Add(10 * time.Second); proxy.RoundTrips() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first commit never reached the server")
		}
	}
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = c.Revoke(context.Background(), rev(i)) }()
	}
	for deadline := time.Now().Add(10 * time.Second); len(c.reqs) < n-1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d revocations queued behind the held commit in 10 s", len(c.reqs), n-1)
		}
	}
	proxy.Release()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Revoke %d: %v", i, err)
		}
		if !state.IsRevoked(fmt.Sprint("t", i), "", "c", t0) {
			t.Fatalf("revocation %d acknowledged but not in the state", i)
		}
	}
	if rt := proxy.RoundTrips(); rt != 2 {
		t.Fatalf("%d round trips for %d concurrent revocations; want 2 (the held commit, then one for the rest)", rt, n)
	}
	if recs, _ := st.RevocationsSince(context.Background(), 0, t0, 100); len(recs) != n+1 {
		t.Fatalf("%d records stored; want %d", len(recs), n+1)
	}
}

// BenchmarkGroupCommitPostgres is BenchmarkGroupCommit on PostgreSQL (synchronous_commit as
// the server is configured): 16 concurrent callers, each revocation durable before it returns.
func BenchmarkGroupCommitPostgres(b *testing.B) {
	st, err := postgres.Open(context.Background(), pgtest.NewDatabase(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c := NewCommitter(st, NewState(), nil)
	defer c.Close()
	var n atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := c.Revoke(context.Background(), rescind.Revocation{Kind: rescind.RevokeToken, Key: fmt.Sprint("t", i),
				ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour), Actor: "client:c", Reason: "revocation endpoint"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
