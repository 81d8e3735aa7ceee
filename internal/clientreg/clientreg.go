// Package clientreg is the server's view of registered clients: cached lookups, client
// authentication with a cache of verified secrets, and a Snapshot of what is derived from every
// client at once (the browser origins of public clients, for CORS; the scopes in use).
//
// Client secrets are stored as argon2id hashes, which are deliberately slow to check (tens of
// milliseconds and 19 MiB each). A successful check is remembered for a few minutes, keyed by
// the client id and an HMAC of the presented secret under a per-process random key, so the token
// endpoint is not capped by the hash and the cache holds nothing that reveals the secret.
// Failures are never cached. Every entry of a client is dropped when the client changes, and an
// entry counts only while the hash it was checked against is still the client's secret (or its
// previous secret, until the end of a rotation's overlap): an instance that missed a change
// stops accepting a replaced secret as soon as it reads the client again, and a previous secret
// stops at the end of its overlap to the second, cached or not.
package clientreg

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
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
	// Gate bounds the argon2 checks running at once; share the process's one Gate (logins use
	// it too). If nil, the Registry makes its own, for as many checks as there are cores.
	Gate *secret.Gate
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

type verifiedKey struct {
	id  string
	mac [16]byte
}

// verified is a successful check: until when it may be reused, and the hash it matched.
type verified struct {
	until time.Time
	hash  string
}

type clientEntry struct {
	c       rescind.Client
	fetched time.Time
}

// Registry caches clients and verified secrets. It is safe for concurrent use.
type Registry struct {
	cfg  Config
	macs sync.Pool    // of *macState: HMAC-SHA256 under a random key of this process, keyed once
	gate *secret.Gate // bounds concurrent argon2 checks (memory)

	mu       sync.Mutex
	clients  map[string]clientEntry
	verified map[verifiedKey]verified
	inflight map[verifiedKey]chan struct{}
	claimed  map[verifiedKey]chan struct{} // the checks in flight that are Admit's claims
	gen      map[string]uint64             // bumped by Invalidate, so a check racing with a change is not cached
	epoch    uint64                        // bumped by InvalidateAll: what was read before it is stale too
	snapGen  uint64                        // bumped by every Invalidate: the Snapshot is stale

	// snapMu serializes the building of Snapshots; snap is the last, built at snapAt when
	// snapGen was snapBuilt.
	snapMu    sync.Mutex
	snap      *Snapshot
	snapAt    time.Time
	snapBuilt uint64
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
	if cfg.Gate == nil {
		cfg.Gate = secret.NewGate(secret.GateConfig{Running: max(1, runtime.GOMAXPROCS(0))})
	}
	return &Registry{
		cfg:      cfg,
		macs:     sync.Pool{New: func() any { return &macState{h: hmac.New(sha256.New, key)} }},
		gate:     cfg.Gate,
		clients:  make(map[string]clientEntry),
		verified: make(map[verifiedKey]verified),
		inflight: make(map[verifiedKey]chan struct{}),
		claimed:  make(map[verifiedKey]chan struct{}),
		gen:      make(map[string]uint64),
	}, nil
}

// Get returns the client with the given id, from the cache when fresh. It returns an error
// wrapping rescind.ErrNotFound if there is no such client.
func (r *Registry) Get(ctx context.Context, id string) (rescind.Client, error) {
	c, _, err := r.get(ctx, id)
	return c, err
}

// stamp is what a client's cached facts were learnt under: its generation (bumped by
// Invalidate) and the registry's epoch (bumped by InvalidateAll).
type stamp struct{ gen, epoch uint64 }

// stampOf returns id's stamp now. r.mu must be held.
func (r *Registry) stampOf(id string) stamp { return stamp{r.gen[id], r.epoch} }

// get is Get that also returns the stamp the client was read under: what is learnt from the
// client returned may be cached only while the stamp is still that one.
func (r *Registry) get(ctx context.Context, id string) (rescind.Client, stamp, error) {
	now := r.cfg.Now()
	r.mu.Lock()
	e, ok := r.clients[id]
	st := r.stampOf(id)
	r.mu.Unlock()
	if ok && now.Sub(e.fetched) < r.cfg.ClientTTL {
		return e.c, st, nil
	}
	c, err := r.cfg.Store.GetClient(ctx, id)
	if err != nil {
		return rescind.Client{}, st, err
	}
	r.mu.Lock()
	if r.stampOf(id) == st { // not changed while we read it
		if len(r.clients) >= r.cfg.MaxEntries {
			clear(r.clients)
		}
		r.clients[id] = clientEntry{c: c, fetched: now}
	}
	r.mu.Unlock()
	return c, st, nil
}

