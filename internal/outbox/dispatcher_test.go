package outbox

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/metrics"
)

// The dispatcher's tests run in synctest bubbles: the clock is fake (time.Now, the dispatcher's
// Now, and its timers agree), and synctest.Wait lets every goroutine run until it blocks.

// recorder is a hand-written Deliverer: it records each attempt and answers with fn.
type recorder struct {
	mu    sync.Mutex
	calls []attemptRecord
	fn    func(n int, m rescind.OutboxMessage) error // n counts this message's attempts from 0
}

type attemptRecord struct {
	id       int64
	at       time.Time
	attempts int
}

func (r *recorder) Deliver(ctx context.Context, m rescind.OutboxMessage) error {
	r.mu.Lock()
	n := 0
	for _, c := range r.calls {
		if c.id == m.ID {
			n++
		}
	}
	r.calls = append(r.calls, attemptRecord{m.ID, time.Now(), m.Attempts})
	r.mu.Unlock()
	if r.fn == nil {
		return nil
	}
	return r.fn(n, m)
}

func (r *recorder) attempts(id int64) []attemptRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []attemptRecord
	for _, c := range r.calls {
		if c.id == id {
			out = append(out, c)
		}
	}
	return out
}

// harness runs a Dispatcher on a fakeStore until stop.
type harness struct {
	t       *testing.T
	store   *fakeStore
	d       *Dispatcher
	metrics *metrics.Outbox
	reg     *prometheus.Registry
	cancel  context.CancelFunc
	done    chan struct{}
}

// testConfig is the configuration of the tests unless they say otherwise: no jitter (Rand 0),
// backoff from 1 s to 8 s, a poll every 100 ms, a lease of 30 s.
func testConfig() Config {
	return Config{PollInterval: 100 * time.Millisecond, MinBackoff: time.Second, MaxBackoff: 8 * time.Second,
		DeliveryTimeout: 10 * time.Second, Lease: 30 * time.Second, Rand: func() float64 { return 0 },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Instance: "test"}
}

