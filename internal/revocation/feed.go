package revocation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/rescind/rescind"
)

// Errors of Feed.Subscribe and Subscription.Next.
var (
	// ErrTooManySubscriptions means the subscriber already holds FeedConfig.MaxPerSubscriber
	// subscriptions.
	ErrTooManySubscriptions = errors.New("revocation: too many subscriptions")
	// ErrFeedClosed means the feed was closed (the server is shutting down).
	ErrFeedClosed = errors.New("revocation: feed closed")
)

// FeedConfig configures a Feed.
type FeedConfig struct {
	// Store is where committed records are read. Required.
	Store rescind.Store
	// MaxPerSubscriber bounds the subscriptions one subscriber (a client) holds at once. If
	// zero, 8.
	MaxPerSubscriber int
	// Buffer is how many batches of new records a subscription holds for its reader; one that
	// falls further behind resumes from the store. If zero, 64.
	Buffer int
	// Page is the most records read from the store at once. If zero, 500.
	Page int
	// Fallback is how often the reader looks for new records when nothing woke it (a lost
	// wake-up costs at most this). If zero, 10 seconds.
	Fallback time.Duration
	// PacePerSubscription and MaxPace space the reader's rounds under a stream of commits: a
	// round starts at least PacePerSubscription times the number of subscriptions the previous
	// round woke (at most MaxPace) after it, and carries everything committed meanwhile. Each
	// round costs every subscription it wakes a write, whatever it carries, so this keeps the
	// fan-out's cost from growing with the commit rate (and from starving the commits
	// themselves); subscriptions that may see none of a round's records are not woken and do
	// not count. A commit after a quiet spell is handed out at once. If zero, 50 µs and 50 ms:
	// 400 woken subscriptions get a round at most every 20 ms under load.
	PacePerSubscription, MaxPace time.Duration
	// Logger receives errors. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time (records expired at now are not delivered). If nil, time.Now.
	Now func() time.Time
}

// Feed is an instance's one reader of newly committed revocation records, fanned out to every
// subscription (every open event stream). Woken by Notify when records commit on this instance
// or arrive from another, it reads what is new from the store once, whatever the number of
// subscriptions, and hands the batch to each of them without ever waiting for one: a
// subscription whose buffer is full is marked behind and later resumes from the store. Each
// subscription delivers every record after its starting point exactly once, in Seq order, across
// the boundary between what it reads from the store and what the reader hands it (see
// Subscription.Next). The zero Feed is not usable; call NewFeed.
type Feed struct {
	cfg  FeedConfig
	wake chan struct{}
	done chan struct{}

	mu       sync.Mutex
	subs     map[*Subscription]struct{}
	per      map[string]int
	last     int64 // the reader's cursor: the highest Seq it has handed out (or skipped)
	started  bool
	isClosed bool
}

// NewFeed returns a Feed. Its reader starts with the first subscription.
func NewFeed(cfg FeedConfig) *Feed {
	if cfg.MaxPerSubscriber <= 0 {
		cfg.MaxPerSubscriber = 8
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 64
	}
	if cfg.Page <= 0 {
		cfg.Page = 500
	}
	if cfg.PacePerSubscription <= 0 {
		cfg.PacePerSubscription = 50 * time.Microsecond
	}
	if cfg.MaxPace <= 0 {
		cfg.MaxPace = 50 * time.Millisecond
	}
	if cfg.Fallback <= 0 {
		cfg.Fallback = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Feed{cfg: cfg, wake: make(chan struct{}, 1), done: make(chan struct{}),
		subs: make(map[*Subscription]struct{}), per: make(map[string]int)}
}

// Notify wakes the reader: call it after records commit on this instance or arrive from another.
// It never blocks.
func (f *Feed) Notify() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Close ends every subscription (Next returns ErrFeedClosed) and stops the reader.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.isClosed {
		f.isClosed = true
		close(f.done)
	}
}

// Subscription is one subscriber's view of the feed: the records after its starting point, in
// Seq order, each once. Its methods are for one goroutine; Close it when done.
type Subscription struct {
	f       *Feed
	key     string
	visible func(rescind.Revocation) bool
	cursor  int64 // the highest Seq delivered (or filtered out)
	ch      chan []rescind.Revocation
	lag     chan struct{}
	behind  bool // the reader dropped a batch for it; guarded by f.mu
	catchUp bool // records may be in the store that the channel will not bring
	closed  bool
}

// Subscribe opens a subscription for subscriber key (a client id) that delivers the records
// with Seq greater than after. visible, if not nil, decides which records this subscriber may
// see (nil: all of them); it is the one place that decision is made, and must depend on the
// record alone (it is asked by the reader, so that a subscription with nothing to see is not
// even woken, and again for records read from the store). It returns
// ErrTooManySubscriptions if key already holds MaxPerSubscriber subscriptions.
func (f *Feed) Subscribe(ctx context.Context, key string, after int64, visible func(rescind.Revocation) bool) (*Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.isClosed {
		return nil, ErrFeedClosed
	}
	if f.per[key] >= f.cfg.MaxPerSubscriber {
		return nil, ErrTooManySubscriptions
	}
	if len(f.subs) == 0 {
		// The reader skipped records while no one listened: restart its cursor at the newest
		// record. Everything up to there is committed, so the subscription's own catch-up from
		// the store (which starts after this) finds it; the reader hands out everything later.
		seq, err := f.cfg.Store.LastRevocationSeq(ctx)
		if err != nil {
			return nil, fmt.Errorf("revocation: subscribing: %w", err)
		}
		f.last = max(f.last, seq)
	}
	s := &Subscription{f: f, key: key, visible: visible, cursor: after, catchUp: true,
		ch: make(chan []rescind.Revocation, f.cfg.Buffer), lag: make(chan struct{}, 1)}
	f.subs[s] = struct{}{}
	f.per[key]++
	if !f.started {
		f.started = true
		go f.run()
	}
	return s, nil
}