// Authenticate checks the secret presented by client id against the client's secret and, until
// the end of a rotation's overlap, its previous one. It returns the client on success, an error
// wrapping rescind.ErrNotFound for an unknown client and ErrBadSecret for a wrong secret or a
// client that has none (a public client cannot authenticate with a secret), and secret.ErrBusy
// when too many checks are under way. Whatever the reason, a failure costs WrongSecretChecks
// checks (of the client's hashes, padded with checks of a dummy hash), so the answer's timing
// does not tell which client ids exist, which are public, or which are in a rotation's overlap.
func (r *Registry) Authenticate(ctx context.Context, id, presented string) (rescind.Client, error) {
	return r.AuthenticateClaim(ctx, nil, id, presented)
}

// AuthenticateClaim is Authenticate by the holder of claim, a claim on the check of this secret
// of this client from Admit (nil: none): the check is made as the claim's, so those waiting for
// it learn its outcome. The claim is released whatever happens.
func (r *Registry) AuthenticateClaim(ctx context.Context, claim *Claim, id, presented string) (rescind.Client, error) {
	defer claim.Release()
	c, spent, err := r.authenticate(ctx, id, presented, claim)
	if errors.Is(err, rescind.ErrNotFound) || errors.Is(err, ErrBadSecret) {
		for ; spent < WrongSecretChecks; spent++ {
			if gerr := r.gate.VerifyNone(ctx, presented); gerr != nil {
				return c, gerr
			}
		}
	}
	return c, err
}

// WrongSecretChecks is what a failed Authenticate costs, in argon2id checks, whoever presented
// what: the most a known client's wrong secret can cost (its secret and, in a rotation's
// overlap, its previous one).
const WrongSecretChecks = 2

// authenticate is Authenticate without the padding: it also returns how many hashes it checked.
func (r *Registry) authenticate(ctx context.Context, id, presented string, claim *Claim) (rescind.Client, int, error) {
	// The generation is the one the client was read at: a check against a client that a
	// rotation replaced meanwhile (Invalidate) is not cached (re-audit 8 #2).
	c, st, err := r.get(ctx, id)
	if err != nil {
		return c, 0, err
	}
	if c.Public || c.SecretHash == "" {
		return c, 0, ErrBadSecret
	}
	k := verifiedKey{id: id, mac: r.mac(presented)}
	for {
		now := r.cfg.Now()
		r.mu.Lock()
		if v, ok := r.verified[k]; ok && now.Before(v.until) && accepts(c, v.hash, now) {
			r.mu.Unlock()
			return c, 0, nil
		}
		wait, busy := r.inflight[k]
		// The caller's own claim is the check in flight: it makes it.
		own := busy && claim != nil && claim.k == k && wait == claim.done
		if !busy || own {
			if !own {
				wait = make(chan struct{})
				r.inflight[k] = wait
			}
			r.mu.Unlock()
			hash, spent, err := r.check(ctx, c, presented, now)
			r.mu.Lock()
			if !own {
				delete(r.inflight, k)
				close(wait)
			}
			// An owned claim is released by AuthenticateClaim after this: the outcome is
			// cached before its waiters wake.
			if err == nil && r.stampOf(id) == st {
				if len(r.verified) >= r.cfg.MaxEntries {
					clear(r.verified)
				}
				until := now.Add(r.cfg.VerifiedTTL)
				if hash != c.SecretHash {
					until = minTime(until, c.PreviousSecretExpiresAt)
				}
				r.verified[k] = verified{until: until, hash: hash}
			}
			r.mu.Unlock()
			return c, spent, err
		}
		r.mu.Unlock()
		// Someone is checking the same secret for the same client: wait, then look again. If
		// it was wrong we check it ourselves, since failures are not cached.
		select {
		case <-wait:
		case <-ctx.Done():
			return c, 0, ctx.Err()
		}
		r.mu.Lock()
		_, cached := r.verified[k]
		r.mu.Unlock()
		if !cached {
			_, spent, err := r.check(ctx, c, presented, now)
			return c, spent, err
		}
	}
}

// accepts reports whether client c accepts a secret that matched hash, at now.
func accepts(c rescind.Client, hash string, now time.Time) bool {
	return hash == c.SecretHash || (hash == c.PreviousSecretHash && hash != "" && now.Before(c.PreviousSecretExpiresAt))
}

// check verifies presented against the client's secret, then against its previous secret while
// that is accepted, and returns the hash that matched and how many it checked.
func (r *Registry) check(ctx context.Context, c rescind.Client, presented string, now time.Time) (string, int, error) {
	spent := 0
	for _, h := range []string{c.SecretHash, c.PreviousSecretHash} {
		if !accepts(c, h, now) {
			continue
		}
		spent++
		ok, err := r.verify(ctx, presented, h)
		if err != nil {
			return "", spent, err
		}
		if ok {
			return h, spent, nil
		}
	}
	return "", spent, ErrBadSecret
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (r *Registry) verify(ctx context.Context, presented, hash string) (bool, error) {
	ok, err := r.gate.Verify(ctx, presented, hash)
	if err != nil {
		return false, fmt.Errorf("clientreg: verifying secret: %w", err)
	}
	return ok, nil
}

func (r *Registry) mac(presented string) [16]byte {
	// A keyed HMAC is reused (Reset restores its keyed state): keying one costs more than the
	// MAC of a short secret, on every authenticated request (issue 20). Its buffers come with
	// it, so that nothing is allocated.
	m := r.macs.Get().(*macState)
	out := m.mac(presented)
	if cap(m.in) <= 1024 { // a pooled buffer stays small
		r.macs.Put(m)
	}
	return out
}

// macState is a keyed HMAC and its buffers (Registry.macs).
type macState struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
}

