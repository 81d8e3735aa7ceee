package ratelimit

import (
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
