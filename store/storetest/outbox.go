package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/internal/sqlstore"
)

// InTx runs fn in a transaction of s, a store the Opener returned, as the backend's own methods
// run theirs (its locking, its Querier), and commits it if fn returns nil. The suite uses it to
// show that sqlstore.EnqueueOutbox, called in another change's transaction, commits and rolls
// back with that change.
type InTx func(s rescind.Store, fn func(tx sqlstore.Querier) error) error

// WithInTx gives the suite the backend's InTx. Without it the case that needs it is skipped.
func WithInTx(f InTx) Option {
	return func(o *options) { o.inTx = f }
}

// outboxTests are the cases of the durable outbox.
func outboxTests() []struct {
	name string
	run  func(t *testing.T, open func() rescind.Store, o options)
} {
	one := func(f func(*testing.T, rescind.Store)) func(*testing.T, func() rescind.Store, options) {
		return func(t *testing.T, open func() rescind.Store, _ options) { f(t, open()) }
	}
	return []struct {
		name string
		run  func(t *testing.T, open func() rescind.Store, o options)
	}{
		{"OutboxEnqueue", one(testOutboxEnqueue)},
		{"OutboxClaim", one(testOutboxClaim)},
		{"OutboxLeaseExpiry", one(testOutboxLeaseExpiry)},
		{"OutboxOnlyOwnerSettles", one(testOutboxOnlyOwner)},
		{"OutboxRetryOrder", one(testOutboxRetryOrder)},
		{"OutboxGiveUp", one(testOutboxGiveUp)},
		{"OutboxStatsAndPurge", one(testOutboxStatsAndPurge)},
		{"OutboxReleaseLeases", one(testOutboxRelease)},
		{"OutboxClaimExclusiveAcrossInstances", func(t *testing.T, open func() rescind.Store, _ options) {
			testOutboxExclusive(t, open)
		}},
		{"OutboxEnqueueInAnotherTransaction", func(t *testing.T, open func() rescind.Store, o options) {
			if o.inTx == nil {
				t.Skip("the backend gives no InTx (WithInTx)")
			}
			testOutboxInTx(t, open(), o.inTx)
		}},
	}
}

func outboxMsg(kind, key, payload string, created time.Time) rescind.OutboxMessage {
	return rescind.OutboxMessage{Kind: kind, Key: key, Payload: []byte(payload), CreatedAt: created, Deadline: created.Add(time.Hour)}
}

func mustEnqueue(t *testing.T, s rescind.Store, msgs ...rescind.OutboxMessage) []int64 {
	t.Helper()
	ids, err := s.Enqueue(context.Background(), msgs)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if len(ids) != len(msgs) {
		t.Fatalf("Enqueue returned %d ids for %d messages", len(ids), len(msgs))
	}
	return ids
}

func claim(t *testing.T, s rescind.Store, owner string, now time.Time, limit int, kinds ...string) []rescind.OutboxMessage {
	t.Helper()
	got, err := s.ClaimOutbox(context.Background(), rescind.OutboxClaim{Owner: owner, Kinds: kinds, Now: now,
		LeaseUntil: now.Add(time.Minute), Limit: limit})
	if err != nil {
		t.Fatalf("ClaimOutbox(%s at %v): %v", owner, now, err)
	}
	return got
}