func start(t *testing.T, cfg Config, deliverers map[string]Deliverer) *harness {
	t.Helper()
	h := &harness{t: t, store: newFakeStore(), reg: prometheus.NewRegistry(), done: make(chan struct{})}
	if f, ok := cfg.Store.(*fakeStore); ok {
		h.store = f // shared with another harness, as instances share a database
	}
	cfg.Store = h.store
	h.metrics = metrics.NewOutbox(h.reg)
	cfg.Metrics = h.metrics
	var err error
	if h.d, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	for k, dl := range deliverers {
		h.d.Handle(k, dl)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() {
		h.d.Run(ctx)
		close(h.done)
	}()
	return h
}

// stop ends Run and waits for it to return.
func (h *harness) stop() {
	h.cancel()
	<-h.done
}

// enqueue writes a message of kind, enqueued now with the given window, as another instance
// would: without waking the dispatcher.
func (h *harness) enqueue(kind string, window time.Duration) int64 {
	h.t.Helper()
	ids, err := h.store.Enqueue(context.Background(), []rescind.OutboxMessage{NewMessage(kind, "key", []byte("payload"), time.Now(), window)})
	if err != nil {
		h.t.Fatal(err)
	}
	return ids[0]
}

func (h *harness) outcomes(kind, outcome string) float64 {
	return h.value("rescind_outbox_deliveries_total", kind, outcome)
}

// value is the value of the series of the registry with the given name and label values (in
// the order of their names), or -1 if there is none.
func (h *harness) value(name string, labels ...string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var vals []string
			for _, lp := range m.GetLabel() {
				vals = append(vals, lp.GetValue())
			}
			if strings.Join(vals, ",") == strings.Join(labels, ",") {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return -1
}

// TestWakeDeliversAtOnce: a message enqueued through the dispatcher is delivered at once,
// without waiting for the poll; one another instance wrote waits for the poll.
func TestWakeDeliversAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		cfg := testConfig()
		cfg.PollInterval = time.Hour
		h := start(t, cfg, map[string]Deliverer{"k": rec})
		defer h.stop()
		synctest.Wait()
		t0 := time.Now()
		ids, err := h.d.Enqueue(context.Background(), NewMessage("k", "key", []byte("p"), t0, time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if a := rec.attempts(ids[0]); len(a) != 1 || !a[0].at.Equal(t0) {
			t.Fatalf("attempts of a message enqueued through the dispatcher: %+v; want one, at once (%v)", a, t0)
		}
		if m := h.store.get(ids[0]); m.State != rescind.OutboxDelivered {
			t.Fatalf("message after delivery: %+v; want delivered", m)
		}
		other := h.enqueue("k", time.Minute)
		time.Sleep(time.Hour - time.Nanosecond)
		synctest.Wait()
		if a := rec.attempts(other); len(a) != 0 {
			t.Fatalf("a message written without a wake was attempted before the poll: %+v", a)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if a := rec.attempts(other); len(a) != 1 {
			t.Fatalf("a message written without a wake: %d attempts at the poll; want 1", len(a))
		}
		if got := h.outcomes("k", metrics.OutcomeDelivered); got != 2 {
			t.Fatalf("deliveries counted as delivered: %v; want 2", got)
		}
	})
}

// TestBackoffUntilDeadline: a message that keeps failing is tried after 1, 2, 4, 8, 8 s (with
// no jitter), its last attempt at its deadline, and then given up with an audit of why.
func TestBackoffUntilDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{fn: func(int, rescind.OutboxMessage) error { return errors.New("503 Service Unavailable") }}
		h := start(t, testConfig(), map[string]Deliverer{"k": rec})
		defer h.stop()
		t0 := time.Now()
		id := h.enqueue("k", 20*time.Second)
		h.d.Wake()
		time.Sleep(time.Minute)
		synctest.Wait()
		var offsets []time.Duration
		for i, a := range rec.attempts(id) {
			offsets = append(offsets, a.at.Sub(t0))
			if a.attempts != i {
				t.Fatalf("attempt %d saw Attempts %d", i, a.attempts)
			}
		}
		// Due at 0, 1, 3, 7, 15 and 20 (the deadline: 15+8 is past it); each is picked up by
		// the next poll (every 100 ms).
		want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second, 20 * time.Second}
		if len(offsets) != len(want) {
			t.Fatalf("attempts at %v; want at %v (each within a poll)", offsets, want)
		}
		for i := range want {
			if offsets[i] < want[i] || offsets[i] > want[i]+100*time.Millisecond {
				t.Fatalf("attempts at %v; want at %v (each within a poll)", offsets, want)
			}
		}
		m := h.store.get(id)
		if m.State != rescind.OutboxFailed || m.Attempts != 6 || !strings.Contains(m.LastError, "503 Service Unavailable") ||
			!strings.Contains(m.LastError, "retry window ended") {
			t.Fatalf("after the window: %+v; want failed after 6 attempts, saying why", m)
		}
		if got := h.outcomes("k", metrics.OutcomeRetry); got != 5 {
			t.Fatalf("retries counted: %v; want 5", got)
		}
		if got := h.outcomes("k", metrics.OutcomeFailed); got != 1 {
			t.Fatalf("failures counted: %v; want 1", got)
		}
	})
}

// TestBackoffJitter: the wait after the n-th failure is MinBackoff doubled n-1 times, capped,
// less up to half at random.
func TestBackoffJitter(t *testing.T) {
	for _, tc := range []struct {
		n    int
		rand float64
		want time.Duration
	}{
		{1, 0, time.Second},
		{1, 0.5, 750 * time.Millisecond},
		{2, 0, 2 * time.Second},
		{4, 0, 8 * time.Second},
		{5, 0, 8 * time.Second}, // capped
		{5, 0.999, 8*time.Second - time.Duration(0.999*float64(4*time.Second))},
		{1000, 0, 8 * time.Second}, // no overflow
	} {
		cfg := testConfig()
		cfg.Store = newFakeStore()
		cfg.Rand = func() float64 { return tc.rand }
		d, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.backoff(tc.n); got != tc.want {
			t.Errorf("backoff(%d) with rand %v = %v; want %v", tc.n, tc.rand, got, tc.want)
		}
	}
}