// Close ends the subscription.
func (s *Subscription) Close() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	delete(s.f.subs, s)
	if s.f.per[s.key]--; s.f.per[s.key] <= 0 {
		delete(s.f.per, s.key)
	}
}

// Next returns the next records of the subscription, in Seq order, waiting up to wait for one:
// first those already in the store (a catch-up, page by page), then those the reader hands out.
// It returns an empty slice if none came in time, ctx.Err() if ctx ends, and ErrFeedClosed once
// the feed is closed.
//
// The boundary is safe because the subscription is registered before its catch-up reads the
// store: a record the reader handed out before that is committed, so the catch-up reads it; one
// handed out after is in the channel. Records in both are delivered once (by Seq, against the
// cursor). A subscription that fell behind drains its channel, re-arms, and catches up again.
func (s *Subscription) Next(ctx context.Context, wait time.Duration) ([]rescind.Revocation, error) {
	var timer <-chan time.Time
	for {
		select {
		case <-s.f.done:
			return nil, ErrFeedClosed
		default:
		}
		if s.catchUp {
			revs, err := s.f.cfg.Store.RevocationsSince(ctx, s.cursor, s.f.cfg.Now(), s.f.cfg.Page)
			if err != nil {
				return nil, fmt.Errorf("revocation: catching up: %w", err)
			}
			if len(revs) < s.f.cfg.Page {
				s.catchUp = false
			}
			if out := s.fresh(revs); len(out) > 0 {
				return out, nil
			}
			continue
		}
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case batch := <-s.ch:
			if out := s.fresh(batch); len(out) > 0 {
				return out, nil
			}
		case <-s.lag:
			// The reader dropped batches for this subscription. Take what the channel holds,
			// re-arm, then read the rest from the store.
			var out []rescind.Revocation
			for drained := false; !drained; {
				select {
				case batch := <-s.ch:
					out = append(out, s.fresh(batch)...)
				default:
					drained = true
				}
			}
			s.f.mu.Lock()
			s.behind = false
			s.f.mu.Unlock()
			s.catchUp = true
			if len(out) > 0 {
				return out, nil
			}
		case <-timer:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.f.done:
			return nil, ErrFeedClosed
		}
	}
}

// fresh returns the records of batch after the cursor that the subscriber may see, and moves
// the cursor past the whole batch. batch is in Seq order and shared: it is not modified.
func (s *Subscription) fresh(batch []rescind.Revocation) []rescind.Revocation {
	var out []rescind.Revocation
	for _, r := range batch {
		if r.Seq <= s.cursor {
			continue
		}
		s.cursor = r.Seq
		if s.visible == nil || s.visible(r) {
			out = append(out, r)
		}
	}
	return out
}

// run is the reader: on each wake-up it reads the new records and hands them out, until Close.
func (f *Feed) run() {
	t := time.NewTicker(f.cfg.Fallback)
	defer t.Stop()
	for {
		select {
		case <-f.wake:
		case <-t.C:
		case <-f.done:
			return
		}
		start := time.Now()
		woken := 0
		for {
			n, more := f.readOnce()
			woken += n
			if !more {
				break
			}
		}
		if woken == 0 {
			continue
		}
		// Under a stream of commits, gather what commits meanwhile into the next round: every
		// round costs each subscription it wakes a write, so the rounds are spaced by what they
		// cost. Subscriptions that may see none of the records (idle streams: other audiences,
		// other clients' tokens) are not woken and cost nothing.
		pace := min(f.cfg.MaxPace, time.Duration(woken)*f.cfg.PacePerSubscription)
		if d := pace - time.Since(start); d > 0 {
			p := time.NewTimer(d)
			select {
			case <-p.C:
			case <-f.done:
				p.Stop()
				return
			}
		}
	}
}

// readOnce reads one page of new records and hands it out. It returns how many subscriptions
// it handed records to, and whether more may be waiting (a full page was read).
func (f *Feed) readOnce() (int, bool) {
	f.mu.Lock()
	if len(f.subs) == 0 || f.isClosed {
		f.mu.Unlock()
		return 0, false
	}
	after := f.last
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	revs, err := f.cfg.Store.RevocationsSince(ctx, after, f.cfg.Now(), f.cfg.Page)
	cancel()
	if err != nil {
		f.cfg.Logger.Warn("reading revocations for event streams", "err", err)
		return 0, false // the next wake-up (or the fallback tick) retries; nothing is lost
	}
	if len(revs) == 0 {
		return 0, false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.last != after {
		return 0, true // the cursor moved meanwhile (a restart): read again from there
	}
	woken := 0
	for s := range f.subs {
		if s.behind {
			continue
		}
		batch := revs
		if s.visible != nil {
			if batch = visibleOf(revs, s.visible); len(batch) == 0 {
				continue // nothing it may see: not woken (its cursor moves at its next batch)
			}
		}
		woken++
		select {
		case s.ch <- batch:
		default:
			s.behind = true
			select {
			case s.lag <- struct{}{}:
			default:
			}
		}
	}
	f.last = revs[len(revs)-1].Seq
	return woken, len(revs) == f.cfg.Page
}

// visibleOf returns the records of revs that visible accepts (revs itself if all are).
func visibleOf(revs []rescind.Revocation, visible func(rescind.Revocation) bool) []rescind.Revocation {
	for i, r := range revs {
		if !visible(r) {
			out := append([]rescind.Revocation(nil), revs[:i]...)
			for _, r := range revs[i+1:] {
				if visible(r) {
					out = append(out, r)
				}
			}
			return out
		}
	}
	return revs
}
