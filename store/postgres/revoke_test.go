package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/pgtest"
)

// TestRevokeOneRoundTrip: Revoke writes a batch (records, audit entries, notifications, the
// writers' lock) in one round trip to the server, whatever its size, committed as one
// transaction; and a batch that holds a record twice (two requests revoking one token) merges it.
func TestRevokeOneRoundTrip(t *testing.T) {
	proxy, dsn := pgtest.NewProxy(t, pgtest.NewDatabase(t))
	s := open(t, dsn+"&pool_max_conns=1")
	ctx := context.Background()
	base := time.Now().Add(time.Hour)
	batch := func(prefix string, n int) []rescind.Revocation {
		var revs []rescind.Revocation
		for i := range n {
			revs = append(revs, rescind.Revocation{Kind: rescind.RevokeToken, Key: fmt.Sprintf("%s-%d", prefix, i), ClientID: "c",
				RevokedAt: base, ExpiresAt: base.Add(time.Hour), Actor: "client:c", Reason: "test", StatusList: "l", StatusIdx: int64(i)})
		}
		return revs
	}
	// Once each, so that the connection has prepared the statements of both notification forms.
	for _, n := range []int{3, 100} {
		if err := s.Revoke(ctx, batch(fmt.Sprint("warm", n), n)); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []int{1, 40, 300} { // notified one by one; 300: a reload notice
		revs := batch(fmt.Sprint("b", n), n)
		revs = append(revs, revs[0]) // the same token twice in one batch
		revs[len(revs)-1].ExpiresAt = base.Add(2 * time.Hour)
		proxy.Reset()
		if err := s.Revoke(ctx, revs); err != nil {
			t.Fatalf("batch of %d: %v", len(revs), err)
		}
		if rt := proxy.RoundTrips(); rt != 1 {
			t.Fatalf("a batch of %d records took %d round trips; want 1", len(revs), rt)
		}
	}
	revs, err := s.RevocationsSince(ctx, 0, base, 1000)
	if err != nil || len(revs) != 3+100+1+40+300 {
		t.Fatalf("%d records stored (%v); want 444", len(revs), err)
	}
	for _, r := range revs {
		if r.Key == "b40-0" && !r.ExpiresAt.Equal(base.Add(2*time.Hour)) {
			t.Fatalf("a record given twice in a batch: %+v; want the later expiry", r)
		}
	}
	if a, err := s.ListAudit(ctx, 1000); err != nil || len(a) != 3+100+2+41+301 {
		t.Fatalf("%d audit entries (%v); want one per record given, 447", len(a), err)
	}
}