// TestRetryAfterIsHonoured: a failure that asks to wait 30 s is retried after 30 s, not after
// the 1 s backoff; it still counts an attempt.
func TestRetryAfterIsHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{fn: func(n int, _ rescind.OutboxMessage) error {
			if n == 0 {
				return RetryAfter(30*time.Second, errors.New("429 Too Many Requests"))
			}
			return nil
		}}
		h := start(t, testConfig(), map[string]Deliverer{"k": rec})
		defer h.stop()
		t0 := time.Now()
		id := h.enqueue("k", time.Hour)
		h.d.Wake()
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if a := rec.attempts(id); len(a) != 1 {
			t.Fatalf("%d attempts within 29 s; want 1 (the receiver asked for 30 s)", len(a))
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		a := rec.attempts(id)
		if len(a) != 2 || a[1].at.Sub(t0) < 30*time.Second || a[1].attempts != 1 {
			t.Fatalf("attempts %+v; want a second one 30 s in, seeing 1 attempt counted", a)
		}
		if m := h.store.get(id); m.State != rescind.OutboxDelivered {
			t.Fatalf("message %+v; want delivered", m)
		}
	})
}

// TestLaterCountsNoAttempt: "not now" defers the message to the time given without counting
// an attempt or ending it at its deadline; it is delivered when the receiver takes it.
func TestLaterCountsNoAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{fn: func(n int, _ rescind.OutboxMessage) error {
			if n < 3 {
				return Later(time.Now().Add(10*time.Second), "stream paused")
			}
			return nil
		}}
		h := start(t, testConfig(), map[string]Deliverer{"k": rec})
		defer h.stop()
		id := h.enqueue("k", 5*time.Second) // a window shorter than the pause
		h.d.Wake()
		time.Sleep(25 * time.Second)
		synctest.Wait()
		if a := rec.attempts(id); len(a) != 3 || a[2].attempts != 0 {
			t.Fatalf("within 25 s: %+v; want 3 looks (at 0, 10, 20 s), none counted as an attempt", a)
		}
		if m := h.store.get(id); m.State != rescind.OutboxPending || m.LastError != "" {
			t.Fatalf("a deferred message past its deadline: %+v; want still pending, no error", m)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if m := h.store.get(id); m.State != rescind.OutboxDelivered || m.Attempts != 0 {
			t.Fatalf("message %+v; want delivered with no failed attempt", m)
		}
		if got := h.outcomes("k", metrics.OutcomeDeferred); got != 3 {
			t.Fatalf("deferrals counted: %v; want 3", got)
		}
	})
}

// TestLaterNowDoesNotSpin: a deliverer that defers to "now" is looked at again at the next
// poll, not in a loop.
func TestLaterNowDoesNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Concurrency = 1 // every claim fills every slot: the dispatcher claims again as soon as one frees
		rec := &recorder{fn: func(n int, _ rescind.OutboxMessage) error {
			if n == 50 {
				return nil // a spinning dispatcher, whose clock never moves, ends here
			}
			return Later(time.Now(), "busy")
		}}
		h := start(t, cfg, map[string]Deliverer{"k": rec})
		defer h.stop()
		id := h.enqueue("k", time.Hour)
		h.d.Wake()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(rec.attempts(id)); n > 11 {
			t.Fatalf("%d looks in one second at a message deferred to now; want at most one per poll (11)", n)
		}
	})
}

// TestPermanentGivesUpAtOnce: a permanent failure is given up on the first attempt, audited
// with its error, and never tried again; so is a message whose deliverer panics, after its
// window, without taking the dispatcher down.
func TestPermanentGivesUpAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		refused := &recorder{fn: func(int, rescind.OutboxMessage) error {
			return Permanent(errors.New("POST https://rp.example/logout: 400 Bad Request"))
		}}
		panics := &recorder{fn: func(int, rescind.OutboxMessage) error { panic("deliverer bug") }}
		h := start(t, testConfig(), map[string]Deliverer{"refused": refused, "panics": panics})
		defer h.stop()
		r := h.enqueue("refused", time.Hour)
		p := h.enqueue("panics", 2*time.Second)
		h.d.Wake()
		time.Sleep(time.Minute)
		synctest.Wait()
		if a := refused.attempts(r); len(a) != 1 {
			t.Fatalf("a permanent failure was attempted %d times; want 1", len(a))
		}
		var gaveUp []event
		for _, e := range h.store.log() {
			if e.op == "giveup" {
				gaveUp = append(gaveUp, e)
			}
		}
		if len(gaveUp) != 2 || gaveUp[0].id != r || gaveUp[0].err != "POST https://rp.example/logout: 400 Bad Request" {
			t.Fatalf("give-ups %+v; want the refused message first, with its error", gaveUp)
		}
		if m := h.store.get(p); m.State != rescind.OutboxFailed || !strings.Contains(m.LastError, "panicked: deliverer bug") ||
			len(panics.attempts(p)) < 2 {
			t.Fatalf("the panicking deliverer's message: %+v after %d attempts; want retried, then failed naming the panic",
				m, len(panics.attempts(p)))
		}
	})
}

