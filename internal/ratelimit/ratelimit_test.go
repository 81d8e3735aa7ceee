package ratelimit

import (
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
