package storetest

import (
	"context"
	"fmt"
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

// testRevokeBatchMerges: a batch whose records merge with each other and with stored ones ends
// as the same batch written one record at a time would: a key thrice with rising expiries keeps
// the latest times and the audience of its first record; a key already stored keeps its
// audience and gets a new Seq when its times move, and keeps its Seq when the batch's record is
// covered; a key repeated across a long batch (past any chunking of the write) merges too; and
// every record with an actor has its audit entry.
func testRevokeBatchMerges(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	stored := tokenRev("stored", base.Add(time.Hour))
	stored.Audience = []string{"https://stored.example"}
	covering := tokenRev("covering", base.Add(5*time.Hour))
	if err := s.Revoke(ctx, []rescind.Revocation{stored, covering}); err != nil {
		t.Fatal(err)
	}
	before, err := s.RevocationsSince(ctx, 0, base, 10)
	if err != nil || len(before) != 2 {
		t.Fatalf("RevocationsSince = %+v, %v; want 2 records", before, err)
	}
	seqs := map[string]int64{}
	for _, r := range before {
		seqs[r.Key] = r.Seq
	}

	rev := func(key string, exp time.Duration, revokedAt time.Duration, aud string) rescind.Revocation {
		r := tokenRev(key, base.Add(exp))
		r.RevokedAt = base.Add(revokedAt)
		r.Audience = []string{aud}
		r.Actor, r.Reason = "client:client", key
		return r
	}
	batch := []rescind.Revocation{
		rev("thrice", time.Hour, 0, "https://first.example"),
		rev("stored", 3*time.Hour, time.Second, "https://later.example"),
		rev("thrice", 2*time.Hour, time.Second, "https://second.example"),
		rev("covering", time.Hour, 0, "https://later.example"), // covered: changes nothing
		rev("thrice", 3*time.Hour, 2*time.Second, "https://third.example"),
		rev("edge", time.Hour, 0, "https://edge.example"),
	}
	for i := range 70 {
		batch = append(batch, tokenRev(fmt.Sprintf("filler-%02d", i), base.Add(time.Hour)))
	}
	batch = append(batch, rev("edge", 4*time.Hour, 3*time.Second, "https://edge-later.example"))
	if err := s.Revoke(ctx, batch); err != nil {
		t.Fatalf("Revoke of a batch of merges: %v", err)
	}

	revs, err := s.RevocationsSince(ctx, 0, base, 200)
	if err != nil || len(revs) != 2+2+70 {
		t.Fatalf("RevocationsSince = %d records, %v; want %d", len(revs), err, 2+2+70)
	}
	got := map[string]rescind.Revocation{}
	for _, r := range revs {
		got[r.Key] = r
	}
	want := []struct {
		key                string
		expires, revokedAt time.Duration
		audience           string
	}{
		{"thrice", 3 * time.Hour, 2 * time.Second, "https://first.example"},
		{"stored", 3 * time.Hour, time.Second, "https://stored.example"},
		{"covering", 5 * time.Hour, 0, ""},
		{"edge", 4 * time.Hour, 3 * time.Second, "https://edge.example"},
	}
	for _, w := range want {
		r := got[w.key]
		var aud string
		if len(r.Audience) == 1 {
			aud = r.Audience[0]
		}
		if !r.ExpiresAt.Equal(base.Add(w.expires)) || !r.RevokedAt.Equal(base.Add(w.revokedAt)) || aud != w.audience || len(r.Audience) > 1 {
			t.Errorf("record %q = %+v; want expiry base+%v, revoked at base+%v, audience %q", w.key, r, w.expires, w.revokedAt, w.audience)
		}
	}
	if got["stored"].Seq <= seqs["covering"] {
		t.Errorf("the stored record moved but kept Seq %d; want one after %d", got["stored"].Seq, seqs["covering"])
	}
	if got["covering"].Seq != seqs["covering"] {
		t.Errorf("the covering record changed Seq from %d to %d; a covered record changes nothing", seqs["covering"], got["covering"].Seq)
	}
	if a, err := s.ListAudit(ctx, 100); err != nil || len(a) != 7 {
		t.Fatalf("audit: %d entries, %v; want 7, one for each record with an actor", len(a), err)
	}
}
