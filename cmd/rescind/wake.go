package main

import (
	"context"
	"time"

	"github.com/rescind/rescind"
)

// wakingStore is the store as the handlers see it: after each change that can write outbox
// messages in its transaction (signals for Shared Signals receivers: an ended session, a
// revoked grant, a password set, a deleted user or client, a client's secret changed) has
// committed, it wakes this instance's outbox dispatcher, so the messages leave at once rather
// than at its next poll.
type wakingStore struct {
	rescind.Store
	wake func()
}

func (s wakingStore) EndSessions(ctx context.Context, f rescind.SessionFilter, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, error) {
	revs, err := s.Store.EndSessions(ctx, f, rev, end)
	s.wake()
	return revs, err
}

func (s wakingStore) SetPassword(ctx context.Context, id, hash string, revokeGrants bool, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, int64, error) {
	revs, n, err := s.Store.SetPassword(ctx, id, hash, revokeGrants, rev, end)
	s.wake()
	return revs, n, err
}

func (s wakingStore) DeleteUser(ctx context.Context, id string, rev rescind.Revocation, end rescind.SessionEnd) ([]rescind.Revocation, int64, error) {
	revs, n, err := s.Store.DeleteUser(ctx, id, rev, end)
	s.wake()
	return revs, n, err
}

func (s wakingStore) ExpireSessions(ctx context.Context, now time.Time, limit int, end rescind.SessionEnd) (int, []rescind.Revocation, error) {
	n, revs, err := s.Store.ExpireSessions(ctx, now, limit, end)
	s.wake()
	return n, revs, err
}

func (s wakingStore) RevokeGrants(ctx context.Context, f rescind.GrantFilter, rev rescind.Revocation) ([]rescind.Revocation, int64, error) {
	revs, n, err := s.Store.RevokeGrants(ctx, f, rev)
	s.wake()
	return revs, n, err
}

func (s wakingStore) DeleteClient(ctx context.Context, id string, now time.Time, rev rescind.Revocation) ([]rescind.Revocation, error) {
	revs, err := s.Store.DeleteClient(ctx, id, now, rev)
	s.wake()
	return revs, err
}

func (s wakingStore) RotateClientSecret(ctx context.Context, id, hash string, previousUntil time.Time) (rescind.Client, error) {
	c, err := s.Store.RotateClientSecret(ctx, id, hash, previousUntil)
	s.wake()
	return c, err
}

// wakeOutbox wakes the outbox's dispatcher, once there is one (the committer is made before it).
func (m *Main) wakeOutbox() {
	if m.outbox != nil {
		m.outbox.Wake()
	}
}
