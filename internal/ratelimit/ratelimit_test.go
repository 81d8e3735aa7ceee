package ratelimit

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFailuresOnly(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	l := New(Config{Burst: 3, PerMinute: 6, Now: func() time.Time { return now }})
	for i := range 3 {
		if ok, _ := l.Allow("addr", "id|addr"); !ok {
			t.Fatalf("attempt %d refused within the burst", i)
		}
		l.Fail("addr", "id|addr")
	}
	ok, retry := l.Allow("addr", "id|addr")
	if ok || retry != 10*time.Second {
		t.Fatalf("after the burst: ok %v, retry %v; want refused, 10s (6 a minute)", ok, retry)
	}
	if ok, _ := l.Allow("other-addr", "id|other-addr"); !ok {
		t.Fatal("another address is locked out by this one's failures")
	}
	now = now.Add(10 * time.Second)
	if ok, _ := l.Allow("addr", "id|addr"); !ok {
		t.Fatal("a token did not come back")
	}
	// Successes take nothing: Allow alone never empties a bucket.
	for range 100 {
		if ok, _ := l.Allow("fresh"); !ok {
			t.Fatal("Allow consumed tokens")
		}
	}
}

// TestReserveHoldsUnderConcurrency: of many concurrent attempts on one bucket, only Burst get a
// reservation (Allow then Fail would let them all through); refunds give tokens back.
func TestReserveHoldsUnderConcurrency(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(Config{Burst: 10, PerMinute: 1, Now: func() time.Time { return now }})
	var mu sync.Mutex
	var got []*Reservation
	var wg sync.WaitGroup
	for range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, ok, _ := l.Reserve("addr:a", "user:x|a"); ok {
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(got) != 10 {
		t.Fatalf("%d of 60 concurrent attempts reserved, want the burst (10)", len(got))
	}
	if _, ok, retry := l.Reserve("addr:a"); ok || retry <= 0 {
		t.Fatalf("an 11th attempt: ok=%v retry=%v", ok, retry)
	}
	got[0].Refund()
	got[0].Refund() // twice gives back once
	if _, ok, _ := l.Reserve("addr:a"); !ok {
		t.Fatal("no token after a refund")
	}
	if _, ok, _ := l.Reserve("addr:a"); ok {
		t.Fatal("a refund given back twice")
	}
	var nilRes *Reservation
	nilRes.Refund()
}

// TestPerHour: a rate below one a minute. Burst 10 and 10 an hour: the eleventh attempt waits
// six minutes, and an hour later ten more pass.
func TestPerHour(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(Config{Burst: 10, PerMinute: 100, PerHour: 10, Now: func() time.Time { return now }})
	for i := range 10 {
		if _, ok, _ := l.Reserve("reg:a"); !ok {
			t.Fatalf("attempt %d refused within the burst", i)
		}
	}
	if _, ok, retry := l.Reserve("reg:a"); ok || retry != 6*time.Minute {
		t.Fatalf("eleventh attempt: ok %v, retry %v; want refused, 6m (PerHour overrides PerMinute)", ok, retry)
	}
	now = now.Add(time.Hour)
	for i := range 10 {
		if _, ok, _ := l.Reserve("reg:a"); !ok {
			t.Fatalf("an hour later, attempt %d refused", i)
		}
	}
}

// heapAfterGC returns the live heap.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestRefundedBucketsGo (audit of issue 12, finding 2): a reservation given back (a success, or
// a busy server) leaves no bucket behind, whatever its keys; before, 2,000 refunded attempts
// with 60 KiB usernames kept 2,001 buckets and 125 MiB.
func TestRefundedBucketsGo(t *testing.T) {
	l := New(Config{})
	big := strings.Repeat("u", 60<<10)
	before := heapAfterGC()
	for i := range 2000 {
		res, ok, _ := l.Reserve("login-addr:2001:db8::/64", "user:"+strconv.Itoa(i)+big)
		if !ok {
			t.Fatalf("attempt %d limited", i)
		}
		res.Refund()
	}
	if n := l.Len(); n != 0 {
		t.Fatalf("%d buckets after 2,000 refunded attempts; want none", n)
	}
	if grew := int64(heapAfterGC()) - int64(before); grew > 4<<20 {
		t.Fatalf("refunded attempts keep %d MiB", grew>>20)
	}
	// A refund that leaves a bucket short of full keeps it: the failures before it still count.
	res, _, _ := l.Reserve("a")
	l.Fail("a")
	res.Refund()
	if n := l.Len(); n != 1 {
		t.Fatalf("a bucket with a failure in it was dropped (%d buckets)", n)
	}
}

// TestLongKeysCostTheirHash (finding 2): a bucket costs the same for a 60 KiB key as for a short
// one: failures with 2,000 new 60 KiB keys keep well under 1 MiB (120 MiB before).
func TestLongKeysCostTheirHash(t *testing.T) {
	l := New(Config{})
	big := strings.Repeat("u", 60<<10)
	before := heapAfterGC()
	for i := range 2000 {
		l.Fail("user:" + strconv.Itoa(i) + big)
	}
	grew := int64(heapAfterGC()) - int64(before)
	if l.Len() != 2000 || grew > 1<<20 {
		t.Fatalf("%d buckets, heap +%d KiB; want 2000 buckets in under 1 MiB", l.Len(), grew>>10)
	}
	if ok, _ := l.Allow("user:1" + big); ok != true {
		t.Fatal("a bucket with one failure refuses")
	}
}

// TestMaxBuckets (finding 2): past MaxBuckets the bucket charged least recently goes; the
// buckets charged since, an attacker's empty one among them, stay.
func TestMaxBuckets(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := New(Config{Burst: 2, PerMinute: 1, MaxBuckets: 100, Now: func() time.Time { return now }})
	l.Fail("first")
	l.Fail("attacker")
	l.Fail("attacker")
	for i := range 98 {
		l.Fail("filler" + strconv.Itoa(i))
	}
	if l.Len() != 100 {
		t.Fatalf("%d buckets; want 100", l.Len())
	}
	l.Fail("attacker") // charged again: the most recent
	l.Fail("one more")
	if l.Len() != 100 {
		t.Fatalf("%d buckets past the cap; want 100", l.Len())
	}
	if ok, _ := l.Allow("attacker"); ok {
		t.Fatal("the cap forgot the empty bucket charged last")
	}
	l.mu.Lock()
	_, kept := l.buckets[keyOf("first")]
	l.mu.Unlock()
	if kept {
		t.Fatal("the bucket charged least recently was kept past the cap")
	}
}
