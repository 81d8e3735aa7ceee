// Package ratelimit limits failures (wrong client secrets, wrong passwords) with token buckets:
// each failure takes a token from its buckets, tokens come back at a steady rate, and while a
// bucket is empty further attempts on it are refused without being checked. Successes take
// nothing, so a legitimate client is never slowed by its own use; and since buckets are keyed by
// source address (and by credential and address), an attacker elsewhere cannot empty a
// legitimate client's buckets.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// Config configures a Limiter.
type Config struct {
	// Burst is how many failures a bucket absorbs at once. If zero, 10.
	Burst int
	// PerMinute is how many failures a minute a bucket absorbs in the long run. If zero, 10.
	PerMinute int
	// PerHour, if set, replaces PerMinute: how many an hour a bucket absorbs in the long run,
	// for rates below one a minute.
	PerHour int
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// Limiter holds the buckets. It is safe for concurrent use. The zero value is not usable.
type Limiter struct {
	cfg     Config
	mu      sync.Mutex
	buckets map[string]*bucket
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.PerMinute <= 0 {
		cfg.PerMinute = 10
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, buckets: make(map[string]*bucket)}
}

// rate is the tokens a second a bucket gets back.
func (l *Limiter) rate() float64 {
	if l.cfg.PerHour > 0 {
		return float64(l.cfg.PerHour) / 3600
	}
	return float64(l.cfg.PerMinute) / 60
}

// level returns the bucket's tokens at now (refilled), without storing.
func (l *Limiter) level(b *bucket, now time.Time) float64 {
	return math.Min(float64(l.cfg.Burst), b.tokens+now.Sub(b.at).Seconds()*l.rate())
}

// Allow reports whether an attempt on every key may be checked; if not, retryAfter says when
// one token will be back in the emptiest bucket.
func (l *Limiter) Allow(keys ...string) (ok bool, retryAfter time.Duration) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	worst := math.Inf(1)
	for _, k := range keys {
		if b := l.buckets[k]; b != nil {
			worst = math.Min(worst, l.level(b, now))
		}
	}
	if worst >= 1 {
		return true, 0
	}
	return false, time.Duration(math.Ceil((1-worst)/l.rate())) * time.Second
}

// Reservation is a token taken from each of a set of buckets before an attempt is checked.
type Reservation struct {
	l    *Limiter
	keys []string
	once sync.Once
}

// Reserve takes a token from the bucket of every key, if each has one, before the attempt is
// checked: then concurrent attempts cannot all pass a look at a bucket that holds fewer tokens
// than there are attempts (as Allow followed by Fail lets them). If a bucket is empty, nothing is
// taken, ok is false and retryAfter says when a token will be back. An attempt that succeeds
// gives its tokens back with Refund; a failed one keeps them taken.
func (l *Limiter) Reserve(keys ...string) (r *Reservation, ok bool, retryAfter time.Duration) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	worst := math.Inf(1)
	for _, k := range keys {
		if b := l.buckets[k]; b != nil {
			worst = math.Min(worst, l.level(b, now))
		}
	}
	if worst < 1 {
		return nil, false, time.Duration(math.Ceil((1-worst)/l.rate())) * time.Second
	}
	l.take(now, keys)
	return &Reservation{l: l, keys: keys}, true, 0
}

// Refund gives the reservation's tokens back: the attempt succeeded. It is safe to call on a nil
// Reservation and more than once.
func (r *Reservation) Refund() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		now := r.l.cfg.Now()
		r.l.mu.Lock()
		defer r.l.mu.Unlock()
		for _, k := range r.keys {
			if b := r.l.buckets[k]; b != nil {
				b.tokens = math.Min(float64(r.l.cfg.Burst), r.l.level(b, now)+1)
				b.at = now
			}
		}
	})
}

// Fail takes a token from the bucket of every key.
func (l *Limiter) Fail(keys ...string) {
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.take(now, keys)
}

// take takes a token from the bucket of every key; l.mu is held.
func (l *Limiter) take(now time.Time, keys []string) {
	if len(l.buckets) > 100000 {
		for k, b := range l.buckets { // forget buckets that are full again
			if l.level(b, now) >= float64(l.cfg.Burst) {
				delete(l.buckets, k)
			}
		}
	}
	for _, k := range keys {
		b := l.buckets[k]
		if b == nil {
			b = &bucket{tokens: float64(l.cfg.Burst), at: now}
			l.buckets[k] = b
		}
		b.tokens = math.Max(0, l.level(b, now)-1)
		b.at = now
	}
}
