// Package coherence keeps one server instance's caches coherent with the shared store when
// several instances share it: revocations committed elsewhere are applied to the in-memory
// state, and clients and keys changed elsewhere are dropped from the caches or reloaded.
//
// Two paths feed it. Notifications (a rescind.Watcher, LISTEN/NOTIFY on PostgreSQL) apply a
// change as soon as it commits. A poll every PollInterval reads whatever was committed since
// the last record seen (and reloads keys), so a lost notification (a dropped connection) delays
// a revocation on this instance by at most PollInterval plus one query: that is the stated
// staleness bound.
package coherence

import (
	"context"
	"log/slog"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/revocation"
)

// Config configures Run.
type Config struct {
	// Store is the shared store. Required.
	Store rescind.Store
	// Watcher delivers notifications; if nil, only the poll runs.
	Watcher rescind.Watcher
	// State is this instance's revocation state. Required.
	State *revocation.State
	// Clients is this instance's client cache. Required.
	Clients *clientreg.Registry
	// RefreshKeys reloads the keyring. Optional.
	RefreshKeys func(context.Context)
	// OnRevoked, if set, is called after revocations from elsewhere were applied: wake this
	// instance's event streams (oauth.Server.NotifyRevocations), so their subscribers learn of
	// them at once rather than at their next keep-alive.
	OnRevoked func()
	// PollInterval is the fallback poll period. If zero, one second.
	PollInterval time.Duration
	// ClockSkew is how long past their expiry records stay in force (the janitor's grace): the
	// poll reads those too.
	ClockSkew time.Duration
	// Logger receives errors. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Run keeps the caches coherent until ctx ends.
func Run(ctx context.Context, cfg Config) {
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &coherer{cfg: cfg}
	if cfg.Watcher != nil {
		go func() {
			if err := cfg.Watcher.Watch(ctx, c.handle); err != nil && ctx.Err() == nil {
				cfg.Logger.Error("watching for changes stopped; relying on the poll", "err", err)
			}
		}()
	}
	t := time.NewTicker(cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.poll(ctx)
		}
	}
}

type coherer struct {
	cfg Config
}

// applied is called for each revocation learnt from the store: a client revocation also means
// the client may be gone, so its cached record and verified secrets are dropped; a key
// retirement makes the keys reload before the event streams are woken.
func (c *coherer) applied(r rescind.Revocation) {
	switch r.Kind {
	case rescind.RevokeClient:
		c.cfg.Clients.Invalidate(r.Key)
	case rescind.RevokeKey:
		if c.cfg.RefreshKeys != nil {
			c.cfg.RefreshKeys(context.Background())
		}
	}
}

func (c *coherer) poll(ctx context.Context) {
	n, err := c.cfg.State.Load(ctx, c.cfg.Store, c.cfg.Now().Add(-c.cfg.ClockSkew), c.applied)
	if err != nil && ctx.Err() == nil {
		c.cfg.Logger.Warn("polling revocations", "err", err)
	}
	if n > 0 && c.cfg.OnRevoked != nil {
		c.cfg.OnRevoked()
	}
	if c.cfg.RefreshKeys != nil {
		c.cfg.RefreshKeys(ctx)
	}
}

func (c *coherer) handle(e rescind.Event) {
	ctx := context.Background()
	switch e.Kind {
	case rescind.EventRevoked:
		if e.Revocations == nil {
			c.poll(ctx)
			return
		}
		c.cfg.State.Apply(e.Revocations...)
		for _, r := range e.Revocations {
			c.applied(r)
		}
		if c.cfg.OnRevoked != nil {
			c.cfg.OnRevoked()
		}
	case rescind.EventClientChanged:
		c.cfg.Clients.Invalidate(e.ClientID)
	case rescind.EventKeysChanged:
		if c.cfg.RefreshKeys != nil {
			c.cfg.RefreshKeys(ctx)
		}
	case rescind.EventResync:
		c.poll(ctx)
		c.cfg.Clients.InvalidateAll()
	}
}
