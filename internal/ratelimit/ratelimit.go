// Package ratelimit limits failures (wrong client secrets, wrong passwords) with token buckets:
// each failure takes a token from its buckets, tokens come back at a steady rate, and while a
// bucket is empty further attempts on it are refused without being checked. Successes take
// nothing, so a legitimate client is never slowed by its own use; and since buckets are keyed by
// source network (and by credential and network), an attacker elsewhere cannot empty a
// legitimate client's buckets.
//
// What a Limiter holds is bounded whatever its callers are sent: a bucket is filed under the
// SHA-256 of its key (32 bytes, however long the key), a refund that fills a bucket again drops
// it, and past MaxBuckets the bucket charged least recently is dropped.
package ratelimit

import (
	"container/list"
	"crypto/sha256"
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
	// MaxBuckets bounds the buckets held: past it, the bucket charged least recently (the one
	// that has had longest to refill) is forgotten. If zero, 100,000 (about 15 MiB).
	MaxBuckets int
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// key is what a bucket is filed under: the SHA-256 of the caller's key, so that a key of any
// length costs 32 bytes.
type key [sha256.Size]byte

func keyOf(s string) key { return sha256.Sum256([]byte(s)) }

type bucket struct {
	k      key
	tokens float64
	at     time.Time
	elem   *list.Element // in Limiter.lru
}

// Limiter holds the buckets. It is safe for concurrent use. The zero value is not usable.
type Limiter struct {
	cfg     Config
	mu      sync.Mutex
	buckets map[key]*bucket
	lru     *list.List // of *bucket, most recently charged first
}

// New returns a Limiter.
func New(cfg Config) *Limiter {
	if cfg.Burst <= 0 {
		cfg.Burst = 10
	}
	if cfg.PerMinute <= 0 {
		cfg.PerMinute = 10
	}
	if cfg.MaxBuckets <= 0 {
		cfg.MaxBuckets = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Limiter{cfg: cfg, buckets: make(map[key]*bucket), lru: list.New()}
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

// worst returns the fewest tokens any of the keys' buckets holds at now (a bucket not held is
// full); l.mu is held.
func (l *Limiter) worst(now time.Time, keys []key) float64 {
	worst := float64(l.cfg.Burst)
	for _, k := range keys {
		if b := l.buckets[k]; b != nil {
			worst = math.Min(worst, l.level(b, now))
		}
	}
	return worst
}

// retryAfter is how long until a bucket holding level tokens holds one.
func (l *Limiter) retryAfter(level float64) time.Duration {
	return time.Duration(math.Ceil((1-level)/l.rate())) * time.Second
}

func keysOf(keys []string) []key {
	out := make([]key, len(keys))
	for i, k := range keys {
		out[i] = keyOf(k)
	}
	return out
}

// Allow reports whether an attempt on every key may be checked; if not, retryAfter says when
// one token will be back in the emptiest bucket.
func (l *Limiter) Allow(keys ...string) (ok bool, retryAfter time.Duration) {
	ks := keysOf(keys)
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.worst(now, ks); w < 1 {
		return false, l.retryAfter(w)
	}
	return true, 0
}

// Reservation is a token taken from each of a set of buckets before an attempt is checked.
type Reservation struct {
	l    *Limiter
	keys []key
	once sync.Once
}

// Reserve takes a token from the bucket of every key, if each has one, before the attempt is
// checked: then concurrent attempts cannot all pass a look at a bucket that holds fewer tokens
// than there are attempts (as Allow followed by Fail lets them). If a bucket is empty, nothing is
// taken, ok is false and retryAfter says when a token will be back. An attempt that succeeds
// gives its tokens back with Refund; a failed one keeps them taken.
func (l *Limiter) Reserve(keys ...string) (r *Reservation, ok bool, retryAfter time.Duration) {
	ks := keysOf(keys)
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.worst(now, ks); w < 1 {
		return nil, false, l.retryAfter(w)
	}
	l.take(now, ks)
	return &Reservation{l: l, keys: ks}, true, 0
}

// Refund gives the reservation's tokens back: the attempt succeeded. A bucket full again is
// forgotten. It is safe to call on a nil Reservation and more than once.
func (r *Reservation) Refund() {
	if r == nil {
		return
	}
	r.once.Do(func() {
		l := r.l
		now := l.cfg.Now()
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range r.keys {
			b := l.buckets[k]
			if b == nil {
				continue
			}
			b.tokens, b.at = math.Min(float64(l.cfg.Burst), l.level(b, now)+1), now
			if b.tokens >= float64(l.cfg.Burst) {
				l.drop(b)
			}
		}
	})
}

// Fail takes a token from the bucket of every key.
func (l *Limiter) Fail(keys ...string) {
	ks := keysOf(keys)
	now := l.cfg.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.take(now, ks)
}

// take takes a token from the bucket of every key, making the buckets not held, and forgets the
// least recently charged buckets past MaxBuckets; l.mu is held.
func (l *Limiter) take(now time.Time, keys []key) {
	for _, k := range keys {
		b := l.buckets[k]
		if b == nil {
			b = &bucket{k: k, tokens: float64(l.cfg.Burst), at: now}
			b.elem = l.lru.PushFront(b)
			l.buckets[k] = b
		} else {
			l.lru.MoveToFront(b.elem)
		}
		b.tokens = math.Max(0, l.level(b, now)-1)
		b.at = now
	}
	for len(l.buckets) > l.cfg.MaxBuckets {
		l.drop(l.lru.Back().Value.(*bucket))
	}
}

func (l *Limiter) drop(b *bucket) {
	l.lru.Remove(b.elem)
	delete(l.buckets, b.k)
}

// Len returns the number of buckets held (for metrics and tests).
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