func ids(msgs []rescind.OutboxMessage) []int64 {
	out := []int64{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func getOutbox(t *testing.T, s rescind.Store, id int64) rescind.OutboxMessage {
	t.Helper()
	m, err := s.GetOutbox(context.Background(), id)
	if err != nil {
		t.Fatalf("GetOutbox(%d): %v", id, err)
	}
	return m
}

func pending(t *testing.T, s rescind.Store) int64 {
	t.Helper()
	st, err := s.OutboxStats(context.Background())
	if err != nil {
		t.Fatalf("OutboxStats: %v", err)
	}
	var n int64
	for _, k := range st {
		n += k.Pending
	}
	return n
}

// testOutboxEnqueue: every field is kept to the nanosecond, bytes exactly (zero bytes and an
// empty payload included); IDs grow; a zero NextAttemptAt means CreatedAt; a batch with one
// invalid message writes nothing.
func testOutboxEnqueue(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	later := outboxMsg("logout", "client-1", "", base)
	later.Payload = []byte{0, 1, 2, 0xff, 0}
	later.NextAttemptAt = base.Add(3 * time.Second)
	later.Deadline = base.Add(24 * time.Hour)
	empty := outboxMsg("ssf", "stream-9", "", base.Add(time.Nanosecond))
	empty.Payload = nil
	got := mustEnqueue(t, s, later, empty)
	if got[0] <= 0 || got[1] <= got[0] {
		t.Fatalf("Enqueue ids %v; want positive and increasing", got)
	}
	m := getOutbox(t, s, got[0])
	if m.ID != got[0] || m.Kind != "logout" || m.Key != "client-1" || !bytes.Equal(m.Payload, later.Payload) ||
		!m.CreatedAt.Equal(base) || !m.NextAttemptAt.Equal(later.NextAttemptAt) || !m.Deadline.Equal(later.Deadline) ||
		m.Attempts != 0 || m.LastError != "" || m.State != rescind.OutboxPending || !m.FinishedAt.IsZero() ||
		m.LeaseOwner != "" || !m.LeaseExpiresAt.IsZero() {
		t.Fatalf("GetOutbox = %+v; want what was enqueued, pending, unleased", m)
	}
	m = getOutbox(t, s, got[1])
	if len(m.Payload) != 0 || m.Payload == nil || !m.NextAttemptAt.Equal(empty.CreatedAt) {
		t.Fatalf("an empty payload and no NextAttemptAt: %+v; want a non-nil empty payload, due at creation", m)
	}
	if _, err := s.GetOutbox(ctx, got[1]+100); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetOutbox(missing) err = %v, want ErrNotFound", err)
	}
	invalid := map[string]func(*rescind.OutboxMessage){
		"no kind":                  func(m *rescind.OutboxMessage) { m.Kind = "" },
		"no creation time":         func(m *rescind.OutboxMessage) { m.CreatedAt = time.Time{} },
		"no deadline":              func(m *rescind.OutboxMessage) { m.Deadline = time.Time{} },
		"deadline before creation": func(m *rescind.OutboxMessage) { m.Deadline = m.CreatedAt.Add(-time.Nanosecond) },
		"deadline in year 3000":    func(m *rescind.OutboxMessage) { m.Deadline = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC) },
	}
	for name, spoil := range invalid {
		bad := outboxMsg("logout", "c", "x", base)
		spoil(&bad)
		if _, err := s.Enqueue(ctx, []rescind.OutboxMessage{outboxMsg("logout", "c", "valid", base), bad}); err == nil {
			t.Fatalf("Enqueue with a message with %s: no error", name)
		}
		if n := pending(t, s); n != 2 {
			t.Fatalf("Enqueue refused a batch with a message with %s, yet %d messages are pending; want the 2 from before", name, n)
		}
	}
	if got, err := s.Enqueue(ctx, nil); err != nil || len(got) != 0 {
		t.Fatalf("Enqueue(nil) = %v, %v", got, err)
	}
}

