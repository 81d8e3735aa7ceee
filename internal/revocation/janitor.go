package revocation

import (
	"context"
	"log/slog"
	"time"

	"github.com/rescind/rescind"
)

// JanitorConfig configures RunJanitor.
type JanitorConfig struct {
	// Store holds the durable records. Required.
	Store rescind.Store
	// State is the in-memory state to prune. Required.
	State *State
	// Interval between sweeps. If zero, one minute.
	Interval time.Duration
	// Grace keeps records this long past their expiry, to absorb clock skew between instances.
	// If zero, one minute.
	Grace time.Duration
	// AuditRetention, if positive, is how long audit entries are kept.
	AuditRetention time.Duration
	// ExpireSessions, if set, ends the sessions expired at the time it is given, telling their
	// end as a logout is (Committer.ExpireSessions); it returns how many it ended. If nil,
	// expired sessions are left (the store refuses them by their expiry).
	ExpireSessions func(ctx context.Context, now time.Time) (int, error)
	// OnDeleted, if set, is called with the number of stored records each sweep deleted.
	OnDeleted func(int64)
	// Logger receives sweep errors. If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Sweep deletes stored revocation records, codes and refresh tokens that expired more than
// Grace ago and prunes the state. It returns the number of stored rows deleted.
func (c *JanitorConfig) Sweep(ctx context.Context) (int64, error) {
	c.defaults()
	cut := c.Now().Add(-c.Grace)
	n, err := c.Store.DeleteExpiredRevocations(ctx, cut)
	if err != nil {
		return 0, err
	}
	c.State.Prune(cut)
	purged, err := c.Store.DeleteExpired(ctx, cut)
	if err != nil {
		return n, err
	}
	n += purged
	if c.ExpireSessions != nil {
		ended, err := c.ExpireSessions(ctx, c.Now())
		if err != nil {
			return n, err
		}
		n += int64(ended)
	}
	if c.AuditRetention > 0 {
		old, err := c.Store.DeleteAuditBefore(ctx, c.Now().Add(-c.AuditRetention))
		if err != nil {
			return n, err
		}
		n += old
	}
	if c.OnDeleted != nil && n > 0 {
		c.OnDeleted(n)
	}
	return n, nil
}

func (c *JanitorConfig) defaults() {
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Grace <= 0 {
		c.Grace = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// RunJanitor sweeps every Interval until ctx ends. Sweeps run in their own goroutine and use
// one short statement, so they never block requests (which do not touch the store to check a
// token).
func RunJanitor(ctx context.Context, c JanitorConfig) {
	c.defaults()
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := c.Sweep(ctx); err != nil && ctx.Err() == nil {
				c.Logger.Error("janitor sweep", "err", err)
			}
		}
	}
}
