package secret

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBusy is returned by Gate.Verify when the checks running and waiting fill the gate, or a
// check waited too long for its turn: the caller answers 503 with Retry-After, and nothing grows.
var ErrBusy = errors.New("secret: too many secret checks at once")

// ErrShareInUse is returned by Gate.Verify when the check's claimant (WithClaimant) holds its
// share of the gate already: that party is sending checks faster than they run, so the caller
// answers 429 with Retry-After, as for its rate limit. It wraps ErrBusy.
var ErrShareInUse = fmt.Errorf("%w: this party's share of the checks is in use", ErrBusy)

// Gate bounds the argon2id checks that run at once in the process. Each check takes its hash's
// memory (19 MiB with DefaultParams) and tens of milliseconds of one core, so unbounded
// concurrent checks (a burst of wrong passwords or client secrets) would grow the heap without
// limit. Every check of the process, logins and client secrets alike, goes through one Gate:
// at most Running run, at most Queued wait, none waits longer than Wait, and the checks of one
// claimant (the network a request comes from: WithClaimant) hold at most PerClaimant of those
// places, so that one party cannot fill the gate and turn everyone else's sign-in into a 503.
type Gate struct {
	run   chan struct{}
	queue chan struct{}
	wait  time.Duration

	checks atomic.Int64

	perClaimant int
	mu          sync.Mutex
	held        map[string]int // places held by claimant

	params    Params
	dummyOnce sync.Once
	dummy     string
}

// GateConfig configures a Gate.
type GateConfig struct {
	// Running is how many checks run at once. If zero, 2.
	Running int
	// Queued is how many checks may wait for their turn. If zero, 64.
	Queued int
	// Wait bounds how long a check waits for its turn. If zero, 2 seconds.
	Wait time.Duration
	// PerClaimant bounds the places, running and waiting, that the checks of one claimant
	// (WithClaimant) hold at once; a check beyond it gets ErrBusy at once. If zero, a quarter
	// of Running+Queued (16 with the defaults), at least 1.
	PerClaimant int
	// Params are the parameters of the dummy hash VerifyNone checks against: those of the
	// stored hashes, so that an unknown name costs what a known one does. If zero,
	// DefaultParams.
	Params Params
}

// NewGate returns a Gate.
func NewGate(cfg GateConfig) *Gate {
	if cfg.Running <= 0 {
		cfg.Running = 2
	}
	if cfg.Queued <= 0 {
		cfg.Queued = 64
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 2 * time.Second
	}
	if cfg.Params == (Params{}) {
		cfg.Params = DefaultParams
	}
	if cfg.PerClaimant <= 0 {
		cfg.PerClaimant = max(1, (cfg.Running+cfg.Queued)/4)
	}
	return &Gate{run: make(chan struct{}, cfg.Running), queue: make(chan struct{}, cfg.Queued), wait: cfg.Wait, params: cfg.Params,
		perClaimant: cfg.PerClaimant, held: make(map[string]int)}
}

type claimantKey struct{}

// WithClaimant returns ctx naming who a check made with it is for: the network the request
// comes from (clientip.Network), so that a Gate bounds the places one party holds.
func WithClaimant(ctx context.Context, claimant string) context.Context {
	return context.WithValue(ctx, claimantKey{}, claimant)
}

// Verify reports whether secret matches hash (as the package's Verify), once the gate lets the
// check run. It returns ErrBusy if the gate is full, and ctx's error if ctx ends first.
func (g *Gate) Verify(ctx context.Context, secret, hash string) (bool, error) {
	release, err := g.claim(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	if err := g.enter(ctx); err != nil {
		return false, err
	}
	defer func() { <-g.run }()
	g.checks.Add(1)
	return Verify(secret, hash)
}

// VerifyNone spends on secret what checking it against a stored hash would (a dummy hash made
// with the gate's parameters), for a name that does not exist: the answer's timing then does not
// tell which names do. It returns ErrBusy or ctx's error like Verify, else nil.
func (g *Gate) VerifyNone(ctx context.Context, secret string) error {
	g.dummyOnce.Do(func() { g.dummy, _ = Hash("dummy for unknown names", g.params) })
	_, err := g.Verify(ctx, secret, g.dummy)
	if errors.Is(err, ErrMalformedHash) {
		return nil
	}
	return err
}

// Running reports how many checks are running now (for metrics and tests).
func (g *Gate) Running() int { return len(g.run) }

// Checks reports how many checks the gate has let run, dummy ones included (for metrics and
// tests).
func (g *Gate) Checks() int64 { return g.checks.Load() }

// claim takes one of the places of ctx's claimant, if it names one, or returns ErrBusy if the
// claimant holds PerClaimant already; release gives it back.
func (g *Gate) claim(ctx context.Context) (release func(), err error) {
	c, _ := ctx.Value(claimantKey{}).(string)
	if c == "" {
		return func() {}, nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held[c] >= g.perClaimant {
		return nil, ErrShareInUse
	}
	g.held[c]++
	return func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.held[c]--; g.held[c] == 0 {
			delete(g.held, c)
		}
	}, nil
}

func (g *Gate) enter(ctx context.Context) error {
	select {
	case g.run <- struct{}{}:
		return nil
	default:
	}
	select {
	case g.queue <- struct{}{}:
	default:
		return ErrBusy
	}
	defer func() { <-g.queue }()
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.run <- struct{}{}:
		return nil
	case <-t.C:
		return ErrBusy
	case <-ctx.Done():
		return ctx.Err()
	}
}