// TestConcurrencyBound: no more deliveries run at once than Concurrency, and every message is
// delivered once.
func TestConcurrencyBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Concurrency = 3
		cfg.PollInterval = time.Hour // only a wake or a slot coming free makes it claim
		var mu sync.Mutex
		running, most := 0, 0
		rec := &recorder{fn: func(int, rescind.OutboxMessage) error {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(time.Second)
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		}}
		h := start(t, cfg, map[string]Deliverer{"k": rec})
		defer h.stop()
		var ids []int64
		for range 10 {
			ids = append(ids, h.enqueue("k", time.Hour))
		}
		h.d.Wake()
		time.Sleep(3500 * time.Millisecond)
		synctest.Wait()
		if most != 3 {
			t.Fatalf("at most %d deliveries ran at once; want 3", most)
		}
		// A slot that frees is filled at once, not at the next poll: 10 messages, 3 at a time,
		// 1 s each: the last starts at 3 s.
		for _, id := range ids[:9] {
			if m := h.store.get(id); m.State != rescind.OutboxDelivered {
				t.Fatalf("message %d after 3.5 s: %s; want delivered", id, m.State)
			}
		}
		time.Sleep(time.Second)
		synctest.Wait()
		for _, id := range ids {
			if a := rec.attempts(id); len(a) != 1 {
				t.Fatalf("message %d attempted %d times; want 1", id, len(a))
			}
		}
	})
}

// TestOnlyKnownKinds: the dispatcher claims only kinds it has a deliverer for, and claims
// nothing (makes no query) without any.
func TestOnlyKnownKinds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := start(t, testConfig(), nil)
		unknown := h.enqueue("newer", time.Hour)
		h.d.Wake()
		time.Sleep(time.Second)
		synctest.Wait()
		h.store.mu.Lock()
		n := len(h.store.claims)
		h.store.mu.Unlock()
		if n != 0 {
			t.Fatalf("%d claims with no deliverer; want none", n)
		}
		rec := &recorder{}
		h.d.Handle("k", rec)
		time.Sleep(time.Second)
		synctest.Wait()
		h.stop()
		for _, kinds := range h.store.claims {
			if len(kinds) != 1 || kinds[0] != "k" {
				t.Fatalf("a claim named kinds %v; want only k", kinds)
			}
		}
		if m := h.store.get(unknown); m.State != rescind.OutboxPending || m.LeaseOwner != "" {
			t.Fatalf("a message of a kind without a deliverer: %+v; want pending and never leased", m)
		}
	})
}

// TestStopReleasesInFlight: at stop, a delivery that ends within DrainTimeout is recorded; one
// that does not is cancelled and its message released, due at once, without an attempt
// counted; Run then returns.
func TestStopReleasesInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.DrainTimeout = 2 * time.Second
		quick := &recorder{fn: func(int, rescind.OutboxMessage) error { time.Sleep(time.Second); return nil }}
		stuck := DelivererFunc(func(ctx context.Context, m rescind.OutboxMessage) error {
			<-ctx.Done()
			return ctx.Err()
		})
		h := start(t, cfg, map[string]Deliverer{"quick": quick, "stuck": stuck})
		q := h.enqueue("quick", time.Hour)
		s := h.enqueue("stuck", time.Hour)
		h.d.Wake()
		synctest.Wait()
		t0 := time.Now()
		h.stop()
		if took := time.Since(t0); took != cfg.DrainTimeout {
			t.Fatalf("Run returned %v after its context ended; want the drain timeout, %v", took, cfg.DrainTimeout)
		}
		if m := h.store.get(q); m.State != rescind.OutboxDelivered {
			t.Fatalf("a delivery that ended within the drain: %+v; want delivered", m)
		}
		m := h.store.get(s)
		if m.State != rescind.OutboxPending || m.Attempts != 0 || m.LeaseOwner != "" || !m.NextAttemptAt.Equal(t0.Add(cfg.DrainTimeout)) {
			t.Fatalf("a delivery cut short at stop: %+v; want pending, released, no attempt counted, due at once", m)
		}
		if got := h.outcomes("stuck", metrics.OutcomeInterrupted); got != 1 {
			t.Fatalf("interrupted deliveries counted: %v; want 1", got)
		}
	})
}