// testOutboxClaim: a claim takes due messages of its kinds only, earliest due first, up to its
// limit, and leases them; a leased message is not claimed again while the lease holds.
func testOutboxClaim(t *testing.T, s rescind.Store) {
	a := outboxMsg("logout", "c1", "a", base)
	a.NextAttemptAt = base.Add(2 * time.Second) // due after b although enqueued first
	b := outboxMsg("logout", "c2", "b", base)
	c := outboxMsg("ssf", "s1", "c", base)
	future := outboxMsg("logout", "c3", "future", base)
	future.NextAttemptAt = base.Add(time.Hour)
	id := mustEnqueue(t, s, a, b, c, future)

	if got := claim(t, s, "x/1", base.Add(time.Minute), 10); len(got) != 0 {
		t.Fatalf("a claim of no kinds took %v", ids(got))
	}
	if got := claim(t, s, "x/1", base.Add(time.Minute), 0, "logout"); len(got) != 0 {
		t.Fatalf("a claim with limit 0 took %v", ids(got))
	}
	if got := claim(t, s, "x/1", base.Add(-time.Second), 10, "logout", "ssf"); len(got) != 0 {
		t.Fatalf("a claim before anything is due took %v", ids(got))
	}
	now := base.Add(time.Minute)
	got := claim(t, s, "x/1", now, 1, "logout")
	if !slices.Equal(ids(got), []int64{id[1]}) {
		t.Fatalf("claim of one logout took %v; want b (%d), the earliest due", ids(got), id[1])
	}
	if m := got[0]; m.LeaseOwner != "x/1" || !m.LeaseExpiresAt.Equal(now.Add(time.Minute)) || string(m.Payload) != "b" ||
		m.Kind != "logout" || m.Key != "c2" || m.State != rescind.OutboxPending {
		t.Fatalf("claimed message %+v; want b leased to x/1 until %v", m, now.Add(time.Minute))
	}
	if m := getOutbox(t, s, id[1]); m.LeaseOwner != "x/1" || !m.LeaseExpiresAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("stored lease %q until %v; want x/1 until %v", m.LeaseOwner, m.LeaseExpiresAt, now.Add(time.Minute))
	}
	got = claim(t, s, "y/1", now, 10, "logout")
	if !slices.Equal(ids(got), []int64{id[0]}) {
		t.Fatalf("second claim of logouts took %v; want only a (%d): b is leased, future is not due, c is ssf", ids(got), id[0])
	}
	got = claim(t, s, "y/2", now, 10, "logout", "ssf")
	if !slices.Equal(ids(got), []int64{id[2]}) {
		t.Fatalf("claim of logout and ssf took %v; want only c (%d)", ids(got), id[2])
	}
	if got := claim(t, s, "z/1", now.Add(59*time.Second), 10, "logout", "ssf"); len(got) != 0 {
		t.Fatalf("a claim while every due message is leased took %v", ids(got))
	}
	if _, err := s.ClaimOutbox(context.Background(), rescind.OutboxClaim{Kinds: []string{"logout"}, Now: now.Add(time.Hour),
		LeaseUntil: now.Add(2 * time.Hour), Limit: 1}); err == nil {
		t.Fatal("a claim without an owner: no error")
	}
}

// testOutboxLeaseExpiry: a lease that lapses (its holder crashed) makes the message claimable
// again, by anyone; the lapse is exactly at LeaseExpiresAt.
func testOutboxLeaseExpiry(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	id := mustEnqueue(t, s, outboxMsg("logout", "c1", "m", base))[0]
	claim(t, s, "a/1", base, 10, "logout") // leased until base+1m
	if got := claim(t, s, "b/1", base.Add(time.Minute-time.Nanosecond), 10, "logout"); len(got) != 0 {
		t.Fatalf("claimed %v a nanosecond before the lease lapses", ids(got))
	}
	got := claim(t, s, "b/1", base.Add(time.Minute), 10, "logout")
	if !slices.Equal(ids(got), []int64{id}) || got[0].LeaseOwner != "b/1" {
		t.Fatalf("claim when the lease lapsed took %+v; want the message, leased to b/1", got)
	}
	if err := s.CompleteOutbox(ctx, id, "b/1", base.Add(time.Minute)); err != nil {
		t.Fatalf("CompleteOutbox by the new owner: %v", err)
	}
	if m := getOutbox(t, s, id); m.State != rescind.OutboxDelivered || len(m.Payload) != 0 || !m.FinishedAt.Equal(base.Add(time.Minute)) ||
		m.LeaseOwner != "" || !m.LeaseExpiresAt.IsZero() {
		t.Fatalf("after CompleteOutbox: %+v; want delivered at %v, payload dropped, no lease", m, base.Add(time.Minute))
	}
	if got := claim(t, s, "c/1", base.Add(time.Hour), 10, "logout"); len(got) != 0 {
		t.Fatalf("a delivered message was claimed again: %v", ids(got))
	}

	// A lapsed lease that no one claimed since is still its owner's to complete.
	id = mustEnqueue(t, s, outboxMsg("logout", "c1", "n", base))[0]
	claim(t, s, "a/2", base, 10, "logout")
	if err := s.CompleteOutbox(ctx, id, "a/2", base.Add(2*time.Minute)); err != nil {
		t.Fatalf("CompleteOutbox after the lease lapsed, unclaimed since: %v", err)
	}
}

