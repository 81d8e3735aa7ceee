package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/metrics"
)

// Store is what the Dispatcher needs of a rescind.Store: its outbox methods.
type Store interface {
	Enqueue(ctx context.Context, msgs []rescind.OutboxMessage) ([]int64, error)
	ClaimOutbox(ctx context.Context, c rescind.OutboxClaim) ([]rescind.OutboxMessage, error)
	CompleteOutbox(ctx context.Context, id int64, owner string, at time.Time) error
	RetryOutbox(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error
	DeferOutbox(ctx context.Context, id int64, owner string, next time.Time) error
	GiveUpOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string) error
	OutboxStats(ctx context.Context) ([]rescind.OutboxStat, error)
	DeleteFinishedOutbox(ctx context.Context, t time.Time) (int64, error)
	ReleaseOutboxLeases(ctx context.Context) (int64, error)
}

var _ Store = rescind.Store(nil)

// DefaultWindow is the retry window NewMessage gives a message when none is given.
const DefaultWindow = 24 * time.Hour

// maxErrorText bounds the error text stored with a message (and in its audit entry).
const maxErrorText = 1000

// maxDefer is the longest a deferral (Later) puts a message off: its deliverer is asked again
// then, and may defer again.
const maxDefer = 24 * time.Hour

// purgeInterval is how often finished messages older than Config.Retention are deleted.
const purgeInterval = time.Hour

// NewMessage makes a message of kind for key, enqueued at now, to be delivered until now+window
// (DefaultWindow if window is not positive). Write it with Dispatcher.Enqueue, or in the
// transaction of the change that causes it with store/internal/sqlstore.EnqueueOutbox.
func NewMessage(kind, key string, payload []byte, now time.Time, window time.Duration) rescind.OutboxMessage {
	if window <= 0 {
		window = DefaultWindow
	}
	return rescind.OutboxMessage{Kind: kind, Key: key, Payload: payload, CreatedAt: now, NextAttemptAt: now, Deadline: now.Add(window)}
}

// Config configures a Dispatcher. Zero values are sensible but for Store.
type Config struct {
	// Store holds the outbox. Required.
	Store Store
	// Instance names this instance in the leases it takes (with a sequence number per claim).
	// If empty, the host name, the process id and a random suffix.
	Instance string
	// PollInterval is how often the outbox is looked at when nothing wakes the dispatcher
	// (messages enqueued by other instances, retries coming due). If zero, one second.
	PollInterval time.Duration
	// Concurrency bounds the deliveries in flight on this instance. If zero, 16.
	Concurrency int
	// DeliveryTimeout bounds one attempt. If zero, 15 seconds.
	DeliveryTimeout time.Duration
	// ClockSkew is the largest clock difference between instances: a lease lasts long enough
	// that an instance whose clock is ahead by that much does not take a message over while its
	// owner is still within DeliveryTimeout. If zero, one minute.
	ClockSkew time.Duration
	// Lease is how long a claim holds a message: past it, another instance may take the
	// message over (its owner crashed). If zero, DeliveryTimeout + ClockSkew + 10 s; it must be
	// longer than DeliveryTimeout.
	Lease time.Duration
	// MinBackoff and MaxBackoff bound the wait after a failed attempt: MinBackoff after the
	// first, doubling with each failure up to MaxBackoff, of which a random part (up to half)
	// is taken off so that messages that failed together spread out. If zero, 1 s and 5 min.
	MinBackoff, MaxBackoff time.Duration
	// DrainTimeout is how long in-flight deliveries may go on once Run's context ends; those
	// still running are then cancelled and their messages released, without counting an
	// attempt. If zero, two seconds.
	DrainTimeout time.Duration
	// Retention is how long delivered and failed messages are kept (their state, attempts and
	// last error; never their payload). If zero, seven days.
	Retention time.Duration
	// StatsInterval is how often the backlog gauges are refreshed. If zero, ten seconds.
	StatsInterval time.Duration
	// Exclusive says that this dispatcher is the only one on its store (SQLite, whose data
	// directory one server holds): Run then starts by releasing every lease, all left by this
	// instance before a restart (a crash), so their messages go out at once rather than when the
	// leases lapse. Never set it on a store other instances share.
	Exclusive bool
	// Metrics receives the backlog and each attempt's outcome. If nil, none are recorded.
	Metrics *metrics.Outbox
	// Logger receives failures. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Rand returns a number in [0, 1) for the backoff's jitter. If nil, math/rand/v2.
	Rand func() float64
}

