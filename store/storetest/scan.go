package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// scanned is a RevocationEntry copied out of the ScanRevocations callback.
type scanned struct {
	seq                  int64
	kind                 rescind.RevocationKind
	key, list            string
	revokedAt, expiresAt int64
	idx                  int64
}

// scanAll scans (after, upto] at now and returns copies of the entries.
func scanAll(t *testing.T, s rescind.Store, after, upto int64, now time.Time) []scanned {
	t.Helper()
	var out []scanned
	err := s.ScanRevocations(context.Background(), after, upto, now, func(e *rescind.RevocationEntry) error {
		out = append(out, scanned{e.Seq, e.Kind, string(e.Key), string(e.StatusList), e.RevokedAt, e.ExpiresAt, e.StatusIdx})
		return nil
	})
	if err != nil {
		t.Fatalf("ScanRevocations(%d, %d]: %v", after, upto, err)
	}
	return out
}

// testScanRevocations: ScanRevocations passes every unexpired record of its Seq range, in Seq
// order, as RevocationsSince returns it (kind, key, times, status entry), a merged record once
// with its new Seq; it honours both ends of the range, stops at the callback's error, and
// concurrent scans of disjoint ranges see their own records.
func testScanRevocations(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if got := scanAll(t, s, 0, 1<<62, base); len(got) != 0 {
		t.Fatalf("an empty store scanned %+v", got)
	}
	revs := []rescind.Revocation{
		tokenRev("opaque-jti", base.Add(time.Hour)),
		{Kind: rescind.RevokeToken, Key: "jwt-jti", ClientID: "client", RevokedAt: base, ExpiresAt: base.Add(2 * time.Hour),
			StatusList: "list1", StatusIdx: 4711},
		{Kind: rescind.RevokeGrant, Key: "grant-1", ClientID: "client", RevokedAt: base, ExpiresAt: base.Add(3 * time.Hour)},
		{Kind: rescind.RevokeStatus, Key: "list1#9", ClientID: "client", RevokedAt: base, ExpiresAt: base.Add(3 * time.Hour),
			StatusList: "list1", StatusIdx: 9},
		{Kind: rescind.RevokeClient, Key: "client-2", ClientID: "client-2", RevokedAt: base.Add(time.Second), ExpiresAt: base.Add(4 * time.Hour)},
		tokenRev("expired", base.Add(-time.Nanosecond)),
	}
	for _, r := range revs {
		if err := s.Revoke(ctx, []rescind.Revocation{r}); err != nil {
			t.Fatal(err)
		}
	}
	// Revoking the first again, later: merged, with a new Seq.
	again := tokenRev("opaque-jti", base.Add(5*time.Hour))
	if err := s.Revoke(ctx, []rescind.Revocation{again}); err != nil {
		t.Fatal(err)
	}
	want, err := s.RevocationsSince(ctx, 0, base, 100)
	if err != nil || len(want) != 5 {
		t.Fatalf("RevocationsSince = %d records, %v; want 5", len(want), err)
	}
	last, err := s.LastRevocationSeq(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := scanAll(t, s, 0, last, base)
	if len(got) != len(want) {
		t.Fatalf("scanned %+v; want the %d records RevocationsSince returns", got, len(want))
	}
	for i, w := range want {
		list, idx := w.StatusList, w.StatusIdx
		if list == "" {
			idx = -1
		}
		g := got[i]
		if g.seq != w.Seq || g.kind != w.Kind || g.key != w.Key || g.revokedAt != w.RevokedAt.UnixNano() ||
			g.expiresAt != w.ExpiresAt.UnixNano() || g.list != list || g.idx != idx {
			t.Fatalf("entry %d = %+v; want %+v", i, g, w)
		}
	}
	if g := got[len(got)-1]; g.key != "opaque-jti" || g.expiresAt != base.Add(5*time.Hour).UnixNano() {
		t.Fatalf("the merged record scanned as %+v; want last, with the later expiry", g)
	}
	// Both ends of the range: (second, fourth] holds the third and fourth.
	if r := scanAll(t, s, want[1].Seq, want[3].Seq, base); len(r) != 2 || r[0].seq != want[2].Seq || r[1].seq != want[3].Seq {
		t.Fatalf("scan (%d, %d] = %+v", want[1].Seq, want[3].Seq, r)
	}
	// Expiry at now is kept, before now dropped, as RevocationsSince does.
	if r := scanAll(t, s, 0, last, base.Add(2*time.Hour)); len(r) != 5 || r[0].key != "jwt-jti" {
		t.Fatalf("scan at the jwt-jti record's expiry = %+v; want it and the 4 that expire later", r)
	}
	if r := scanAll(t, s, 0, last, base.Add(2*time.Hour+time.Nanosecond)); len(r) != 4 || r[0].key != "grant-1" {
		t.Fatalf("scan just after the jwt-jti record's expiry = %+v; want the 4 that expire later", r)
	}
	// The callback's error stops the scan.
	stop := errors.New("enough")
	calls := 0
	err = s.ScanRevocations(ctx, 0, last, base, func(*rescind.RevocationEntry) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("a failing callback: %d calls, %v; want 1 call and its error", calls, err)
	}
	// Disjoint ranges at once.
	var batch []rescind.Revocation
	for i := range 400 {
		batch = append(batch, tokenRev(fmt.Sprintf("bulk-%03d", i), base.Add(time.Hour)))
	}
	if err := s.Revoke(ctx, batch); err != nil {
		t.Fatal(err)
	}
	top, _ := s.LastRevocationSeq(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[string]int{}
	errs := make(chan error, 4)
	for part := range int64(4) {
		lo, hi := last+(top-last)*part/4, last+(top-last)*(part+1)/4
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.ScanRevocations(ctx, lo, hi, base, func(e *rescind.RevocationEntry) error {
				if e.Seq <= lo || e.Seq > hi {
					return fmt.Errorf("seq %d outside (%d, %d]", e.Seq, lo, hi)
				}
				mu.Lock()
				seen[string(e.Key)]++
				mu.Unlock()
				return nil
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 400 {
		t.Fatalf("4 concurrent scans saw %d distinct records; want 400", len(seen))
	}
	for k, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", k, n)
		}
	}
}
