package secret

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var cheap = Params{Memory: 64, Time: 1, Threads: 1}

// TestGateBounds: no more than Running checks run at once, no more than Queued wait, and a check
// that waits past Wait gets ErrBusy; the others all complete.
func TestGateBounds(t *testing.T) {
	g := NewGate(GateConfig{Running: 2, Queued: 3, Wait: time.Hour, Params: cheap})
	// Fill the two running slots by hand, so the test controls when they free up.
	g.run <- struct{}{}
	g.run <- struct{}{}
	h, _ := Hash("s", cheap)
	var busy, done atomic.Int32
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := g.Verify(context.Background(), "s", h)
			switch {
			case errors.Is(err, ErrBusy):
				busy.Add(1)
			case err == nil && ok:
				done.Add(1)
			default:
				t.Errorf("Verify: %v %v", ok, err)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for busy.Load() < 7 {
		if time.Now().After(deadline) {
			t.Fatalf("%d refused as busy, want 7 (3 queued)", busy.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if len(g.queue) != 3 {
		t.Fatalf("%d waiting, want 3", len(g.queue))
	}
	<-g.run
	<-g.run
	wg.Wait()
	if busy.Load() != 7 || done.Load() != 3 {
		t.Fatalf("busy %d, done %d; want 7 and 3", busy.Load(), done.Load())
	}
}

func TestGateWaitTimesOut(t *testing.T) {
	g := NewGate(GateConfig{Running: 1, Queued: 1, Wait: 20 * time.Millisecond, Params: cheap})
	g.run <- struct{}{}
	if _, err := g.Verify(context.Background(), "s", "x"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a check that waited past Wait: %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.Verify(ctx, "s", "x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	<-g.run
	if err := g.VerifyNone(context.Background(), "s"); err != nil {
		t.Fatalf("VerifyNone: %v", err)
	}
}

// TestGatePerClaimant (audit of issue 12, finding 1): the checks of one claimant hold at most
// PerClaimant places, running and waiting; a check beyond them is refused at once, while
// another claimant's (or an unnamed) check still gets its turn; places come back when checks end.
func TestGatePerClaimant(t *testing.T) {
	g := NewGate(GateConfig{Running: 1, Queued: 10, Wait: time.Hour, PerClaimant: 3, Params: cheap})
	g.run <- struct{}{} // the running slot is taken: every check below waits
	h, _ := Hash("s", cheap)
	attacker := WithClaimant(context.Background(), "2001:db8::/64")
	results := make(chan error, 4)
	for range 3 {
		go func() { _, err := g.Verify(attacker, "s", h); results <- err }()
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(g.queue) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiting, want the claimant's 3", len(g.queue))
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := g.Verify(attacker, "s", h); !errors.Is(err, ErrShareInUse) || !errors.Is(err, ErrBusy) {
		t.Fatalf("a fourth check of one claimant: %v, want ErrShareInUse (an ErrBusy)", err)
	}
	go func() { _, err := g.Verify(WithClaimant(context.Background(), "198.51.100.7"), "s", h); results <- err }()
	for len(g.queue) < 4 {
		if time.Now().After(deadline) {
			t.Fatal("another claimant's check did not get a place")
		}
		time.Sleep(time.Millisecond)
	}
	<-g.run
	for range 4 {
		if err := <-results; err != nil {
			t.Fatalf("a check within the bounds: %v", err)
		}
	}
	g.mu.Lock()
	left := len(g.held)
	g.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d claimants still hold places after their checks ended", left)
	}
	if ok, err := g.Verify(attacker, "s", h); err != nil || !ok {
		t.Fatalf("the claimant's places did not come back: %v %v", ok, err)
	}
}