// TestLeaseLostLeavesTheNewOwner: a delivery that outlives its lease, while another instance
// takes the message over and delivers it, records nothing over the other's outcome.
func TestLeaseLostLeavesTheNewOwner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		release := make(chan struct{})
		var mu sync.Mutex
		accepted := 0
		slow := DelivererFunc(func(ctx context.Context, m rescind.OutboxMessage) error {
			<-release // past its lease
			mu.Lock()
			accepted++
			mu.Unlock()
			return nil
		})
		fast := DelivererFunc(func(ctx context.Context, m rescind.OutboxMessage) error {
			mu.Lock()
			accepted++
			mu.Unlock()
			return nil
		})
		cfgA := testConfig()
		cfgA.Store, cfgA.Instance, cfgA.DeliveryTimeout, cfgA.Lease = store, "a", time.Hour, 2*time.Hour
		cfgA.Concurrency = 1 // its one slot stays busy: it does not take the message back itself
		a := start(t, cfgA, map[string]Deliverer{"k": slow})
		id := a.enqueue("k", 24*time.Hour)
		a.d.Wake()
		synctest.Wait()
		if m := store.get(id); !strings.HasPrefix(m.LeaseOwner, "a/") {
			t.Fatalf("lease %q; want a's", m.LeaseOwner)
		}
		time.Sleep(2 * time.Hour) // a's lease lapses (a hung); b starts
		cfgB := testConfig()
		cfgB.Store, cfgB.Instance = store, "b"
		b := start(t, cfgB, map[string]Deliverer{"k": fast})
		synctest.Wait()
		time.Sleep(time.Second)
		synctest.Wait()
		if m := store.get(id); m.State != rescind.OutboxDelivered {
			t.Fatalf("after b's delivery: %+v; want delivered", m)
		}
		close(release)
		synctest.Wait()
		a.stop()
		b.stop()
		var completes []string
		for _, e := range store.log() {
			if e.op == "complete" {
				completes = append(completes, e.owner)
			}
		}
		if len(completes) != 1 || !strings.HasPrefix(completes[0], "b/") {
			t.Fatalf("completions by %v; want b's alone (a's lease was lost)", completes)
		}
		if got := a.outcomes("k", metrics.OutcomeLeaseLost); got != 1 {
			t.Fatalf("a counted %v lost leases; want 1", got)
		}
		if accepted != 2 {
			t.Fatalf("the receiver accepted %d deliveries; want 2 (a hung delivery that lost its lease repeats)", accepted)
		}
	})
}

// TestClaimFailureIsRetried: a store that fails to claim is tried again at the next poll, and
// what was pending is delivered once it recovers.
func TestClaimFailureIsRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		h := start(t, testConfig(), map[string]Deliverer{"k": rec})
		defer h.stop()
		h.store.mu.Lock()
		h.store.failing = errors.New("database unreachable")
		h.store.mu.Unlock()
		id := h.enqueue("k", time.Hour)
		h.d.Wake()
		time.Sleep(time.Second)
		synctest.Wait()
		if a := rec.attempts(id); len(a) != 0 {
			t.Fatal("delivered although the claim failed")
		}
		h.store.mu.Lock()
		h.store.failing = nil
		h.store.mu.Unlock()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if m := h.store.get(id); m.State != rescind.OutboxDelivered {
			t.Fatalf("after the store recovered: %+v; want delivered at the next poll", m)
		}
	})
}

