package revocation

import (
	"context"
	"errors"
	"fmt"
	"sync"

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

// EndSessions ends the sessions matching f through the store (one transaction: sessions
// deleted, records and audit written) and applies the records to the state, so that this
// instance refuses them before it returns. It returns the records.
func (c *Committer) EndSessions(ctx context.Context, f rescind.SessionFilter, rev rescind.Revocation) ([]rescind.Revocation, error) {
	// Not cut short by the caller going away: once asked for, the end is carried through and
	// applied here (the caller learns of a failure, never of a half-applied end).
	revs, err := c.store.EndSessions(context.WithoutCancel(ctx), f, rev)
	if err != nil {
		return nil, fmt.Errorf("revocation: ending sessions: %w", err)
	}
	c.Apply(revs...)
	return revs, nil
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
