package revocation

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rescind/rescind"
)

// ErrClosed is returned by Committer.Revoke after Close.
var ErrClosed = errors.New("revocation: committer closed")

// MaxBatch bounds how many revocation records one group commit carries.
const MaxBatch = 1024

type request struct {
	revs []rescind.Revocation
	done chan error
}

// Committer writes revocations durably, batching concurrent callers into one transaction (group
// commit), and applies them to a State once committed.
type Committer struct {
	store rescind.Store
	state *State
	// OnCommit, if set, is called after each commit with the batch size (for metrics).
	onCommit func(records int)

	reqs chan *request
	// mu orders enqueueing against Close: a request is either queued before Close (and then
	// committed by the final drain) or refused with ErrClosed, never stranded.
	mu       sync.RWMutex
	isClosed bool
	closed   chan struct{}
	stopped  chan struct{}

	endMu    sync.RWMutex
	end      rescind.SessionEnd
	afterEnd func()
}

// NewCommitter starts a Committer writing to store and applying to state. onCommit may be nil.
func NewCommitter(store rescind.Store, state *State, onCommit func(records int)) *Committer {
	c := &Committer{
		store: store, state: state, onCommit: onCommit,
		reqs:    make(chan *request, MaxBatch),
		closed:  make(chan struct{}),
		stopped: make(chan struct{}),
	}
	go c.loop()
	return c
}