// TestBacklogMetrics: the pending gauges count each kind's pending messages and the age of the
// oldest, and fall to zero once they are delivered.
func TestBacklogMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.StatsInterval = time.Second
		block := make(chan struct{})
		rec := &recorder{fn: func(int, rescind.OutboxMessage) error { <-block; return nil }}
		h := start(t, cfg, map[string]Deliverer{"k": rec})
		defer h.stop()
		h.enqueue("k", time.Hour)
		time.Sleep(10 * time.Second)
		h.enqueue("k", time.Hour)
		h.enqueue("other", time.Hour) // no deliverer here: still counted
		time.Sleep(5 * time.Second)
		synctest.Wait()
		gauge := h.value
		// The gauges are refreshed every StatsInterval (1 s).
		if p, age := gauge("rescind_outbox_pending_messages", "k"), gauge("rescind_outbox_oldest_pending_age_seconds", "k"); p != 2 || age < 14 || age > 15 {
			t.Fatalf("k: %v pending, oldest %v s; want 2 and 14 to 15 s", p, age)
		}
		if p := gauge("rescind_outbox_pending_messages", "other"); p != 1 {
			t.Fatalf("other: %v pending; want 1", p)
		}
		close(block)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if p, age := gauge("rescind_outbox_pending_messages", "k"), gauge("rescind_outbox_oldest_pending_age_seconds", "k"); p != 0 || age != 0 {
			t.Fatalf("k after delivery: %v pending, oldest %v s; want 0 and 0", p, age)
		}
	})
}

// TestNewRefusesShortLease: a lease no longer than the delivery timeout would let another
// instance take over a message still being delivered.
func TestNewRefusesShortLease(t *testing.T) {
	cfg := testConfig()
	cfg.Store = newFakeStore()
	cfg.Lease = cfg.DeliveryTimeout
	if _, err := New(cfg); err == nil {
		t.Fatal("New accepted a lease equal to the delivery timeout")
	}
	cfg.Lease = cfg.DeliveryTimeout + time.Second
	if _, err := New(cfg); err != nil {
		t.Fatalf("New with a longer lease: %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Fatal("New without a Store: no error")
	}
}

// TestExclusiveReleasesAtStart: a dispatcher alone on its store (SQLite) releases, as it
// starts, the leases left by a crash of its previous run and delivers their messages at once;
// one on a shared store leaves them until they lapse.
func TestExclusiveReleasesAtStart(t *testing.T) {
	for _, exclusive := range []bool{true, false} {
		synctest.Test(t, func(t *testing.T) {
			store := newFakeStore()
			ids, _ := store.Enqueue(context.Background(), []rescind.OutboxMessage{NewMessage("k", "key", nil, time.Now(), time.Hour)})
			if got, _ := store.ClaimOutbox(context.Background(), rescind.OutboxClaim{Owner: "crashed/1", Kinds: []string{"k"},
				Now: time.Now(), LeaseUntil: time.Now().Add(time.Minute), Limit: 1}); len(got) != 1 {
				t.Fatal("setup: the claim of the crashed run took nothing")
			}
			cfg := testConfig()
			cfg.Store, cfg.Exclusive = store, exclusive
			rec := &recorder{}
			h := start(t, cfg, map[string]Deliverer{"k": rec})
			defer h.stop()
			time.Sleep(time.Second)
			synctest.Wait()
			attempted := len(rec.attempts(ids[0])) == 1
			if attempted != exclusive {
				t.Fatalf("Exclusive %v: attempted within 1 s: %v; want %v", exclusive, attempted, exclusive)
			}
			time.Sleep(time.Minute)
			synctest.Wait()
			if m := store.get(ids[0]); m.State != rescind.OutboxDelivered || m.Attempts != 0 {
				t.Fatalf("Exclusive %v: after the lease: %+v; want delivered, no attempt counted", exclusive, m)
			}
		})
	}
}

// TestLaterIsBounded: a deferral far into the future puts the message off for a day at most,
// when its deliverer is asked again.
func TestLaterIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{fn: func(int, rescind.OutboxMessage) error {
			return Later(time.Now().AddDate(500, 0, 0), "paused for good")
		}}
		h := start(t, testConfig(), map[string]Deliverer{"k": rec})
		defer h.stop()
		t0 := time.Now()
		id := h.enqueue("k", time.Hour)
		h.d.Wake()
		synctest.Wait()
		if m := h.store.get(id); !m.NextAttemptAt.Equal(t0.Add(maxDefer)) {
			t.Fatalf("deferred 500 years: due at %v; want a day later, %v", m.NextAttemptAt, t0.Add(maxDefer))
		}
	})
}