// Dispatcher delivers the messages of the outbox: every instance runs one (Run). It claims due
// messages of the kinds it has deliverers for (Handle), hands each to its Deliverer, and records
// what came of it: delivered, retried with backoff, deferred, or given up.
type Dispatcher struct {
	cfg  Config
	wake chan struct{}
	seq  atomic.Uint64

	mu         sync.Mutex
	deliverers map[string]Deliverer
	reported   map[string]bool // kinds whose backlog gauges were set
}

// New returns a Dispatcher with no deliverers.
func New(cfg Config) (*Dispatcher, error) {
	if cfg.Store == nil {
		return nil, errors.New("outbox: a Store is required")
	}
	if cfg.Instance == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		rand.Read(b)
		cfg.Instance = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.DeliveryTimeout <= 0 {
		cfg.DeliveryTimeout = 15 * time.Second
	}
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = time.Minute
	}
	if cfg.Lease <= 0 {
		cfg.Lease = cfg.DeliveryTimeout + cfg.ClockSkew + 10*time.Second
	}
	if cfg.Lease <= cfg.DeliveryTimeout {
		return nil, fmt.Errorf("outbox: the lease (%s) must be longer than the delivery timeout (%s)", cfg.Lease, cfg.DeliveryTimeout)
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 2 * time.Second
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 7 * 24 * time.Hour
	}
	if cfg.StatsInterval <= 0 {
		cfg.StatsInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	return &Dispatcher{cfg: cfg, wake: make(chan struct{}, 1), deliverers: map[string]Deliverer{}, reported: map[string]bool{}}, nil
}

// Handle registers the deliverer of kind. Messages of a kind no deliverer is registered for stay
// in the outbox untouched (an instance of an older release, during a rolling upgrade, leaves
// them to the instances that know them). It panics if kind is empty, d is nil or kind already
// has one: those are wiring mistakes.
func (d *Dispatcher) Handle(kind string, dl Deliverer) {
	if kind == "" || dl == nil {
		panic("outbox: Handle needs a kind and a deliverer")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.deliverers[kind]; dup {
		panic("outbox: a deliverer for " + kind + " is already registered")
	}
	d.deliverers[kind] = dl
	d.Wake()
}

// Wake makes the dispatcher look at the outbox at once: call it after committing a transaction
// that enqueued messages (Enqueue does). It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Enqueue writes msgs to the outbox (rescind.Store's Enqueue) and wakes the dispatcher. A
// change that causes messages should instead write them in its own transaction
// (store/internal/sqlstore.EnqueueOutbox) and call Wake once it has committed.
func (d *Dispatcher) Enqueue(ctx context.Context, msgs ...rescind.OutboxMessage) ([]int64, error) {
	ids, err := d.cfg.Store.Enqueue(ctx, msgs)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	d.Wake()
	return ids, nil
}

// kinds returns the kinds that have a deliverer, sorted.
func (d *Dispatcher) kinds() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]string, 0, len(d.deliverers))
	for k := range d.deliverers {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (d *Dispatcher) deliverer(kind string) Deliverer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deliverers[kind]
}

