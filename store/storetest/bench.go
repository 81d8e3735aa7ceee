package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// RunBenchmarks measures the store operations on the request and revocation paths, each on a
// fresh store from open (which must close it when b ends):
//
//   - Revoke/1 and Revoke/64: one transaction writing one or 64 records (the revocation
//     endpoint's path; the group commit batches concurrent requests);
//   - RevokeGrant: revoking one grant with a refresh token, a code and a status list entry;
//   - GetClient and ListGrants: plain reads.
//
// To compare two versions, build both test binaries (go test -c) and run them alternately for
// several rounds, in both orders: on a busy machine the second of two runs in a row was often
// 10-20% slower, whatever the code.
func RunBenchmarks(b *testing.B, open func(b *testing.B) rescind.Store) {
	ctx := context.Background()
	for _, n := range []int{1, 64} {
		b.Run(fmt.Sprintf("Revoke/%d", n), func(b *testing.B) {
			s := open(b)
			batch := make([]rescind.Revocation, n)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				for j := range batch {
					batch[j] = tokenRev(fmt.Sprintf("t%d-%d", i, j), base.Add(time.Hour))
				}
				if err := s.Revoke(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("RevokeGrant", func(b *testing.B) {
		s := open(b)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			b.StopTimer()
			id := fmt.Sprintf("g%d", i)
			if _, err := s.SaveGrant(ctx, grant(id, "c1", id, "read")); err != nil {
				b.Fatal(err)
			}
			s.CreateRefreshToken(ctx, refresh("r"+id, id, base.Add(time.Hour)))
			s.CreateCode(ctx, sampleCode("h"+id, id))
			s.RecordGrantTokenStatus(ctx, id, "list", int64(i), base.Add(time.Hour))
			b.StartTimer()
			if revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: id}, rescind.Revocation{RevokedAt: base}); err != nil || len(revs) != 2 {
				b.Fatalf("RevokeGrants = %d records, %v", len(revs), err)
			}
		}
	})
	b.Run("GetClient", func(b *testing.B) {
		s := open(b)
		if err := s.CreateClient(ctx, sampleClient("c")); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetClient(ctx, "c"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListGrants", func(b *testing.B) {
		s := open(b)
		for i := range 10 {
			s.SaveGrant(ctx, grant(fmt.Sprintf("g%d", i), fmt.Sprintf("c%d", i), "u", "read", "write"))
		}
		b.ReportAllocs()
		for b.Loop() {
			if gs, err := s.ListGrants(ctx, rescind.GrantFilter{UserID: "u"}); err != nil || len(gs) != 10 {
				b.Fatalf("ListGrants = %d, %v", len(gs), err)
			}
		}
	})
}