// Revoke durably writes revs and applies them to the state. When it returns nil the revocations
// are committed and visible to State.IsRevoked. If ctx ends first, Revoke returns ctx.Err() and
// the revocation may or may not have been written.
func (c *Committer) Revoke(ctx context.Context, revs ...rescind.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	r := &request{revs: revs, done: make(chan error, 1)}
	c.mu.RLock()
	if c.isClosed {
		c.mu.RUnlock()
		return ErrClosed
	}
	select {
	case c.reqs <- r:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the committer after the requests already queued are committed.
func (c *Committer) Close() {
	c.mu.Lock()
	if !c.isClosed {
		c.isClosed = true
		close(c.closed)
	}
	c.mu.Unlock()
	<-c.stopped
}

func (c *Committer) loop() {
	defer close(c.stopped)
	for {
		var first *request
		select {
		case first = <-c.reqs:
		case <-c.closed:
			// Drain what was queued before Close.
			for {
				select {
				case r := <-c.reqs:
					c.commit([]*request{r})
				default:
					return
				}
			}
		}
		batch := []*request{first}
		n := len(first.revs)
	gather:
		for n < MaxBatch {
			select {
			case r := <-c.reqs:
				batch = append(batch, r)
				n += len(r.revs)
			default:
				break gather
			}
		}
		c.commit(batch)
	}
}

func (c *Committer) commit(batch []*request) {
	var all []rescind.Revocation
	for _, r := range batch {
		all = append(all, r.revs...)
	}
	// The commit is not tied to any one caller's context: a caller that gives up must not
	// abort the others' revocations.
	err := c.store.Revoke(context.Background(), all)
	if err != nil {
		err = fmt.Errorf("revocation: committing %d records: %w", len(all), err)
	} else {
		c.state.Apply(all...)
		if c.onCommit != nil {
			c.onCommit(len(all))
		}
	}
	for _, r := range batch {
		r.done <- err
	}
}

// RevokeGrants revokes the grants matching f through the store (one transaction: grants marked,
// refresh tokens and codes deleted, records and audit written) and applies the records to the
// state. It returns the records and how many refresh tokens died.
func (c *Committer) RevokeGrants(ctx context.Context, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	revs, n, err := c.store.RevokeGrants(ctx, f, rev)
	if err != nil {
		return nil, 0, fmt.Errorf("revocation: revoking grants: %w", err)
	}
	c.state.Apply(revs...)
	if c.onCommit != nil && len(revs) > 0 {
		c.onCommit(len(revs))
	}
	return revs, n, nil
}

// SetSessionEnd makes every end of sessions through c (EndSessions, SetPassword, DeleteUser,
// ExpireSessions: the one place that ends them) carry out end in the store's transaction (the
// outbox messages of back-channel logout and security events, --logout-revokes-grants), then
// call after (if set), e.g. to wake the outbox's dispatcher. Call it before serving.
func (c *Committer) SetSessionEnd(end rescind.SessionEnd, after func()) {
	c.endMu.Lock()
	defer c.endMu.Unlock()
	c.end, c.afterEnd = end, after
}

func (c *Committer) sessionEnd() (rescind.SessionEnd, func()) {
	c.endMu.RLock()
	defer c.endMu.RUnlock()
	return c.end, c.afterEnd
}

// ended applies the records of an end of sessions and calls the after hook.
func (c *Committer) ended(revs []rescind.Revocation, after func()) {
	c.Apply(revs...)
	if after != nil {
		after()
	}
}

// EndSessions ends the sessions matching f through the store (one transaction: sessions
// deleted, records and audit written, the SessionEnd carried out) and applies the records to
// the state, so that this instance refuses them before it returns. It returns the records.
func (c *Committer) EndSessions(ctx context.Context, f rescind.SessionFilter, rev rescind.Revocation) ([]rescind.Revocation, error) {
	end, after := c.sessionEnd()
	// Not cut short by the caller going away: once asked for, the end is carried through and
	// applied here (the caller learns of a failure, never of a half-applied end).
	revs, err := c.store.EndSessions(context.WithoutCancel(ctx), f, rev, end)
	if err != nil {
		return nil, fmt.Errorf("revocation: ending sessions: %w", err)
	}
	c.ended(revs, after)
	return revs, nil
}

// SetPassword sets a person's password through the store, ending their sessions (and with
// revokeGrants revoking their grants) as rescind.Store's SetPassword does, with the SessionEnd,
// and applies the records. It returns the records and how many refresh tokens died.
func (c *Committer) SetPassword(ctx context.Context, id, hash string, revokeGrants bool, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	end, after := c.sessionEnd()
	revs, n, err := c.store.SetPassword(context.WithoutCancel(ctx), id, hash, revokeGrants, rev, end)
	if err != nil {
		return nil, 0, fmt.Errorf("revocation: setting a password: %w", err)
	}
	c.ended(revs, after)
	return revs, n, nil
}

// DeleteUser deletes a person through the store, ending their sessions and revoking their
// grants as rescind.Store's DeleteUser does, with the SessionEnd, and applies the records.
func (c *Committer) DeleteUser(ctx context.Context, id string, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	end, after := c.sessionEnd()
	revs, n, err := c.store.DeleteUser(context.WithoutCancel(ctx), id, rev, end)
	if err != nil {
		return nil, 0, fmt.Errorf("revocation: deleting a user: %w", err)
	}
	c.ended(revs, after)
	return revs, n, nil
}

// ExpireSessions ends the sessions that expired before now, in batches of limit, through the
// store with the SessionEnd (the janitor's part: an expiry is told like a logout), and applies
// the records of the grants it revoked. It returns how many sessions it ended.
func (c *Committer) ExpireSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	end, after := c.sessionEnd()
	total := 0
	for {
		n, revs, err := c.store.ExpireSessions(ctx, now, limit, end)
		if err != nil {
			return total, fmt.Errorf("revocation: ending expired sessions: %w", err)
		}
		total += n
		if n > 0 {
			c.ended(revs, after)
		}
		if n < limit {
			return total, nil
		}
	}
}

// SessionEnded reports whether the session was ended, from the in-memory state.
func (c *Committer) SessionEnded(id string) bool { return c.state.SessionEnded(id) }

// Apply applies records committed by other means (a client or user deletion) to the state.
func (c *Committer) Apply(revs ...rescind.Revocation) {
	c.state.Apply(revs...)
	if c.onCommit != nil && len(revs) > 0 {
		c.onCommit(len(revs))
	}
}

// GrantRevoked reports whether the grant is revoked, from the in-memory state.
func (c *Committer) GrantRevoked(grantID string) bool { return c.state.GrantRevoked(grantID) }