// Run delivers messages until ctx ends, then lets the deliveries in flight finish for up to
// DrainTimeout, cancels the rest and releases their messages, and returns.
func (d *Dispatcher) Run(ctx context.Context) {
	// Deliveries outlive ctx by DrainTimeout at most.
	dctx, stopDeliveries := context.WithCancel(context.WithoutCancel(ctx))
	defer stopDeliveries()
	done := make(chan struct{}, d.cfg.Concurrency)
	inflight := 0
	var lastStats, lastPurge time.Time
	timer := time.NewTimer(d.cfg.PollInterval)
	defer timer.Stop()
	if d.cfg.Exclusive {
		if n, err := d.cfg.Store.ReleaseOutboxLeases(ctx); err != nil {
			d.cfg.Logger.Warn("outbox: releasing the leases left from before the start; they will lapse", "err", err)
		} else if n > 0 {
			d.cfg.Logger.Info("outbox: released the leases left from before the start", "messages", n)
		}
	}
	for ctx.Err() == nil {
		now := d.cfg.Now()
		if now.Sub(lastStats) >= d.cfg.StatsInterval || now.Before(lastStats) {
			d.refreshStats(ctx)
			lastStats = now
		}
		if now.Sub(lastPurge) >= purgeInterval || now.Before(lastPurge) {
			d.purge(ctx)
			lastPurge = now
		}
		free := d.cfg.Concurrency - inflight
		saturated := free == 0
		if free > 0 {
			owner, msgs := d.claim(ctx, free)
			for _, m := range msgs {
				inflight++
				go func() {
					d.deliver(dctx, owner, m)
					done <- struct{}{}
				}()
			}
			saturated = len(msgs) == free
		}
		// Wait for a reason to claim again: a wake, the poll, or, when every slot was filled
		// (more may be due), a slot coming free.
		timer.Reset(d.cfg.PollInterval)
		for waiting := true; waiting; {
			select {
			case <-ctx.Done():
				waiting = false
			case <-d.wake:
				waiting = false
			case <-timer.C:
				waiting = false
			case <-done:
				inflight--
				waiting = !saturated
			}
		}
	}
	grace := time.NewTimer(d.cfg.DrainTimeout)
	defer grace.Stop()
	for inflight > 0 {
		select {
		case <-done:
			inflight--
		case <-grace.C:
			stopDeliveries() // each then releases its message
		}
	}
}

// claim leases up to n due messages under a new owner name.
func (d *Dispatcher) claim(ctx context.Context, n int) (string, []rescind.OutboxMessage) {
	kinds := d.kinds()
	if len(kinds) == 0 {
		return "", nil
	}
	owner := fmt.Sprintf("%s/%d", d.cfg.Instance, d.seq.Add(1))
	now := d.cfg.Now()
	msgs, err := d.cfg.Store.ClaimOutbox(ctx, rescind.OutboxClaim{Owner: owner, Kinds: kinds, Now: now,
		LeaseUntil: now.Add(d.cfg.Lease), Limit: n})
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("outbox: claiming messages", "err", err)
		}
		return owner, nil
	}
	return owner, msgs
}

// deliver makes one attempt at m, which owner has leased, and records its outcome. dctx ends
// only when the dispatcher gives up waiting for deliveries at shutdown.
func (d *Dispatcher) deliver(dctx context.Context, owner string, m rescind.OutboxMessage) {
	start := time.Now()
	err := d.attempt(dctx, m)
	now := d.cfg.Now()
	// The outcome is recorded even while the instance stops (the store closes after Run).
	sctx, cancel := context.WithTimeout(context.WithoutCancel(dctx), 10*time.Second)
	defer cancel()
	log := d.cfg.Logger.With("kind", m.Kind, "key", m.Key, "message", m.ID)
	var outcome string
	var serr error
	var later *laterError
	switch {
	case err == nil:
		outcome, serr = metrics.OutcomeDelivered, d.cfg.Store.CompleteOutbox(sctx, m.ID, owner, now)
	case dctx.Err() != nil:
		// Stopping: release the message for another instance (or this one, restarted),
		// without counting an attempt that was cut short.
		outcome, serr = metrics.OutcomeInterrupted, d.cfg.Store.DeferOutbox(sctx, m.ID, owner, now)
	case errors.As(err, &later):
		// Not sooner than the next poll (a deliverer deferring to "now" must not spin), nor
		// later than maxDefer (it is asked again then).
		at := later.at
		if soonest := now.Add(d.cfg.PollInterval); at.Before(soonest) {
			at = soonest
		}
		if latest := now.Add(maxDefer); at.After(latest) {
			at = latest
		}
		log.Debug("outbox: delivery deferred", "until", at, "reason", later.reason)
		outcome, serr = metrics.OutcomeDeferred, d.cfg.Store.DeferOutbox(sctx, m.ID, owner, at)
	case IsPermanent(err):
		log.Warn("outbox: delivery failed for good; message given up", "attempts", m.Attempts+1, "err", err)
		outcome, serr = metrics.OutcomeFailed, d.cfg.Store.GiveUpOutbox(sctx, m.ID, owner, now, errorText(err))
	case !now.Before(m.Deadline):
		log.Warn("outbox: delivery failed and the retry window has passed; message given up", "attempts", m.Attempts+1,
			"err", err)
		text := errorText(fmt.Errorf("%w (retry window ended %s after %d attempts)", err, m.Deadline.Format(time.RFC3339), m.Attempts+1))
		outcome, serr = metrics.OutcomeFailed, d.cfg.Store.GiveUpOutbox(sctx, m.ID, owner, now, text)
	default:
		wait := max(d.backoff(m.Attempts+1), retryAfter(err))
		next := now.Add(wait)
		if next.After(m.Deadline) {
			next = m.Deadline // one last attempt when the window ends
		}
		log.Debug("outbox: delivery failed; retrying", "attempts", m.Attempts+1, "next", next, "err", err)
		outcome, serr = metrics.OutcomeRetry, d.cfg.Store.RetryOutbox(sctx, m.ID, owner, next, errorText(err))
	}
	switch {
	case errors.Is(serr, rescind.ErrLeaseLost):
		// Another instance took the message over after this lease lapsed: what it does stands.
		log.Warn("outbox: the lease lapsed during the delivery; another claim has the message", "outcome", outcome)
		outcome = metrics.OutcomeLeaseLost
	case serr != nil:
		// The lease lapses and the message is tried again: at least once, never lost.
		log.Error("outbox: recording a delivery's outcome", "outcome", outcome, "err", serr)
	}
	d.cfg.Metrics.Delivery(m.Kind, outcome, time.Since(start))
}