// testOutboxOnlyOwnerSettles: a worker whose lease lapsed and was taken over can neither
// complete, retry, defer nor give up the message; each attempt changes nothing.
func testOutboxOnlyOwner(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	id := mustEnqueue(t, s, outboxMsg("logout", "c1", "m", base))[0]
	claim(t, s, "late/1", base, 10, "logout")
	claim(t, s, "new/1", base.Add(time.Minute), 10, "logout")
	before := getOutbox(t, s, id)
	late := base.Add(90 * time.Second)
	for name, op := range map[string]func(owner string) error{
		"CompleteOutbox": func(o string) error { return s.CompleteOutbox(ctx, id, o, late) },
		"RetryOutbox":    func(o string) error { return s.RetryOutbox(ctx, id, o, late, "late failure") },
		"DeferOutbox":    func(o string) error { return s.DeferOutbox(ctx, id, o, late) },
		"GiveUpOutbox":   func(o string) error { return s.GiveUpOutbox(ctx, id, o, late, "late failure") },
	} {
		for _, owner := range []string{"late/1", "", "new/2"} {
			if err := op(owner); !errors.Is(err, rescind.ErrLeaseLost) {
				t.Fatalf("%s by %q while new/1 holds the lease: err = %v, want ErrLeaseLost", name, owner, err)
			}
		}
		if m := getOutbox(t, s, id); fmt.Sprint(m) != fmt.Sprint(before) {
			t.Fatalf("%s by a former owner changed the message:\n%+v\nwas\n%+v", name, m, before)
		}
	}
	if audit, _ := s.ListAudit(ctx, 10); len(audit) != 0 {
		t.Fatalf("a refused GiveUpOutbox wrote audit entries: %+v", audit)
	}
	if err := s.RetryOutbox(ctx, id, "new/1", base.Add(2*time.Minute), "503"); err != nil {
		t.Fatalf("RetryOutbox by the owner: %v", err)
	}
	// Retried, it is unleased: its former owner still cannot touch it.
	if err := s.CompleteOutbox(ctx, id, "new/1", late); !errors.Is(err, rescind.ErrLeaseLost) {
		t.Fatalf("CompleteOutbox by the owner of a released lease: err = %v, want ErrLeaseLost", err)
	}
	if err := s.CompleteOutbox(ctx, id+100, "new/1", late); !errors.Is(err, rescind.ErrLeaseLost) {
		t.Fatalf("CompleteOutbox of a missing message: err = %v, want ErrLeaseLost", err)
	}
}

