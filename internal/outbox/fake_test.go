package outbox

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/rescind/rescind"
)

// fakeStore is a hand-written in-memory outbox with rescind.Store's contract, recording each
// settlement.
type fakeStore struct {
	mu      sync.Mutex
	next    int64
	msgs    map[int64]*rescind.OutboxMessage
	claims  [][]string // kinds of each claim
	events  []event
	failing error // if set, ClaimOutbox fails with it
}

// event is one settlement the store accepted.
type event struct {
	op    string // complete, retry, defer, giveup
	id    int64
	owner string
	at    time.Time // next attempt, or when finished
	err   string
}

func newFakeStore() *fakeStore { return &fakeStore{msgs: map[int64]*rescind.OutboxMessage{}} }

func (f *fakeStore) Enqueue(_ context.Context, msgs []rescind.OutboxMessage) ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []int64
	for _, m := range msgs {
		if m.Kind == "" || m.CreatedAt.IsZero() || m.Deadline.Before(m.CreatedAt) {
			return nil, errors.New("fake: invalid message")
		}
		f.next++
		m.ID, m.State = f.next, rescind.OutboxPending
		if m.NextAttemptAt.IsZero() {
			m.NextAttemptAt = m.CreatedAt
		}
		f.msgs[m.ID] = &m
		ids = append(ids, m.ID)
	}
	return ids, nil
}

func (f *fakeStore) ClaimOutbox(_ context.Context, c rescind.OutboxClaim) ([]rescind.OutboxMessage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.claims = append(f.claims, c.Kinds)
	if f.failing != nil {
		return nil, f.failing
	}
	var due []*rescind.OutboxMessage
	for _, m := range f.msgs {
		if m.State == rescind.OutboxPending && !m.NextAttemptAt.After(c.Now) && !m.LeaseExpiresAt.After(c.Now) &&
			slices.Contains(c.Kinds, m.Kind) {
			due = append(due, m)
		}
	}
	slices.SortFunc(due, func(a, b *rescind.OutboxMessage) int {
		if x := a.NextAttemptAt.Compare(b.NextAttemptAt); x != 0 {
			return x
		}
		return cmp.Compare(a.ID, b.ID)
	})
	out := []rescind.OutboxMessage{}
	for _, m := range due[:min(len(due), c.Limit)] {
		m.LeaseOwner, m.LeaseExpiresAt = c.Owner, c.LeaseUntil
		out = append(out, *m)
	}
	return out, nil
}

// leased returns the pending message id leased to owner, or ErrLeaseLost.
func (f *fakeStore) leased(id int64, owner string) (*rescind.OutboxMessage, error) {
	m := f.msgs[id]
	if m == nil || m.State != rescind.OutboxPending || m.LeaseOwner != owner {
		return nil, rescind.ErrLeaseLost
	}
	return m, nil
}

func (f *fakeStore) CompleteOutbox(_ context.Context, id int64, owner string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.leased(id, owner)
	if err != nil {
		return err
	}
	m.State, m.FinishedAt, m.Payload, m.LeaseOwner, m.LeaseExpiresAt = rescind.OutboxDelivered, at, []byte{}, "", time.Time{}
	f.events = append(f.events, event{op: "complete", id: id, owner: owner, at: at})
	return nil
}

func (f *fakeStore) RetryOutbox(_ context.Context, id int64, owner string, next time.Time, lastErr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.leased(id, owner)
	if err != nil {
		return err
	}
	m.Attempts++
	m.NextAttemptAt, m.LastError, m.LeaseOwner, m.LeaseExpiresAt = next, lastErr, "", time.Time{}
	f.events = append(f.events, event{op: "retry", id: id, owner: owner, at: next, err: lastErr})
	return nil
}

func (f *fakeStore) DeferOutbox(_ context.Context, id int64, owner string, next time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.leased(id, owner)
	if err != nil {
		return err
	}
	m.NextAttemptAt, m.LeaseOwner, m.LeaseExpiresAt = next, "", time.Time{}
	f.events = append(f.events, event{op: "defer", id: id, owner: owner, at: next})
	return nil
}

func (f *fakeStore) GiveUpOutbox(_ context.Context, id int64, owner string, at time.Time, lastErr string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	m, err := f.leased(id, owner)
	if err != nil {
		return err
	}
	m.Attempts++
	m.State, m.FinishedAt, m.LastError, m.Payload, m.LeaseOwner, m.LeaseExpiresAt = rescind.OutboxFailed, at, lastErr, []byte{}, "", time.Time{}
	f.events = append(f.events, event{op: "giveup", id: id, owner: owner, at: at, err: lastErr})
	return nil
}

func (f *fakeStore) OutboxStats(context.Context) ([]rescind.OutboxStat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	by := map[string]*rescind.OutboxStat{}
	for _, m := range f.msgs {
		if m.State != rescind.OutboxPending {
			continue
		}
		s := by[m.Kind]
		if s == nil {
			s = &rescind.OutboxStat{Kind: m.Kind, OldestCreatedAt: m.CreatedAt}
			by[m.Kind] = s
		}
		s.Pending++
		if m.CreatedAt.Before(s.OldestCreatedAt) {
			s.OldestCreatedAt = m.CreatedAt
		}
	}
	var out []rescind.OutboxStat
	for _, s := range by {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b rescind.OutboxStat) int { return cmp.Compare(a.Kind, b.Kind) })
	return out, nil
}

func (f *fakeStore) DeleteFinishedOutbox(_ context.Context, t time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for id, m := range f.msgs {
		if m.State != rescind.OutboxPending && m.FinishedAt.Before(t) {
			delete(f.msgs, id)
			n++
		}
	}
	return n, nil
}

// get returns a copy of message id.
func (f *fakeStore) get(id int64) rescind.OutboxMessage {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m := f.msgs[id]; m != nil {
		return *m
	}
	return rescind.OutboxMessage{}
}

// log returns the settlements so far.
func (f *fakeStore) log() []event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

func (f *fakeStore) ReleaseOutboxLeases(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, m := range f.msgs {
		if m.State == rescind.OutboxPending && m.LeaseOwner != "" {
			m.LeaseOwner, m.LeaseExpiresAt = "", time.Time{}
			n++
		}
	}
	f.events = append(f.events, event{op: "release"})
	return n, nil
}
