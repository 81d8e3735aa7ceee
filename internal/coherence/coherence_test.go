package coherence

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/store/sqlite"
)

// fakeWatcher hands events to Run on demand.
type fakeWatcher struct{ fn chan func(rescind.Event) }

func (w *fakeWatcher) Watch(ctx context.Context, fn func(rescind.Event)) error {
	w.fn <- fn
	<-ctx.Done()
	return ctx.Err()
}

func setup(t *testing.T) (*sqlite.Store, *sqlite.Store, *revocation.State, *clientreg.Registry) {
	path := filepath.Join(t.TempDir(), "db")
	mine, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	other, err := sqlite.Open(context.Background(), path) // another instance's handle
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mine.Close(); other.Close() })
	reg, _ := clientreg.New(clientreg.Config{Store: mine})
	return mine, other, revocation.NewState(), reg
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPollAloneDeliversRevocations: with no notifications at all, the poll applies another
// instance's revocation and drops a deleted client from the cache.
func TestPollAloneDeliversRevocations(t *testing.T) {
	mine, other, state, reg := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	now := time.Now()
	other.CreateClient(ctx, rescind.Client{ID: "c", Name: "c", CreatedAt: now})
	if _, err := reg.Get(ctx, "c"); err != nil { // cached on this instance
		t.Fatal(err)
	}
	go Run(ctx, Config{Store: mine, State: state, Clients: reg, PollInterval: 20 * time.Millisecond})

	other.Revoke(ctx, []rescind.Revocation{{Kind: rescind.RevokeToken, Key: "jti", ClientID: "c", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}})
	waitFor(t, "revocation applied by the poll", func() bool { return state.IsRevoked("jti", "", "c", now) })

	until := now.Add(time.Hour)
	other.DeleteClient(ctx, "c", now, rescind.Revocation{Kind: rescind.RevokeClient, Key: "c", ClientID: "c", RevokedAt: until, ExpiresAt: until})
	waitFor(t, "client cut-off applied", func() bool { return state.IsRevoked("any", "", "c", now) })
	if _, err := reg.Get(ctx, "c"); err == nil {
		t.Fatal("deleted client still served from this instance's cache")
	}
}

// TestEventsApplyAtOnce: a notification applies the revocation it carries, with no poll.
func TestEventsApplyAtOnce(t *testing.T) {
	mine, _, state, reg := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &fakeWatcher{fn: make(chan func(rescind.Event), 1)}
	go Run(ctx, Config{Store: mine, Watcher: w, State: state, Clients: reg, PollInterval: time.Hour})
	fn := <-w.fn
	now := time.Now()
	fn(rescind.Event{Kind: rescind.EventRevoked, Revocations: []rescind.Revocation{{Kind: rescind.RevokeToken, Key: "jti", ClientID: "c", ExpiresAt: now.Add(time.Hour)}}})
	if !state.IsRevoked("jti", "", "c", now) {
		t.Fatal("event not applied")
	}
	keysReloaded := false
	c := &coherer{cfg: Config{Store: mine, State: state, Clients: reg, RefreshKeys: func(context.Context) { keysReloaded = true }}}
	c.handle(rescind.Event{Kind: rescind.EventKeysChanged})
	if !keysReloaded {
		t.Fatal("keys event did not reload keys")
	}
}

// TestOtherInstancesRevocationsWakeStreams: a revocation learnt from another instance, by
// notification or by the poll, calls OnRevoked (which wakes this instance's event streams); a key
// retirement reloads the keys first, so a subscriber told of it finds the key gone here too.
func TestOtherInstancesRevocationsWakeStreams(t *testing.T) {
	mine, other, state, reg := setup(t)
	var mu sync.Mutex
	var calls []string
	record := func(s string) { mu.Lock(); calls = append(calls, s); mu.Unlock() }
	seen := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(calls) }
	cfg := Config{Store: mine, State: state, Clients: reg, PollInterval: time.Hour,
		RefreshKeys: func(context.Context) { record("keys") }, OnRevoked: func() { record("wake") }}

	// By notification.
	c := &coherer{cfg: cfg}
	now := time.Now()
	c.handle(rescind.Event{Kind: rescind.EventRevoked, Revocations: []rescind.Revocation{{Kind: rescind.RevokeKey, Key: "kid", ExpiresAt: now.Add(time.Hour)}}})
	if got := seen(); !slices.Equal(got, []string{"keys", "wake"}) {
		t.Fatalf("notification of a key retirement: %v; want keys reloaded, then streams woken", got)
	}

	// By the poll alone.
	calls = nil
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cfg.PollInterval = 20 * time.Millisecond
	go Run(ctx, cfg)
	other.Revoke(ctx, []rescind.Revocation{{Kind: rescind.RevokeToken, Key: "jti", ClientID: "c", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}})
	waitFor(t, "streams woken by the poll", func() bool { return slices.Contains(seen(), "wake") })
	if !state.IsRevoked("jti", "", "c", now) {
		t.Fatal("streams woken before the revocation was applied")
	}
}