// testOutboxRetryOrder: a retry counts an attempt, records the error, releases the lease and
// makes the message due at the time given, where it takes its place among the others; a
// deferral does the same without counting an attempt or touching the error.
func testOutboxRetryOrder(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	id := mustEnqueue(t, s, outboxMsg("k", "1", "m1", base), outboxMsg("k", "2", "m2", base), outboxMsg("k", "3", "m3", base))
	first := claim(t, s, "w/1", base, 1, "k")
	if !slices.Equal(ids(first), id[:1]) {
		t.Fatalf("first claim %v; want m1 (%d)", ids(first), id[0])
	}
	if err := s.RetryOutbox(ctx, id[0], "w/1", base.Add(10*time.Second), "connection refused"); err != nil {
		t.Fatal(err)
	}
	m := getOutbox(t, s, id[0])
	if m.Attempts != 1 || m.LastError != "connection refused" || !m.NextAttemptAt.Equal(base.Add(10*time.Second)) ||
		m.LeaseOwner != "" || !m.LeaseExpiresAt.IsZero() || m.State != rescind.OutboxPending {
		t.Fatalf("after RetryOutbox: %+v; want 1 attempt, the error, due at +10s, unleased, pending", m)
	}
	if got := claim(t, s, "w/2", base.Add(time.Second), 10, "k"); !slices.Equal(ids(got), id[1:]) {
		t.Fatalf("claim at +1s took %v; want m2, m3 (m1 is due at +10s)", ids(got))
	}
	if err := s.RetryOutbox(ctx, id[1], "w/2", base.Add(5*time.Second), "timeout"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeferOutbox(ctx, id[2], "w/2", base.Add(7*time.Second)); err != nil {
		t.Fatal(err)
	}
	m = getOutbox(t, s, id[2])
	if m.Attempts != 0 || m.LastError != "" || !m.NextAttemptAt.Equal(base.Add(7*time.Second)) || m.LeaseOwner != "" {
		t.Fatalf("after DeferOutbox: %+v; want no attempt counted, no error, due at +7s, unleased", m)
	}
	got := claim(t, s, "w/3", base.Add(time.Minute), 10, "k")
	if !slices.Equal(ids(got), []int64{id[1], id[2], id[0]}) {
		t.Fatalf("claim at +1m took %v; want m2 (+5s), m3 (+7s), m1 (+10s)", ids(got))
	}
	if got[2].Attempts != 1 || got[2].LastError != "connection refused" {
		t.Fatalf("claimed again, m1 = %+v; want its attempt and error", got[2])
	}
	// A second retry counts a second attempt and replaces the error.
	if err := s.RetryOutbox(ctx, id[0], "w/3", base.Add(2*time.Minute), "503 Service Unavailable"); err != nil {
		t.Fatal(err)
	}
	if m := getOutbox(t, s, id[0]); m.Attempts != 2 || m.LastError != "503 Service Unavailable" {
		t.Fatalf("after a second retry: %d attempts, %q", m.Attempts, m.LastError)
	}
}

// testOutboxGiveUp: giving up marks the message failed with its error, drops the payload,
// writes an audit entry in the same transaction, and the message is never claimed again.
func testOutboxGiveUp(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	id := mustEnqueue(t, s, outboxMsg("logout", "client-7", "token", base))[0]
	claim(t, s, "w/1", base, 1, "logout")
	if err := s.RetryOutbox(ctx, id, "w/1", base.Add(time.Second), "503"); err != nil {
		t.Fatal(err)
	}
	claim(t, s, "w/2", base.Add(time.Hour), 1, "logout")
	at := base.Add(time.Hour + time.Second)
	if err := s.GiveUpOutbox(ctx, id, "w/2", at, "400 Bad Request"); err != nil {
		t.Fatal(err)
	}
	m := getOutbox(t, s, id)
	if m.State != rescind.OutboxFailed || m.Attempts != 2 || m.LastError != "400 Bad Request" || !m.FinishedAt.Equal(at) ||
		len(m.Payload) != 0 || m.LeaseOwner != "" {
		t.Fatalf("after GiveUpOutbox: %+v; want failed at %v after 2 attempts, with its error, no payload, no lease", m, at)
	}
	audit, err := s.ListAudit(ctx, 10)
	if err != nil || len(audit) != 1 {
		t.Fatalf("audit after GiveUpOutbox: %+v, %v; want one entry", audit, err)
	}
	e := audit[0]
	if e.Actor != "outbox" || e.Action != "outbox_give_up" || !e.At.Equal(at) || e.Reason != "400 Bad Request" ||
		!strings.Contains(e.Target, fmt.Sprint(id)) || !strings.Contains(e.Target, "logout") || !strings.Contains(e.Target, "client-7") {
		t.Fatalf("audit entry %+v; want outbox/outbox_give_up at %v naming message %d, its kind and key, with the error", e, at, id)
	}
	if got := claim(t, s, "w/3", base.Add(48*time.Hour), 10, "logout"); len(got) != 0 {
		t.Fatalf("a failed message was claimed again: %v", ids(got))
	}
	if err := s.GiveUpOutbox(ctx, id, "w/2", at, "again"); !errors.Is(err, rescind.ErrLeaseLost) {
		t.Fatalf("giving up a failed message: err = %v, want ErrLeaseLost", err)
	}
	if audit, _ := s.ListAudit(ctx, 10); len(audit) != 1 {
		t.Fatalf("a refused GiveUpOutbox wrote an audit entry: %+v", audit)
	}
}

// testOutboxStatsAndPurge: stats count pending messages per kind (leased ones too) with the
// oldest creation time; purging deletes finished messages before the cut-off, never pending.
func testOutboxStatsAndPurge(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if st, err := s.OutboxStats(ctx); err != nil || len(st) != 0 {
		t.Fatalf("OutboxStats of an empty outbox = %+v, %v", st, err)
	}
	id := mustEnqueue(t, s, outboxMsg("ssf", "s", "1", base.Add(time.Second)), outboxMsg("logout", "c", "2", base.Add(2*time.Second)),
		outboxMsg("logout", "c", "3", base.Add(3*time.Second)), outboxMsg("logout", "c", "4", base))
	// Message 4 (the oldest logout) is delivered; 2 is leased; 3 is pending.
	if got := claim(t, s, "w/1", base.Add(time.Hour), 2, "logout"); !slices.Equal(ids(got), []int64{id[3], id[1]}) {
		t.Fatalf("claimed %v; want %v", ids(got), []int64{id[3], id[1]})
	}
	if err := s.CompleteOutbox(ctx, id[3], "w/1", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st, err := s.OutboxStats(ctx)
	want := []rescind.OutboxStat{{Kind: "logout", Pending: 2, OldestCreatedAt: base.Add(2 * time.Second)},
		{Kind: "ssf", Pending: 1, OldestCreatedAt: base.Add(time.Second)}}
	if err != nil || len(st) != 2 || st[0].Kind != want[0].Kind || st[0].Pending != want[0].Pending ||
		!st[0].OldestCreatedAt.Equal(want[0].OldestCreatedAt) || st[1].Kind != want[1].Kind || st[1].Pending != want[1].Pending ||
		!st[1].OldestCreatedAt.Equal(want[1].OldestCreatedAt) {
		t.Fatalf("OutboxStats = %+v, %v; want %+v", st, err, want)
	}
	// Purging at the finishing moment keeps it; just after deletes it, and only it.
	if n, err := s.DeleteFinishedOutbox(ctx, base.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("DeleteFinishedOutbox at the finish = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteFinishedOutbox(ctx, base.Add(100*time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteFinishedOutbox after = %d, %v; want 1 (the delivered message)", n, err)
	}
	if _, err := s.GetOutbox(ctx, id[3]); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the purged message: err = %v, want ErrNotFound", err)
	}
	for _, i := range id[:3] {
		if m := getOutbox(t, s, i); m.State != rescind.OutboxPending {
			t.Fatalf("message %d after the purge: %+v; want pending", i, m)
		}
	}
	// IDs are never assigned again, even after the newest row is deleted.
	newest := mustEnqueue(t, s, outboxMsg("x", "", "", base))[0]
	claim(t, s, "w/2", base.Add(time.Hour), 1, "x")
	if err := s.CompleteOutbox(ctx, newest, "w/2", base); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.DeleteFinishedOutbox(ctx, base.Add(time.Second)); n != 1 {
		t.Fatalf("purging the newest message deleted %d", n)
	}
	if next := mustEnqueue(t, s, outboxMsg("x", "", "", base))[0]; next <= newest {
		t.Fatalf("after deleting message %d, the next one got id %d: an id was assigned again", newest, next)
	}
}

// testOutboxExclusive: workers on two instances claim concurrently, in small batches, from one
// outbox; every message is claimed exactly once.
func testOutboxExclusive(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	a, b := open(), open()
	const n = 120
	var msgs []rescind.OutboxMessage
	for i := range n {
		msgs = append(msgs, outboxMsg("k", fmt.Sprint(i), fmt.Sprint(i), base))
	}
	mustEnqueue(t, a, msgs...)
	var mu sync.Mutex
	claimed := map[int64][]string{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		s := []rescind.Store{a, b}[w%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for seq := 0; ; seq++ {
				owner := fmt.Sprintf("w%d/%d", w, seq)
				got, err := s.ClaimOutbox(ctx, rescind.OutboxClaim{Owner: owner, Kinds: []string{"k"}, Now: base,
					LeaseUntil: base.Add(time.Hour), Limit: 3})
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, m := range got {
					claimed[m.ID] = append(claimed[m.ID], owner)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("ClaimOutbox: %v", err)
	}
	if len(claimed) != n {
		t.Fatalf("%d messages claimed of %d", len(claimed), n)
	}
	for id, owners := range claimed {
		if len(owners) != 1 {
			t.Fatalf("message %d claimed by %v; want exactly one claim", id, owners)
		}
		if m := getOutbox(t, b, id); m.LeaseOwner != owners[0] {
			t.Fatalf("message %d is leased to %q, but %q claimed it", id, m.LeaseOwner, owners[0])
		}
	}
}

// testOutboxInTx: messages enqueued with sqlstore.EnqueueOutbox inside another change's
// transaction commit with it, and vanish with it when it rolls back.
func testOutboxInTx(t *testing.T, s rescind.Store, inTx InTx) {
	ctx := context.Background()
	errChange := errors.New("the change fails after enqueuing")
	var rolledBack []int64
	err := inTx(s, func(tx sqlstore.Querier) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
			"u-rb", "rolled-back", "h", sqlstore.Nanos(base)); err != nil {
			return err
		}
		var err error
		if rolledBack, err = sqlstore.EnqueueOutbox(ctx, tx, outboxMsg("logout", "c", "rolled back", base)); err != nil {
			return err
		}
		return errChange
	})
	if !errors.Is(err, errChange) {
		t.Fatalf("InTx = %v; want the change's error", err)
	}
	if _, err := s.GetUser(ctx, "u-rb"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the rolled-back change's user: err = %v, want ErrNotFound", err)
	}
	if len(rolledBack) != 1 {
		t.Fatalf("EnqueueOutbox returned %v", rolledBack)
	}
	if _, err := s.GetOutbox(ctx, rolledBack[0]); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the message of a rolled-back change: err = %v, want ErrNotFound", err)
	}
	if got := claim(t, s, "w/1", base.Add(time.Hour), 10, "logout"); len(got) != 0 {
		t.Fatalf("a message of a rolled-back change was claimed: %+v", got)
	}

	var committed []int64
	err = inTx(s, func(tx sqlstore.Querier) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)`,
			"u-ok", "committed", "h", sqlstore.Nanos(base)); err != nil {
			return err
		}
		var err error
		committed, err = sqlstore.EnqueueOutbox(ctx, tx, outboxMsg("logout", "c", "one", base), outboxMsg("logout", "c", "two", base))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetUser(ctx, "u-ok"); err != nil {
		t.Fatalf("the committed change's user: %v", err)
	}
	got := claim(t, s, "w/2", base.Add(time.Hour), 10, "logout")
	if !slices.Equal(ids(got), committed) || string(got[0].Payload) != "one" || string(got[1].Payload) != "two" {
		t.Fatalf("claimed %+v; want the two committed messages %v", got, committed)
	}
}

// testRowsFailureClaim: a claim whose result fails after one row leases nothing (a lease the
// caller never learnt of would hold the message back until it lapsed) and returns the error.
func testRowsFailureClaim(t *testing.T, s rescind.Store, fail RowsFault) {
	id := mustEnqueue(t, s, outboxMsg("k", "1", "a", base), outboxMsg("k", "2", "b", base), outboxMsg("k", "3", "c", base))
	state := func() string {
		var b strings.Builder
		for _, i := range id {
			m := getOutbox(t, s, i)
			fmt.Fprintf(&b, "%d %s %q %v\n", m.ID, m.State, m.LeaseOwner, m.LeaseExpiresAt)
		}
		return b.String()
	}
	var got []rescind.OutboxMessage
	sweep(t, s, fail, state, func() (err error) {
		got, err = s.ClaimOutbox(context.Background(), rescind.OutboxClaim{Owner: "w/1", Kinds: []string{"k"}, Now: base,
			LeaseUntil: base.Add(time.Minute), Limit: 10})
		return err
	})
	if !slices.Equal(ids(got), id) {
		t.Fatalf("the claim without a failure took %v; want %v", ids(got), id)
	}
}

// testOutboxRelease: releasing every lease (a lone instance's restart) makes leased messages
// claimable at once, counts no attempt, leaves finished and unleased ones alone, and takes the
// message from its former owner.
func testOutboxRelease(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	id := mustEnqueue(t, s, outboxMsg("k", "1", "leased", base), outboxMsg("k", "2", "delivered", base), outboxMsg("k", "3", "free", base))
	claim(t, s, "old/1", base, 2, "k")
	if err := s.CompleteOutbox(ctx, id[1], "old/1", base); err != nil {
		t.Fatal(err)
	}
	n, err := s.ReleaseOutboxLeases(ctx)
	if err != nil || n != 1 {
		t.Fatalf("ReleaseOutboxLeases = %d, %v; want 1 (the one leased message)", n, err)
	}
	m := getOutbox(t, s, id[0])
	if m.LeaseOwner != "" || !m.LeaseExpiresAt.IsZero() || m.Attempts != 0 || m.State != rescind.OutboxPending {
		t.Fatalf("released message: %+v; want pending, unleased, no attempt counted", m)
	}
	if m := getOutbox(t, s, id[1]); m.State != rescind.OutboxDelivered {
		t.Fatalf("a delivered message after the release: %+v", m)
	}
	// Claimable at once, long before the old lease would have lapsed.
	if got := claim(t, s, "new/1", base.Add(time.Second), 10, "k"); !slices.Equal(ids(got), []int64{id[0], id[2]}) {
		t.Fatalf("claim after the release took %v; want %v", ids(got), []int64{id[0], id[2]})
	}
	if err := s.CompleteOutbox(ctx, id[0], "old/1", base); !errors.Is(err, rescind.ErrLeaseLost) {
		t.Fatalf("CompleteOutbox by the owner before the release: err = %v, want ErrLeaseLost", err)
	}
}
