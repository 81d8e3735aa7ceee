package secret

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrBusy is returned by Gate.Verify when the checks running and waiting fill the gate, or a
// check waited too long for its turn: the caller answers 503 with Retry-After, and nothing grows.
var ErrBusy = errors.New("secret: too many secret checks at once")

// Gate bounds the argon2id checks that run at once in the process. Each check takes its hash's
// memory (19 MiB with DefaultParams) and tens of milliseconds of one core, so unbounded
// concurrent checks (a burst of wrong passwords or client secrets) would grow the heap without
// limit. Every check of the process, logins and client secrets alike, goes through one Gate:
// at most Running run, at most Queued wait, and none waits longer than Wait.
type Gate struct {
	run   chan struct{}
	queue chan struct{}
	wait  time.Duration

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
	return &Gate{run: make(chan struct{}, cfg.Running), queue: make(chan struct{}, cfg.Queued), wait: cfg.Wait, params: cfg.Params}
}

// Verify reports whether secret matches hash (as the package's Verify), once the gate lets the
// check run. It returns ErrBusy if the gate is full, and ctx's error if ctx ends first.
func (g *Gate) Verify(ctx context.Context, secret, hash string) (bool, error) {
	if err := g.enter(ctx); err != nil {
		return false, err
	}
	defer func() { <-g.run }()
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
