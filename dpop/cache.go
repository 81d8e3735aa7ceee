package dpop

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// ReplayCache remembers proofs (by a hash of key thumbprint and jti) until they expire.
type ReplayCache interface {
	// Add records key until expires and reports whether it was new: false means the proof was
	// seen before and must be refused. Implementations shared by several server instances make
	// replay detection hold across them.
	Add(ctx context.Context, key [32]byte, expires time.Time) (fresh bool, err error)
}

// ErrCacheFull is returned by MemoryCache.Add when it holds MaxEntries unexpired proofs.
var ErrCacheFull = errors.New("dpop: replay cache full")

// MemoryCache is a ReplayCache in this process's memory: enough for one instance. Expired
// entries are swept as new ones arrive.
type MemoryCache struct {
	// MaxEntries bounds the cache; when it is full of unexpired entries, Add fails (closed).
	// If zero, 1,000,000.
	MaxEntries int
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time

	mu        sync.Mutex
	seen      map[[32]byte]int64
	nextSweep int64
}

// Add implements ReplayCache.
func (c *MemoryCache) Add(_ context.Context, key [32]byte, expires time.Time) (bool, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	t := now().UnixNano()
	max := c.MaxEntries
	if max <= 0 {
		max = 1_000_000
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen == nil {
		c.seen = make(map[[32]byte]int64)
	}
	if exp, ok := c.seen[key]; ok && exp >= t {
		return false, nil
	}
	if t >= c.nextSweep || len(c.seen) >= max {
		for k, exp := range c.seen {
			if exp < t {
				delete(c.seen, k)
			}
		}
		c.nextSweep = t + int64(10*time.Second)
	}
	if len(c.seen) >= max {
		return false, ErrCacheFull
	}
	c.seen[key] = expires.UnixNano()
	return true, nil
}

// Nonces issues and checks server-provided DPoP nonces (RFC 9449 §8, §9) without state: a nonce
// names a time period and carries an HMAC of it, so every instance holding the same key issues
// and accepts the same nonces. A nonce is accepted during its period and the next.
type Nonces struct {
	key    []byte
	period time.Duration
}

// NewNonces returns Nonces keyed with key (at least 32 bytes) that change every period (if
// zero, 5 minutes).
func NewNonces(key []byte, period time.Duration) (*Nonces, error) {
	if len(key) < 32 {
		return nil, errors.New("dpop: the nonce key must have at least 32 bytes")
	}
	if period <= 0 {
		period = 5 * time.Minute
	}
	return &Nonces{key: append([]byte(nil), key...), period: period}, nil
}

func (n *Nonces) make(epoch int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(epoch))
	m := hmac.New(sha256.New, n.key)
	m.Write([]byte("rescind dpop nonce v1"))
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Current returns the nonce to send (in the DPoP-Nonce header) at now.
func (n *Nonces) Current(now time.Time) string { return n.make(now.UnixNano() / int64(n.period)) }

// Valid reports whether nonce is the nonce of now's period or of the one before.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false
	}
	epoch := int64(binary.BigEndian.Uint64(b[:8]))
	cur := now.UnixNano() / int64(n.period)
	if epoch != cur && epoch != cur-1 {
		return false
	}
	return hmac.Equal([]byte(n.make(epoch)), []byte(nonce))
}