// mac returns the first 16 bytes of the HMAC of presented, and leaves nothing of it in m: the
// HMAC's block buffer holds its tail until a Reset (re-audit 9 #3).
func (m *macState) mac(presented string) [16]byte {
	m.h.Reset()
	m.in = append(m.in[:0], presented...)
	m.h.Write(m.in)
	var out [16]byte
	copy(out[:], m.h.Sum(m.sum[:0]))
	m.h.Reset()
	clear(m.in)
	clear(m.sum[:])
	return out
}

// Admit reports which of the secrets presented (the ways one secret can be read: see
// oauth.parseBasic) was verified recently for client id, its index, without hashing: rate
// limiting lets such a request through. A verification counts only while the client, as this
// registry holds it, still accepts the hash that matched (not once a rotation replaced it).
//
// While a check of one of them for this client is in flight, it waits for that check (at most
// AdmitWait, and not past ctx) and answers after it. Otherwise it returns -1 with a claim on
// the check of presented[0], which others asking meanwhile wait for: the caller must pass it to
// AuthenticateClaim, or Release it. So a client that opens many connections at once with its
// right secret has one check made (and charged to the rate limit), not one per connection, of
// which all but the limit's burst were refused (slow_down) until the first had finished. A
// wrong secret is not cached: after its check the waiters are admitted one by one and charged
// each, as before. After AdmitWait, or without a claim (ctx ended), it returns -1 and no claim.
func (r *Registry) Admit(ctx context.Context, id string, presented ...string) (int, *Claim) {
	if len(presented) == 0 {
		return -1, nil
	}
	var buf [3]verifiedKey // a Basic secret has at most three readings
	keys := buf[:0]
	for _, p := range presented {
		keys = append(keys, verifiedKey{id: id, mac: r.mac(p)})
	}
	var deadline <-chan time.Time // made when there is something to wait for
	for {
		var wait chan struct{}
		r.mu.Lock()
		now := r.cfg.Now()
		entry, held := r.clients[id]
		for i, k := range keys {
			if v, ok := r.verified[k]; ok && now.Before(v.until) && held && accepts(entry.c, v.hash, now) {
				r.mu.Unlock()
				return i, nil
			}
			// Only Admit's own claims are waited for: a check authenticate makes without one
			// exists for a confidential client only, and waiting for it would tell those apart
			// from unknown and public ids (re-audit 9 #1).
			if w, busy := r.claimed[k]; busy && wait == nil {
				wait = w
			}
		}
		if _, busy := r.inflight[keys[0]]; wait == nil && !busy {
			c := &Claim{r: r, k: keys[0], done: make(chan struct{})}
			r.inflight[keys[0]], r.claimed[keys[0]] = c.done, c.done
			r.mu.Unlock()
			return -1, c
		}
		if wait == nil { // the first reading is being checked, but not under a claim: no claim
			r.mu.Unlock()
			return -1, nil
		}
		r.mu.Unlock()
		if deadline == nil {
			t := time.NewTimer(AdmitWait)
			defer t.Stop()
			deadline = t.C
		}
		select {
		case <-wait:
		case <-deadline:
			return -1, nil
		case <-ctx.Done():
			return -1, nil
		}
	}
}

// AdmitWait bounds how long Admit waits for a check in flight, as the secret gate bounds a
// check's wait for its turn: after it, the request is charged to the rate limit as any other.
const AdmitWait = 2 * time.Second

// Claim is a hold on the check of one secret of one client (Admit): while it is held, those
// asking about that secret wait for the check's outcome rather than making their own.
type Claim struct {
	r    *Registry
	k    verifiedKey
	done chan struct{}
	once sync.Once
}

// Release gives the claim up: those waiting for it look again. It does nothing on a nil claim
// or one released already; AuthenticateClaim releases the claim it is given.
func (c *Claim) Release() {
	if c == nil {
		return
	}
	c.once.Do(func() {
		c.r.mu.Lock()
		if c.r.inflight[c.k] == c.done {
			delete(c.r.inflight, c.k)
		}
		if c.r.claimed[c.k] == c.done {
			delete(c.r.claimed, c.k)
		}
		c.r.mu.Unlock()
		close(c.done)
	})
}

// Invalidate drops everything cached about client id: call it whenever the client changes.
func (r *Registry) Invalidate(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.gen[id]++
	r.snapGen++
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
	r.snapGen++
	r.epoch++ // a client read before this, cached or not yet, is stale
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
