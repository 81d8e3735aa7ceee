package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// testRevokeBatchDuplicates: one Revoke may carry a record twice (the committer batches
// concurrent requests, and two may revoke one token): it is merged as two Revokes would merge
// it (the later expiry and revocation time kept), and each gets its audit entry.
func testRevokeBatchDuplicates(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	a1 := tokenRev("dup", base.Add(time.Hour))
	a1.Actor, a1.Reason = "client:client", "first"
	a2 := tokenRev("dup", base.Add(2*time.Hour))
	a2.RevokedAt = base.Add(time.Second)
	a2.Actor, a2.Reason = "client:client", "second"
	a3 := tokenRev("dup", base.Add(30*time.Minute)) // earlier: changes nothing
	other := tokenRev("other", base.Add(time.Hour))
	if err := s.Revoke(ctx, []rescind.Revocation{a1, other, a2, a3}); err != nil {
		t.Fatalf("Revoke of a batch holding one token thrice: %v", err)
	}
	revs, err := s.RevocationsSince(ctx, 0, base, 10)
	if err != nil || len(revs) != 2 {
		t.Fatalf("RevocationsSince = %+v, %v; want 2 records", revs, err)
	}
	for _, r := range revs {
		if r.Key == "dup" && (!r.ExpiresAt.Equal(base.Add(2*time.Hour)) || !r.RevokedAt.Equal(base.Add(time.Second))) {
			t.Fatalf("merged record %+v; want the later expiry and revocation time", r)
		}
	}
	if a, err := s.ListAudit(ctx, 10); err != nil || len(a) != 2 {
		t.Fatalf("audit entries %+v, %v; want one for each of the two records with an actor", a, err)
	}
}
