package oauth

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/rescind/rescind/token"
)

// jwtCacheGeneration is how many verified JWTs one generation of the cache holds; the cache
// holds at most two generations (the current one and the one before), about 25 MiB at most.
const jwtCacheGeneration = 1 << 15

// jwtCache remembers what verifying a JWT access token established: that its signature is good
// under a key of this server, and its claims. It is keyed by the SHA-256 of the token's text, so
// only that exact token finds its entry. It never holds an answer about the token's status:
// expiry and revocation are checked on every use, and so is the key (an entry whose key was
// retired since, or has retired by itself, is not used, and the token is verified again, which
// fails). It is safe for concurrent use.
//
// It is bounded by generations: once the current map holds jwtCacheGeneration entries it
// becomes the previous one, replacing the one before; a token found in the previous generation
// moves into the current one, so a token in use stays.
type jwtCache struct {
	mu        sync.RWMutex
	cur, prev map[[32]byte]verifiedJWT
	size      int // entries per generation
}

// verifiedJWT is a cache entry: the claims and the kid of the key that verified them.
type verifiedJWT struct {
	at  *accessToken // shared by every user of the entry: never modified
	kid string
}

func newJWTCache(size int) *jwtCache {
	return &jwtCache{cur: make(map[[32]byte]verifiedJWT), size: size}
}

// jwtKey returns the cache key of a token text.
func jwtKey(text string) [32]byte { return sha256.Sum256([]byte(text)) }

// get returns the verified claims of the token whose key is h, if they are cached and the key
// that verified them still verifies at now (signer.Verifies).
func (c *jwtCache) get(h [32]byte, signer *token.Signer, now time.Time) (*accessToken, bool) {
	c.mu.RLock()
	e, ok := c.cur[h]
	old := false
	if !ok {
		e, ok = c.prev[h]
		old = ok
	}
	c.mu.RUnlock()
	if !ok || !signer.Verifies(e.kid, now) {
		return nil, false
	}
	if old {
		c.put(h, e)
	}
	return e.at, true
}

// put caches e under h.
func (c *jwtCache) put(h [32]byte, e verifiedJWT) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.cur) >= c.size {
		c.prev, c.cur = c.cur, make(map[[32]byte]verifiedJWT, c.size)
	}
	c.cur[h] = e
}

// len returns the number of entries held (for tests).
func (c *jwtCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.cur) + len(c.prev)
}
