// Package clientreg is the server's view of registered clients: cached lookups and client
// authentication with a cache of verified secrets.
//
// Client secrets are stored as argon2id hashes, which are deliberately slow to check (tens of
// milliseconds and 19 MiB each). A successful check is remembered for a few minutes, keyed by
// the client id and an HMAC of the presented secret under a per-process random key, so the token
// endpoint is not capped by the hash and the cache holds nothing that reveals the secret.
// Failures are never cached. Every entry of a client is dropped when the client changes.
package clientreg

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
)

// ErrBadSecret is returned by Authenticate when the secret does not match, or the client has none.
var ErrBadSecret = errors.New("clientreg: client authentication failed")

// Config configures a Registry.
type Config struct {
	// Store is where clients live. Required.
	Store rescind.Store
	// VerifiedTTL is how long a verified secret is remembered. If zero, 5 minutes.
	VerifiedTTL time.Duration
	// ClientTTL is how long a client record is cached. If zero, 1 minute.
	ClientTTL time.Duration
	// MaxEntries bounds each cache; when full it is emptied. If zero, 100000.
	MaxEntries int
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

type verifiedKey struct {
	id  string
	mac [16]byte
}

type clientEntry struct {
	c       rescind.Client
	fetched time.Time
}

// Registry caches clients and verified secrets. It is safe for concurrent use.
type Registry struct {
	cfg    Config
	macKey []byte
	hashes chan struct{} // bounds concurrent argon2 checks (memory)

	mu       sync.Mutex
	clients  map[string]clientEntry
	verified map[verifiedKey]time.Time
	inflight map[verifiedKey]chan struct{}
	gen      map[string]uint64 // bumped by Invalidate, so a check racing with a change is not cached
}

// New returns a Registry.
func New(cfg Config) (*Registry, error) {
	if cfg.VerifiedTTL == 0 {
		cfg.VerifiedTTL = 5 * time.Minute
	}
	if cfg.ClientTTL == 0 {
		cfg.ClientTTL = time.Minute
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("clientreg: reading cache key: %w", err)
	}
	return &Registry{
		cfg: cfg, macKey: key,
		hashes:   make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		clients:  make(map[string]clientEntry),
		verified: make(map[verifiedKey]time.Time),
		inflight: make(map[verifiedKey]chan struct{}),
		gen:      make(map[string]uint64),
	}, nil
}

// Get returns the client with the given id, from the cache when fresh. It returns an error
// wrapping rescind.ErrNotFound if there is no such client.
func (r *Registry) Get(ctx context.Context, id string) (rescind.Client, error) {
	now := r.cfg.Now()
	r.mu.Lock()
	e, ok := r.clients[id]
	gen := r.gen[id]
	r.mu.Unlock()
	if ok && now.Sub(e.fetched) < r.cfg.ClientTTL {
		return e.c, nil
	}
	c, err := r.cfg.Store.GetClient(ctx, id)
	if err != nil {
		return rescind.Client{}, err
	}
	r.mu.Lock()
	if r.gen[id] == gen { // not changed while we read it
		if len(r.clients) >= r.cfg.MaxEntries {
			clear(r.clients)
		}
		r.clients[id] = clientEntry{c: c, fetched: now}
	}
	r.mu.Unlock()
	return c, nil
}

// Authenticate checks the secret presented by client id. It returns the client on success, an
// error wrapping rescind.ErrNotFound for an unknown client and ErrBadSecret for a wrong secret or a
// client that has none (a public client cannot authenticate with a secret).
func (r *Registry) Authenticate(ctx context.Context, id, presented string) (rescind.Client, error) {
	c, err := r.Get(ctx, id)
	if err != nil {
		return c, err
	}
	if c.Public || c.SecretHash == "" {
		return c, ErrBadSecret
	}
	k := verifiedKey{id: id, mac: r.mac(presented)}
	for {
		now := r.cfg.Now()
		r.mu.Lock()
		if exp, ok := r.verified[k]; ok && now.Before(exp) {
			r.mu.Unlock()
			return c, nil
		}
		wait, busy := r.inflight[k]
		if !busy {
			wait = make(chan struct{})
			r.inflight[k] = wait
			gen := r.gen[id]
			r.mu.Unlock()
			ok, err := r.verify(ctx, presented, c.SecretHash)
			r.mu.Lock()
			delete(r.inflight, k)
			close(wait)
			if err == nil && ok && r.gen[id] == gen {
				if len(r.verified) >= r.cfg.MaxEntries {
					clear(r.verified)
				}
				r.verified[k] = now.Add(r.cfg.VerifiedTTL)
			}
			r.mu.Unlock()
			switch {
			case err != nil:
				return c, err
			case !ok:
				return c, ErrBadSecret
			}
			return c, nil
		}
		r.mu.Unlock()
		// Someone is checking the same secret for the same client: wait, then look again. If
		// it was wrong we check it ourselves, since failures are not cached.
		select {
		case <-wait:
		case <-ctx.Done():
			return c, ctx.Err()
		}
		r.mu.Lock()
		_, cached := r.verified[k]
		r.mu.Unlock()
		if !cached {
			ok, err := r.verify(ctx, presented, c.SecretHash)
			if err != nil {
				return c, err
			}
			if !ok {
				return c, ErrBadSecret
			}
			return c, nil
		}
	}
}

func (r *Registry) verify(ctx context.Context, presented, hash string) (bool, error) {
	select {
	case r.hashes <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-r.hashes }()
	ok, err := secret.Verify(presented, hash)
	if err != nil {
		return false, fmt.Errorf("clientreg: verifying secret: %w", err)
	}
	return ok, nil
}

func (r *Registry) mac(presented string) [16]byte {
	m := hmac.New(sha256.New, r.macKey)
	m.Write([]byte(presented))
	var out [16]byte
	copy(out[:], m.Sum(nil))
	return out
}

// KnownGood reports, without hashing, whether this secret of client id was verified recently
// (it is in the verified cache). Rate limiting lets such a request through.
func (r *Registry) KnownGood(id, presented string) bool {
	k := verifiedKey{id: id, mac: r.mac(presented)}
	now := r.cfg.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	exp, ok := r.verified[k]
	return ok && now.Before(exp)
}

// Invalidate drops everything cached about client id: call it whenever the client changes.
func (r *Registry) Invalidate(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen[id]++
	delete(r.clients, id)
	for k := range r.verified {
		if k.id == id {
			delete(r.verified, k)
		}
	}
}

// InvalidateAll drops everything cached, for when changes may have been missed.
func (r *Registry) InvalidateAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.clients {
		r.gen[id]++
	}
	for k := range r.verified {
		r.gen[k.id]++
	}
	clear(r.clients)
	clear(r.verified)
}

// VerifiedEntries returns the number of cached verified secrets (for metrics and tests).
func (r *Registry) VerifiedEntries() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.verified)
}