// attempt calls m's deliverer within DeliveryTimeout; a panic is a failed attempt.
func (d *Dispatcher) attempt(dctx context.Context, m rescind.OutboxMessage) (err error) {
	dl := d.deliverer(m.Kind)
	if dl == nil {
		return Later(d.cfg.Now(), "no deliverer for "+m.Kind) // cannot happen: claims name registered kinds
	}
	ctx, cancel := context.WithTimeout(dctx, d.cfg.DeliveryTimeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("the deliverer of %s panicked: %v", m.Kind, p)
		}
	}()
	return dl.Deliver(ctx, m)
}

// backoff is the wait after the n-th failed attempt (n >= 1): MinBackoff doubled n-1 times, at
// most MaxBackoff, less a random part of up to half.
func (d *Dispatcher) backoff(n int) time.Duration {
	b := d.cfg.MinBackoff
	for i := 1; i < n && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.cfg.MaxBackoff)
	return b - time.Duration(d.cfg.Rand()*float64(b/2))
}

// refreshStats sets the backlog gauges of every kind pending, and zeroes those of kinds that
// no longer are (or have a deliverer here and never had a message).
func (d *Dispatcher) refreshStats(ctx context.Context) {
	if d.cfg.Metrics == nil {
		return
	}
	stats, err := d.cfg.Store.OutboxStats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.cfg.Logger.Warn("outbox: reading the backlog", "err", err)
		}
		return
	}
	now := d.cfg.Now()
	kinds := d.kinds()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, k := range kinds {
		d.reported[k] = true
	}
	seen := map[string]bool{}
	for _, s := range stats {
		seen[s.Kind] = true
		d.reported[s.Kind] = true
		d.cfg.Metrics.Backlog(s.Kind, s.Pending, now.Sub(s.OldestCreatedAt))
	}
	for k := range d.reported {
		if !seen[k] {
			d.cfg.Metrics.Backlog(k, 0, 0)
		}
	}
}

// purge deletes finished messages older than Retention.
func (d *Dispatcher) purge(ctx context.Context) {
	if _, err := d.cfg.Store.DeleteFinishedOutbox(ctx, d.cfg.Now().Add(-d.cfg.Retention)); err != nil && ctx.Err() == nil {
		d.cfg.Logger.Warn("outbox: deleting finished messages", "err", err)
	}
}

// errorText is err's text as stored with a message: at most maxErrorText bytes, cut on a rune
// boundary.
func errorText(err error) string {
	s := err.Error()
	if len(s) <= maxErrorText {
		return s
	}
	cut := maxErrorText
	for cut > 0 && s[cut]&0xc0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
