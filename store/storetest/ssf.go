package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/internal/sqlstore"
)

// ssfTests are the cases of Shared Signals streams, subjects, events and signals.
func ssfTests() []struct {
	name string
	run  func(t *testing.T, open func() rescind.Store)
} {
	one := func(f func(*testing.T, rescind.Store)) func(*testing.T, func() rescind.Store) {
		return func(t *testing.T, open func() rescind.Store) { f(t, open()) }
	}
	return []struct {
		name string
		run  func(t *testing.T, open func() rescind.Store)
	}{
		{"SSFStreams", one(testSSFStreams)},
		{"SSFSubjects", one(testSSFSubjects)},
		{"SSFEvents", one(testSSFEvents)},
		{"SSFStatusHoldsAndDrops", one(testSSFStatus)},
		{"SSFVerificationInterval", one(testSSFVerification)},
		{"SSFMethodSwitchStrandsNothing", one(testSSFMethodSwitch)},
		{"SSFLimitsHoldUnderConcurrency", one(testSSFLimitsConcurrent)},
		{"SSFSignalsInTheChangesTransaction", one(testSSFSignals)},
		{"SSFStreamChangesSerialized", one(testSSFChangesSerialized)},
	}
}

// setSSFStream writes st whole over the stored stream st.ID, through UpdateSSFStream.
func setSSFStream(ctx context.Context, s rescind.Store, st rescind.SSFStream) error {
	_, err := s.UpdateSSFStream(ctx, st.ID, func(x *rescind.SSFStream) error {
		*x = st
		return nil
	})
	return err
}

func ssfStream(id, client, method string) rescind.SSFStream {
	return rescind.SSFStream{ID: id, ClientID: client, Method: method, Status: rescind.SSFEnabled,
		EventsDelivered: []string{"urn:e1", "urn:e2"}, CreatedAt: base, UpdatedAt: base}
}

func testSSFStreams(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	a := ssfStream("st1", "r1", rescind.SSFPush)
	a.EndpointURL, a.AuthHeader, a.Description, a.EventsRequested = "https://rp.example/events", []byte("sealed"), "mine", []string{"urn:e1", "urn:x"}
	if err := s.CreateSSFStream(ctx, a, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSSFStream(ctx, ssfStream("st1", "r2", rescind.SSFPoll), 2); !errors.Is(err, rescind.ErrAlreadyExists) {
		t.Fatalf("same id: %v; want ErrAlreadyExists", err)
	}
	b := ssfStream("st2", "r1", rescind.SSFPoll)
	b.CreatedAt = base.Add(time.Second)
	if err := s.CreateSSFStream(ctx, b, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSSFStream(ctx, ssfStream("st3", "r1", rescind.SSFPoll), 2); !errors.Is(err, rescind.ErrLimit) {
		t.Fatalf("third stream of r1 with a limit of 2: %v; want ErrLimit", err)
	}
	if err := s.CreateSSFStream(ctx, ssfStream("st3", "r2", rescind.SSFPoll), 2); err != nil {
		t.Fatalf("another receiver's first stream: %v", err)
	}
	got, err := s.GetSSFStream(ctx, "st1")
	if err != nil || got.ClientID != "r1" || got.Method != rescind.SSFPush || got.EndpointURL != a.EndpointURL ||
		string(got.AuthHeader) != "sealed" || got.Description != "mine" || !slices.Equal(got.EventsRequested, a.EventsRequested) ||
		!slices.Equal(got.EventsDelivered, a.EventsDelivered) || got.Status != rescind.SSFEnabled || !got.CreatedAt.Equal(base) {
		t.Fatalf("GetSSFStream = %+v, %v; want %+v", got, err, a)
	}
	if got, _ := s.GetSSFStream(ctx, "st2"); got.EventsRequested != nil || got.AuthHeader != nil {
		t.Fatalf("a stream that requested nothing: requested %v, header %v; want nil, nil", got.EventsRequested, got.AuthHeader)
	}
	if _, err := s.GetSSFStream(ctx, "nope"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetSSFStream(unknown): %v", err)
	}
	ids := func(list []rescind.SSFStream) []string {
		var out []string
		for _, x := range list {
			out = append(out, x.ID)
		}
		return out
	}
	if l, err := s.ListSSFStreams(ctx, "r1"); err != nil || !slices.Equal(ids(l), []string{"st1", "st2"}) {
		t.Fatalf("ListSSFStreams(r1) = %v, %v", ids(l), err)
	}
	if l, err := s.ListSSFStreams(ctx, ""); err != nil || len(l) != 3 {
		t.Fatalf("ListSSFStreams(all) = %v, %v", ids(l), err)
	}
	upd := got
	upd.Description, upd.AllSubjects, upd.ClientID, upd.UpdatedAt = "changed", true, "thief", base.Add(time.Hour)
	if err := setSSFStream(ctx, s, upd); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetSSFStream(ctx, "st1"); got.Description != "changed" || !got.AllSubjects || got.ClientID != "r1" ||
		!got.UpdatedAt.Equal(base.Add(time.Hour)) || !got.CreatedAt.Equal(base) {
		t.Fatalf("after update: %+v; want the new description and all subjects, the owner kept", got)
	}
	// The change is made to the stream as stored, and what was written is returned.
	written, err := s.UpdateSSFStream(ctx, "st1", func(x *rescind.SSFStream) error {
		if x.Description != "changed" || x.EndpointURL != a.EndpointURL || string(x.AuthHeader) != "sealed" {
			t.Errorf("change called with %+v; want the stored stream", *x)
		}
		x.Status, x.StatusReason, x.ID, x.UpdatedAt = rescind.SSFPaused, "why", "st2", base.Add(2*time.Hour)
		return nil
	})
	if err != nil || written.ID != "st1" || written.ClientID != "r1" || written.Status != rescind.SSFPaused ||
		written.Description != "changed" || written.EndpointURL != a.EndpointURL {
		t.Fatalf("UpdateSSFStream = %+v, %v; want st1 paused, the rest kept", written, err)
	}
	if got, _ := s.GetSSFStream(ctx, "st1"); got.Status != rescind.SSFPaused || got.StatusReason != "why" ||
		got.Description != "changed" || string(got.AuthHeader) != "sealed" || !got.UpdatedAt.Equal(base.Add(2*time.Hour)) {
		t.Fatalf("after a status change: %+v; want paused, the configuration kept", got)
	}
	if got, _ := s.GetSSFStream(ctx, "st2"); got.Status != rescind.SSFEnabled {
		t.Fatalf("a change that set another ID changed that stream: %+v", got)
	}
	// A change that fails writes nothing, and its error is returned.
	refused := errors.New("refused")
	if _, err := s.UpdateSSFStream(ctx, "st1", func(x *rescind.SSFStream) error {
		x.Description, x.Status = "half-made", rescind.SSFDisabled
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("UpdateSSFStream with a failing change: %v; want its error", err)
	}
	if got, _ := s.GetSSFStream(ctx, "st1"); got.Description != "changed" || got.Status != rescind.SSFPaused {
		t.Fatalf("after a failed change: %+v; want it unwritten", got)
	}
	called := false
	if _, err := s.UpdateSSFStream(ctx, "nope", func(*rescind.SSFStream) error { called = true; return nil }); !errors.Is(err, rescind.ErrNotFound) || called {
		t.Fatalf("UpdateSSFStream(unknown): %v, change called %v; want ErrNotFound, not called", err, called)
	}
	if err := s.DeleteSSFStream(ctx, "st1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSSFStream(ctx, "st1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("deleting again: %v", err)
	}
	if err := s.CreateSSFStream(ctx, ssfStream("st4", "r1", rescind.SSFPoll), 2); err != nil {
		t.Fatalf("a stream in place of a deleted one: %v", err)
	}
}

func testSSFSubjects(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	for _, id := range []string{"st1", "st2"} {
		if err := s.CreateSSFStream(ctx, ssfStream(id, "r1", rescind.SSFPoll), 0); err != nil {
			t.Fatal(err)
		}
	}
	sub := func(stream, id string, keys ...string) rescind.SSFSubject {
		return rescind.SSFSubject{StreamID: stream, ID: id, Subject: []byte(`{"id":"` + id + `"}`), Keys: keys, AddedAt: base}
	}
	if err := s.AddSSFSubject(ctx, sub("st1", "a", "k1", "k2"), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSSFSubject(ctx, sub("st1", "a", "k1", "k2"), 2); err != nil {
		t.Fatalf("adding again: %v", err)
	}
	if err := s.AddSSFSubject(ctx, sub("st1", "b", "k3"), 2); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSSFSubject(ctx, sub("st1", "c", "k4"), 2); !errors.Is(err, rescind.ErrLimit) {
		t.Fatalf("a third subject with a limit of 2: %v; want ErrLimit", err)
	}
	if err := s.AddSSFSubject(ctx, sub("st1", "a", "k1"), 2); err != nil {
		t.Fatalf("a subject already there, at the limit: %v", err)
	}
	if err := s.AddSSFSubject(ctx, sub("nope", "a", "k1"), 2); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("a subject of an unknown stream: %v", err)
	}
	if err := s.AddSSFSubject(ctx, sub("st2", "a", "k2"), 2); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CountSSFSubjects(ctx, "st1"); err != nil || n != 2 {
		t.Fatalf("CountSSFSubjects = %d, %v; want 2 (a subject with two keys counts once)", n, err)
	}
	found := func(keys ...string) []string {
		t.Helper()
		list, err := s.SSFSubjectsMatching(ctx, keys)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, x := range list {
			out = append(out, x.StreamID+"/"+x.ID)
		}
		sort.Strings(out)
		return out
	}
	if got := found("k2"); !slices.Equal(got, []string{"st1/a", "st2/a"}) {
		t.Fatalf("matching k2 = %v", got)
	}
	if got := found("k1", "k2", "k3"); !slices.Equal(got, []string{"st1/a", "st1/b", "st2/a"}) {
		t.Fatalf("matching k1 k2 k3 = %v; want each subject once", got)
	}
	if got := found("k9"); len(got) != 0 {
		t.Fatalf("matching an unknown key = %v", got)
	}
	if ok, err := s.RemoveSSFSubject(ctx, "st1", "a"); err != nil || !ok {
		t.Fatalf("RemoveSSFSubject = %v, %v", ok, err)
	}
	if ok, _ := s.RemoveSSFSubject(ctx, "st1", "a"); ok {
		t.Fatal("removing again reported a subject")
	}
	if got := found("k1", "k2"); !slices.Equal(got, []string{"st2/a"}) {
		t.Fatalf("after removal, matching = %v", got)
	}
}

// ssfOutbox claims every due message of kind and returns them.
func ssfOutbox(t *testing.T, s rescind.Store, kind string, now time.Time) []rescind.OutboxMessage {
	t.Helper()
	msgs, err := s.ClaimOutbox(context.Background(), rescind.OutboxClaim{Owner: "test-" + now.String(), Kinds: []string{kind}, Now: now,
		LeaseUntil: now.Add(time.Second), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

func ssfEvent(stream, jti, source string, at time.Time) rescind.SSFEvent {
	return rescind.SSFEvent{StreamID: stream, JTI: jti, Source: source, Type: "urn:e1", Claims: []byte(`{"jti":"` + jti + `"}`), CreatedAt: at}
}

func testSSFEvents(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	for _, st := range []rescind.SSFStream{ssfStream("push", "r1", rescind.SSFPush), ssfStream("poll", "r1", rescind.SSFPoll)} {
		if err := s.CreateSSFStream(ctx, st, 0); err != nil {
			t.Fatal(err)
		}
	}
	evs := []rescind.SSFEvent{ssfEvent("push", "j1", "sig1", base), ssfEvent("poll", "j2", "sig1", base),
		ssfEvent("poll", "j3", "sig2", base.Add(time.Second)), ssfEvent("gone", "j4", "sig1", base)}
	if n, err := s.AppendSSFEvents(ctx, evs, time.Hour); err != nil || n != 3 {
		t.Fatalf("AppendSSFEvents = %d, %v; want 3 (the unknown stream's skipped)", n, err)
	}
	// Again, with new jtis (as a repeated fan-out makes): nothing is added.
	again := []rescind.SSFEvent{ssfEvent("push", "j5", "sig1", base), ssfEvent("poll", "j6", "sig1", base)}
	if n, err := s.AppendSSFEvents(ctx, again, time.Hour); err != nil || n != 0 {
		t.Fatalf("appending the same sources again = %d, %v; want 0", n, err)
	}
	pushes := ssfOutbox(t, s, rescind.OutboxSSFPush, base.Add(time.Minute))
	if len(pushes) != 1 || pushes[0].Key != "push" || !pushes[0].Deadline.Equal(base.Add(time.Hour)) {
		t.Fatalf("push messages = %+v; want one, for the push stream's event", pushes)
	}
	var p struct{ JTI string }
	if json.Unmarshal(pushes[0].Payload, &p); p.JTI != "j1" {
		t.Fatalf("push payload %s; want jti j1", pushes[0].Payload)
	}
	pending, err := s.PendingSSFEvents(ctx, "poll", 10)
	if err != nil || len(pending) != 2 || pending[0].JTI != "j2" || pending[1].JTI != "j3" || string(pending[0].Claims) != `{"jti":"j2"}` {
		t.Fatalf("PendingSSFEvents = %+v, %v; want j2 then j3", pending, err)
	}
	if l, _ := s.PendingSSFEvents(ctx, "poll", 1); len(l) != 1 {
		t.Fatalf("PendingSSFEvents with limit 1 = %d events", len(l))
	}
	if n, oldest, err := s.SSFBacklog(ctx); err != nil || n != 3 || !oldest.Equal(base) {
		t.Fatalf("SSFBacklog = %d, %v, %v; want 3, %v", n, oldest, err, base)
	}
	at := base.Add(time.Minute)
	n, err := s.AckSSFEvents(ctx, "poll", []string{"j2", "unknown", "j1"}, map[string]string{"j3": "jwtAud: wrong audience"}, "client:r1", at)
	if err != nil || n != 2 {
		t.Fatalf("AckSSFEvents = %d, %v; want 2 (another stream's j1 and an unknown jti ignored)", n, err)
	}
	if l, _ := s.PendingSSFEvents(ctx, "poll", 10); len(l) != 0 {
		t.Fatalf("after acknowledging: %d pending", len(l))
	}
	if l, _ := s.PendingSSFEvents(ctx, "push", 10); len(l) != 1 {
		t.Fatal("acknowledging on one stream acknowledged another's event")
	}
	ev, err := s.GetSSFEvent(ctx, "poll", "j3")
	if err != nil || ev.Error != "jwtAud: wrong audience" || !ev.AckedAt.Equal(at) {
		t.Fatalf("GetSSFEvent(j3) = %+v, %v; want the error recorded", ev, err)
	}
	audit, _ := s.ListAudit(ctx, 10)
	if len(audit) == 0 || audit[0].Action != "ssf_set_error" || audit[0].Actor != "client:r1" || audit[0].Reason != "jwtAud: wrong audience" {
		t.Fatalf("audit %+v; want the setErr on record", audit)
	}
	if n, _ := s.AckSSFEvents(ctx, "poll", []string{"j2"}, map[string]string{"j3": "again"}, "client:r1", at.Add(time.Minute)); n != 0 {
		t.Fatalf("acknowledging again = %d; want 0", n)
	}
	if _, err := s.GetSSFEvent(ctx, "poll", "nope"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetSSFEvent(unknown): %v", err)
	}
	// Purge: acknowledged before the first bound, pending before the second.
	if n, err := s.DeleteSSFEvents(ctx, at.Add(time.Second), base); err != nil || n != 2 {
		t.Fatalf("DeleteSSFEvents = %d, %v; want the 2 acknowledged", n, err)
	}
	if n, err := s.DeleteSSFEvents(ctx, at, base.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("DeleteSSFEvents of old pending = %d, %v; want 1", n, err)
	}
}

func testSSFStatus(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	st := ssfStream("push", "r1", rescind.SSFPush)
	if err := s.CreateSSFStream(ctx, st, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendSSFEvents(ctx, []rescind.SSFEvent{ssfEvent("push", "j1", "sig1", base)}, time.Hour); err != nil {
		t.Fatal(err)
	}
	// A push deferred while paused (as the deliverer does) comes due when the stream is enabled.
	msgs := ssfOutbox(t, s, rescind.OutboxSSFPush, base)
	if len(msgs) != 1 {
		t.Fatalf("%d push messages", len(msgs))
	}
	if err := s.DeferOutbox(ctx, msgs[0].ID, msgs[0].LeaseOwner, base.Add(10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	st.Status, st.UpdatedAt = rescind.SSFPaused, base.Add(time.Minute)
	if err := setSSFStream(ctx, s, st); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.AppendSSFEvents(ctx, []rescind.SSFEvent{ssfEvent("push", "j2", "sig2", base.Add(time.Minute))}, time.Hour); n != 1 {
		t.Fatal("a paused stream does not hold a new event")
	}
	st.Status, st.UpdatedAt = rescind.SSFEnabled, base.Add(2*time.Minute)
	if err := setSSFStream(ctx, s, st); err != nil {
		t.Fatal(err)
	}
	if msgs := ssfOutbox(t, s, rescind.OutboxSSFPush, base.Add(2*time.Minute)); len(msgs) != 2 {
		t.Fatalf("after enabling, %d pushes due; want both (the deferred one made due)", len(msgs))
	}
	// Disabling drops what the stream holds, and it takes nothing new.
	st.Status, st.UpdatedAt = rescind.SSFDisabled, base.Add(3*time.Minute)
	if err := setSSFStream(ctx, s, st); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.PendingSSFEvents(ctx, "push", 10); len(l) != 0 {
		t.Fatalf("a disabled stream holds %d events", len(l))
	}
	if n, _ := s.AppendSSFEvents(ctx, []rescind.SSFEvent{ssfEvent("push", "j3", "sig3", base.Add(4*time.Minute))}, time.Hour); n != 0 {
		t.Fatal("a disabled stream took an event")
	}
}

// testSSFMethodSwitch: a poll stream that becomes push gets a push, due at once, for each
// event it holds (not for those acknowledged), and one that goes back to poll drops the pushes
// not yet claimed (audit 19, finding 4: held events were never pushed).
func testSSFMethodSwitch(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	st := ssfStream("sw", "r1", rescind.SSFPoll)
	if err := s.CreateSSFStream(ctx, st, 0); err != nil {
		t.Fatal(err)
	}
	evs := []rescind.SSFEvent{ssfEvent("sw", "j1", "sig1", base), ssfEvent("sw", "j2", "sig2", base.Add(time.Second)),
		ssfEvent("sw", "j3", "sig3", base.Add(2*time.Second))}
	if _, err := s.AppendSSFEvents(ctx, evs, time.Hour); err != nil {
		t.Fatal(err)
	}
	if msgs := ssfOutbox(t, s, rescind.OutboxSSFPush, base.Add(time.Minute)); len(msgs) != 0 {
		t.Fatalf("a poll stream has %d pushes", len(msgs))
	}
	if _, err := s.AckSSFEvents(ctx, "sw", []string{"j2"}, nil, "client:r1", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	// Poll -> push.
	st.Method, st.EndpointURL, st.UpdatedAt = rescind.SSFPush, "https://rp.example/events", base.Add(2*time.Minute)
	if err := setSSFStream(ctx, s, st); err != nil {
		t.Fatal(err)
	}
	msgs := ssfOutbox(t, s, rescind.OutboxSSFPush, base.Add(2*time.Minute))
	var jtis []string
	for _, m := range msgs {
		var p struct{ JTI string }
		json.Unmarshal(m.Payload, &p)
		jtis = append(jtis, p.JTI)
		if m.Key != "sw" || m.Deadline.Before(base.Add(time.Hour)) {
			t.Fatalf("push %+v: want key sw and a deadline well ahead", m)
		}
	}
	sort.Strings(jtis)
	if !slices.Equal(jtis, []string{"j1", "j3"}) {
		t.Fatalf("after becoming push, pushes for %v; want j1 and j3 (j2 was acknowledged)", jtis)
	}
	// The deliverer pushes j1 (acknowledged, done) and defers j3 (the receiver is paused).
	for _, m := range msgs {
		var p struct{ JTI string }
		json.Unmarshal(m.Payload, &p)
		if p.JTI == "j1" {
			if _, err := s.AckSSFEvents(ctx, "sw", []string{"j1"}, nil, "", base.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := s.CompleteOutbox(ctx, m.ID, m.LeaseOwner, base.Add(2*time.Minute)); err != nil {
				t.Fatal(err)
			}
		} else if err := s.DeferOutbox(ctx, m.ID, m.LeaseOwner, base.Add(30*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// Push -> poll -> push: pushes not claimed are dropped on the way to poll, and every held
	// event gets its push again, due at once, on the way back.
	if _, err := s.AppendSSFEvents(ctx, []rescind.SSFEvent{ssfEvent("sw", "j4", "sig4", base.Add(3*time.Minute))}, time.Hour); err != nil {
		t.Fatal(err)
	}
	st.Method, st.EndpointURL, st.UpdatedAt = rescind.SSFPoll, "", base.Add(4*time.Minute)
	if err := setSSFStream(ctx, s, st); err != nil {
		t.Fatal(err)
	}
	if msgs := ssfOutbox(t, s, rescind.OutboxSSFPush, base.Add(time.Hour)); len(msgs) != 0 {
		t.Fatalf("a stream back to poll has %d unclaimed pushes", len(msgs))
	}
	st.Method, st.EndpointURL, st.UpdatedAt = rescind.SSFPush, "https://rp.example/events", base.Add(5*time.Minute)
	if err := setSSFStream(ctx, s, st); err != nil {
		t.Fatal(err)
	}
	if msgs := ssfOutbox(t, s, rescind.OutboxSSFPush, base.Add(5*time.Minute)); len(msgs) != 2 {
		t.Fatalf("push again: %d pushes due; want 2 (j3, j4)", len(msgs))
	}
	// A change that keeps the method enqueues nothing.
	st.Description, st.UpdatedAt = "renamed", base.Add(5*time.Minute)
	if err := setSSFStream(ctx, s, st); err != nil {
		t.Fatal(err)
	}
	if msgs := ssfOutbox(t, s, rescind.OutboxSSFPush, base.Add(5*time.Minute)); len(msgs) != 0 {
		t.Fatalf("a change keeping the method enqueued %d pushes", len(msgs))
	}
}

// testSSFLimitsConcurrent: concurrent creations and additions never exceed the limits (audit
// 19, finding 7: count then insert without a lock let 11 streams past a limit of 10 on
// PostgreSQL).
func testSSFLimitsConcurrent(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	const streams, limit, subjects, subLimit = 20, 10, 30, 5
	var wg sync.WaitGroup
	errs := make(chan error, streams+subjects)
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.CreateSSFStream(ctx, ssfStream(fmt.Sprint("c", i), "busy", rescind.SSFPoll), limit)
		}()
	}
	wg.Wait()
	limited := 0
	for range streams {
		switch err := <-errs; {
		case errors.Is(err, rescind.ErrLimit):
			limited++
		case err != nil:
			t.Fatalf("CreateSSFStream: %v", err)
		}
	}
	list, err := s.ListSSFStreams(ctx, "busy")
	if err != nil || len(list) != limit || limited != streams-limit {
		t.Fatalf("%d concurrent creations with limit %d: %d streams, %d refused, %v", streams, limit, len(list), limited, err)
	}
	for i := range subjects {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.AddSSFSubject(ctx, rescind.SSFSubject{StreamID: list[0].ID, ID: fmt.Sprint("sub", i), Subject: []byte(`{}`),
				Keys: []string{fmt.Sprint("k", i)}, AddedAt: base}, subLimit)
		}()
	}
	wg.Wait()
	for range subjects {
		if err := <-errs; err != nil && !errors.Is(err, rescind.ErrLimit) {
			t.Fatalf("AddSSFSubject: %v", err)
		}
	}
	if n, err := s.CountSSFSubjects(ctx, list[0].ID); err != nil || n != subLimit {
		t.Fatalf("%d concurrent additions with limit %d: %d subjects, %v", subjects, subLimit, n, err)
	}
}

// testSSFSubjectsGoWithTheirStream: subjects added while their stream, or its receiver's
// client, is being deleted never outlive it: each addition either lands before the deletion
// (and is deleted with the stream, subject and keys alike) or finds no stream (re-audit 3B #4:
// on PostgreSQL 30 subject rows and 27 key rows of deleted streams were left after 20 rounds).
// With inTx (the backend's), it also counts the stored lookup keys left of the deleted streams.
func testSSFSubjectsGoWithTheirStream(t *testing.T, s rescind.Store, inTx InTx) {
	ctx := context.Background()
	const rounds, adders = 12, 12
	for round := range rounds {
		byClient := round%3 == 2 // every third round deletes the receiver's client instead
		client, id := fmt.Sprint("rx", round), fmt.Sprint("gone", round)
		if byClient {
			if err := s.CreateClient(ctx, sampleClient(client)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateSSFStream(ctx, ssfStream(id, client, rescind.SSFPoll), 0); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, adders)
		var keys []string
		for i := range adders {
			key := fmt.Sprintf("r%dk%d", round, i)
			keys = append(keys, key)
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.AddSSFSubject(ctx, rescind.SSFSubject{StreamID: id, ID: fmt.Sprint("sub", i), Subject: []byte(`{}`),
					Keys: []string{key, key + "alias"}, AddedAt: base}, 0)
				if errors.Is(err, rescind.ErrNotFound) {
					err = nil // the stream went first
				}
				errs <- err
			}()
		}
		time.Sleep(time.Duration(round%4) * time.Millisecond)
		var err error
		if byClient {
			_, err = s.DeleteClient(ctx, client, base, rescind.Revocation{Kind: rescind.RevokeClient, Key: client, ClientID: client,
				RevokedAt: base, ExpiresAt: base.Add(time.Hour)})
		} else {
			err = s.DeleteSSFStream(ctx, id)
		}
		if err != nil {
			t.Fatalf("round %d: deleting: %v", round, err)
		}
		wg.Wait()
		for range adders {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: AddSSFSubject: %v", round, err)
			}
		}
		if n, err := s.CountSSFSubjects(ctx, id); err != nil || n != 0 {
			t.Fatalf("round %d: %d subjects of the deleted stream %s (%v); want none", round, n, id, err)
		}
		for _, k := range []string{keys[0], keys[0] + "alias", keys[len(keys)-1], keys[len(keys)-1] + "alias"} {
			if subs, err := s.SSFSubjectsMatching(ctx, []string{k}); err != nil || len(subs) != 0 {
				t.Fatalf("round %d: key %s still finds %d subjects of the deleted stream (%v)", round, k, len(subs), err)
			}
		}
		all := make([]string, 0, 2*len(keys))
		for _, k := range keys {
			all = append(all, k, k+"alias")
		}
		if subs, err := s.SSFSubjectsMatching(ctx, all); err != nil || len(subs) != 0 {
			t.Fatalf("round %d: the deleted stream's keys still find %d subjects (%v)", round, len(subs), err)
		}
		if inTx == nil {
			continue
		}
		var n int64
		if err := inTx(s, func(tx sqlstore.Querier) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM ssf_subject_keys WHERE stream_id = $1`, id).Scan(&n)
		}); err != nil || n != 0 {
			t.Fatalf("round %d: %d stored lookup keys of the deleted stream %s (%v); want none", round, n, id, err)
		}
	}
}

func testSSFVerification(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if err := s.CreateSSFStream(ctx, ssfStream("st", "r1", rescind.SSFPoll), 0); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		at   time.Time
		want bool
	}{{base, true}, {base.Add(4 * time.Second), false}, {base.Add(5 * time.Second), true}, {base.Add(6 * time.Second), false}} {
		if ok, err := s.ClaimSSFVerification(ctx, "st", c.at, 5*time.Second); err != nil || ok != c.want {
			t.Fatalf("request %d at %v: %v, %v; want %v", i, c.at, ok, err, c.want)
		}
	}
	if _, err := s.ClaimSSFVerification(ctx, "nope", base, time.Second); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("unknown stream: %v", err)
	}
}

// signals claims the signal messages due and returns their kinds, sorted.
func signals(t *testing.T, s rescind.Store, now time.Time) ([]string, []rescind.Signal) {
	t.Helper()
	var kinds []string
	var out []rescind.Signal
	for _, m := range ssfOutbox(t, s, rescind.OutboxSignal, now) {
		var sg rescind.Signal
		if err := json.Unmarshal(m.Payload, &sg); err != nil || sg.ID == "" || sg.Txn == "" {
			t.Fatalf("signal payload %s: %v", m.Payload, err)
		}
		kinds = append(kinds, string(sg.Kind))
		out = append(out, sg)
	}
	sort.Strings(kinds)
	return kinds, out
}

func testSSFSignals(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	far := base.Add(365 * 24 * time.Hour)
	user(t, s, "u1")
	if err := s.CreateSession(ctx, session("s1", "u1")); err != nil {
		t.Fatal(err)
	}
	rev := rescind.Revocation{RevokedAt: base.Add(time.Minute), Actor: "user:u1", Reason: "signed out"}
	// No stream: nothing to tell, nothing written.
	if _, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rev, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	if k, _ := signals(t, s, far); len(k) != 0 {
		t.Fatalf("signals without any stream: %v", k)
	}
	// A disabled stream wants nothing either.
	off := ssfStream("off", "r1", rescind.SSFPoll)
	off.Status = rescind.SSFDisabled
	if err := s.CreateSSFStream(ctx, off, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, func() rescind.Session { x := session("s2", "u1"); x.UserEpoch = 1; return x }()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ID: "s2"}, rev, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	if k, _ := signals(t, s, far); len(k) != 0 {
		t.Fatalf("signals with only a disabled stream: %v", k)
	}
	if err := s.CreateSSFStream(ctx, ssfStream("on", "r1", rescind.SSFPoll), 0); err != nil {
		t.Fatal(err)
	}
	// Ending a session.
	if err := s.CreateSession(ctx, func() rescind.Session { x := session("s3", "u1"); x.UserEpoch = 1; return x }()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1", ID: "s3"}, rev, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	k, sigs := signals(t, s, far)
	if !slices.Equal(k, []string{"session_ended"}) || sigs[0].SessionID != "s3" || sigs[0].UserID != "u1" ||
		sigs[0].Actor != "user:u1" || sigs[0].Reason != "signed out" || !sigs[0].At.Equal(rev.RevokedAt) {
		t.Fatalf("ending a session: %v %+v", k, sigs)
	}
	// Revoking a grant.
	if err := s.CreateClient(ctx, rescind.Client{ID: "c1", Name: "c1", SecretHash: "h1", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SaveGrant(ctx, grant("g1", "c1", "u1", "read")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g1"}, rev); err != nil {
		t.Fatal(err)
	}
	k, sigs = signals(t, s, far)
	if !slices.Equal(k, []string{"grant_revoked"}) || sigs[0].GrantID != "g1" || sigs[0].ClientID != "c1" || sigs[0].UserID != "u1" {
		t.Fatalf("revoking a grant: %v %+v", k, sigs)
	}
	// Setting a password: the password and the session it ends, in one transaction (one txn).
	if err := s.CreateSession(ctx, func() rescind.Session { x := session("s4", "u1"); x.UserEpoch = 1; return x }()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SetPassword(ctx, "u1", "new", false, rev, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	if k, _ = signals(t, s, far); !slices.Equal(k, []string{"password_set", "session_ended"}) {
		t.Fatalf("setting a password: %v", k)
	}
	// A client's secret changed; another change of the client is no signal.
	name := "renamed"
	if _, err := s.UpdateClient(ctx, "c1", rescind.ClientUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if k, _ = signals(t, s, far); len(k) != 0 {
		t.Fatalf("renaming a client: %v", k)
	}
	if _, err := s.RotateClientSecret(ctx, "c1", "h2", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if k, sigs = signals(t, s, far); !slices.Equal(k, []string{"client_secret_changed"}) || sigs[0].ClientID != "c1" || sigs[0].Change != "update" {
		t.Fatalf("rotating a secret: %v %+v", k, sigs)
	}
	// A session that expires ends in the janitor's sweep (ExpireSessions).
	exp := session("s5", "u1")
	exp.UserEpoch = 2
	if err := s.CreateSession(ctx, exp); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.ExpireSessions(ctx, exp.IdleExpiresAt.Add(time.Second), 10, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	if k, sigs = signals(t, s, far); !slices.Equal(k, []string{"session_ended"}) || sigs[0].SessionID != "s5" {
		t.Fatalf("a session expiring: %v %+v", k, sigs)
	}
	// Deleting the user.
	if _, err := s.SaveGrant(ctx, grant("g2", "c1", "u1", "read")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.DeleteUser(ctx, "u1", rev, rescind.SessionEnd{}); err != nil {
		t.Fatal(err)
	}
	if k, _ = signals(t, s, far); !slices.Equal(k, []string{"grant_revoked", "user_deleted"}) {
		t.Fatalf("deleting a user: %v", k)
	}
	// Deleting a receiver's client deletes its streams; others' stay.
	if err := s.CreateSSFStream(ctx, ssfStream("c1-stream", "c1", rescind.SSFPoll), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteClient(ctx, "c1", base.Add(time.Hour), rescind.Revocation{Kind: rescind.RevokeClient, Key: "c1",
		RevokedAt: base.Add(time.Hour), ExpiresAt: base.Add(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSSFStream(ctx, "c1-stream"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("the deleted client's stream: %v; want ErrNotFound", err)
	}
	if _, err := s.GetSSFStream(ctx, "on"); err != nil {
		t.Fatalf("another receiver's stream after the deletion: %v", err)
	}
}

// testSSFChangesSerialized: a change of a stream begun while another change of it is under way
// is made to the stream as that one left it, so neither undoes the other (re-audit 6 #1: the
// stream was read outside the transaction that wrote it back whole, so a status change put
// back the push endpoint and credential a receiver had replaced meanwhile, and a change of
// configuration re-enabled a stream disabled meanwhile).
func testSSFChangesSerialized(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	st := ssfStream("st", "r1", rescind.SSFPush)
	st.EndpointURL, st.AuthHeader = "https://old.example/events", []byte("old")
	if err := s.CreateSSFStream(ctx, st, 0); err != nil {
		t.Fatal(err)
	}
	// The second change (a new endpoint and credential) starts while the first (disabling the
	// stream) holds it, and is given time to read the stream if the store lets it. The wait
	// only decides whether a store that does not hold the stream is caught; a store that does
	// passes whatever the timing.
	var saw rescind.SSFStream
	read := make(chan struct{})
	second := make(chan error, 1)
	early := false
	_, err := s.UpdateSSFStream(ctx, "st", func(x *rescind.SSFStream) error {
		go func() {
			_, err := s.UpdateSSFStream(ctx, "st", func(y *rescind.SSFStream) error {
				saw = *y
				close(read)
				y.EndpointURL, y.AuthHeader, y.UpdatedAt = "https://new.example/events", []byte("new"), base.Add(2*time.Minute)
				return nil
			})
			second <- err
		}()
		select {
		case <-read:
			early = true
		case <-time.After(200 * time.Millisecond):
		}
		x.Status, x.StatusReason, x.UpdatedAt = rescind.SSFDisabled, "incident", base.Add(time.Minute)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second:
		if err != nil {
			t.Fatalf("the second change: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the second change has not ended 10 s after the first committed")
	}
	if early || saw.Status != rescind.SSFDisabled {
		t.Errorf("the second change read the stream while the first held it (status %s); want it to wait and read %s",
			saw.Status, rescind.SSFDisabled)
	}
	got, err := s.GetSSFStream(ctx, "st")
	if err != nil || got.Status != rescind.SSFDisabled || got.StatusReason != "incident" ||
		got.EndpointURL != "https://new.example/events" || string(got.AuthHeader) != "new" {
		t.Fatalf("after both changes: status %s (%q), endpoint %q, credential %q, %v; want disabled (incident) and the new endpoint and credential",
			got.Status, got.StatusReason, got.EndpointURL, got.AuthHeader, err)
	}

	// Many at once: each adds its own event type to what the stream requested; all are kept.
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.UpdateSSFStream(ctx, "st", func(x *rescind.SSFStream) error {
				x.EventsRequested = append(x.EventsRequested, fmt.Sprintf("urn:e%d", i))
				return nil
			})
			errs <- err
		}()
	}
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("concurrent changes have not ended after 30 s")
		}
	}
	got, _ = s.GetSSFStream(ctx, "st")
	if len(got.EventsRequested) != n {
		t.Fatalf("after %d concurrent changes each adding one type: %v; want all %d", n, got.EventsRequested, n)
	}
}

// errBlockerDone rolls back a blocker's transaction (holdInTx).
var errBlockerDone = errors.New("blocker rolled back")

// holdInTx runs stmt in a transaction of s (through inTx) that stays open, holding what it wrote or locked,
// until the returned unblock is called (or the test ends): then it is rolled back, and unblock
// returns once it has been. what says what the blocker has done, for a failure's message.
func holdInTx(t *testing.T, s rescind.Store, inTx InTx, what, stmt string, args ...any) (unblock func()) {
	t.Helper()
	held, release, blocker := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		blocker <- inTx(s, func(tx sqlstore.Querier) error {
			if _, err := tx.Exec(context.Background(), stmt, args...); err != nil {
				return err
			}
			close(held)
			<-release
			return errBlockerDone
		})
	}()
	released := false
	unblock = func() {
		if released {
			return
		}
		released = true
		close(release)
		if err := waitErr(t, "the blocker", blocker); !errors.Is(err, errBlockerDone) {
			t.Fatalf("the blocker: %v; want it rolled back", err)
		}
	}
	t.Cleanup(unblock)
	select {
	case <-held:
	case err := <-blocker:
		t.Fatalf("the blocker: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatalf("the blocker has not %s after 10 s", what)
	}
	return unblock
}

// testSSFAppendOrderedWithChanges: an event append and a change of its stream are ordered, on
// every instance: the append reads the stream's method and status holding it until it commits,
// so a change waits for it (or it for the change) and the result is as if one ran after the
// other (re-audit 7 #1: on PostgreSQL the append read the stream without a lock, so a change
// that committed between its read and its insert left an event held on a stream just switched
// to push with no push to carry it, for good, or held on a disabled stream).
//
// To stop the append between its read of the stream and its insert, a third transaction (the
// blocker, through inTx) holds an uncommitted event with the same stream and jti: the append's
// insert waits for it. The change runs meanwhile and is given time to commit; then the blocker
// rolls back and the append goes on. The waits only decide whether a store that does not hold
// the stream is caught; one that does passes whatever the timing (on SQLite the blocker holds
// the write lock, so the append and the change simply run after it, one after the other).
func testSSFAppendOrderedWithChanges(t *testing.T, s rescind.Store, inTx InTx) {
	ctx := context.Background()
	const endpoint = "https://rp.example/events"
	for _, c := range []struct {
		name, method string
		change       func(*rescind.SSFStream)
		// What the stream holds afterwards: its events, and the jtis of its pushes.
		wantHeld, wantPushes []string
	}{
		{"poll to push", rescind.SSFPoll, func(x *rescind.SSFStream) { x.Method, x.EndpointURL = rescind.SSFPush, endpoint },
			[]string{"j"}, []string{"j"}},
		{"push to poll", rescind.SSFPush, func(x *rescind.SSFStream) { x.Method, x.EndpointURL = rescind.SSFPoll, "" },
			[]string{"j"}, nil},
		{"disabled", rescind.SSFPush, func(x *rescind.SSFStream) { x.Status, x.StatusReason = rescind.SSFDisabled, "incident" },
			nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "ord-" + c.method + "-" + strings.ReplaceAll(c.name, " ", "-")
			st := ssfStream(id, "r1", c.method)
			if c.method == rescind.SSFPush {
				st.EndpointURL = endpoint
			}
			if err := s.CreateSSFStream(ctx, st, 0); err != nil {
				t.Fatal(err)
			}
			unblock := holdInTx(t, s, inTx, "written its event", `INSERT INTO ssf_events (stream_id, jti, source, event_type, claims, created_at)
				VALUES ($1, 'j', 'blocker', 'blocker', $2, $3)`, id, []byte("{}"), sqlstore.Nanos(base))
			type result struct {
				n   int
				err error
			}
			appended := make(chan result, 1)
			go func() {
				n, err := s.AppendSSFEvents(ctx, []rescind.SSFEvent{ssfEvent(id, "j", "sig", base.Add(time.Minute))}, time.Hour)
				appended <- result{n, err}
			}()
			time.Sleep(200 * time.Millisecond) // the append reads the stream and waits on the blocker's event
			changed := make(chan error, 1)
			go func() {
				_, err := s.UpdateSSFStream(ctx, id, func(x *rescind.SSFStream) error {
					c.change(x)
					x.UpdatedAt = base.Add(2 * time.Minute)
					return nil
				})
				changed <- err
			}()
			var changeErr error
			changeDone := false
			select {
			case changeErr = <-changed:
				changeDone = true
			case <-time.After(200 * time.Millisecond):
			}
			unblock()
			var r result
			select {
			case r = <-appended:
			case <-time.After(10 * time.Second):
				t.Fatal("the append has not ended 10 s after the blocker rolled back")
			}
			if !changeDone {
				changeErr = waitErr(t, "the change", changed)
			}
			if r.err != nil || changeErr != nil {
				t.Fatalf("append: %d, %v; change: %v", r.n, r.err, changeErr)
			}
			got, err := s.GetSSFStream(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := s.PendingSSFEvents(ctx, id, 10)
			if err != nil {
				t.Fatal(err)
			}
			var heldJTIs, pushJTIs []string
			for _, ev := range evs {
				heldJTIs = append(heldJTIs, ev.JTI)
			}
			for _, m := range ssfOutbox(t, s, rescind.OutboxSSFPush, base.Add(time.Hour)) {
				if m.Key != id {
					continue
				}
				var p struct{ JTI string }
				if err := json.Unmarshal(m.Payload, &p); err != nil {
					t.Fatal(err)
				}
				pushJTIs = append(pushJTIs, p.JTI)
			}
			if !slices.Equal(heldJTIs, c.wantHeld) || !slices.Equal(pushJTIs, c.wantPushes) {
				t.Errorf("after the append (%d added) and the change (stream now %s, %s): events held %v, pushes for %v; want held %v, pushes for %v",
					r.n, got.Method, got.Status, heldJTIs, pushJTIs, c.wantHeld, c.wantPushes)
			}
		})
	}
}

// waitErr waits up to 10 s for what's error.
func waitErr(t *testing.T, what string, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s has not ended after 10 s", what)
		return nil
	}
}

// testSSFLockOrder: an append to several streams and the deletion of their client lock the
// streams in one order (their ids), so neither waits for the other while holding a stream the
// other waits for (re-audit 7 #1: once appends lock the streams they append to, an append
// taking them in the order of its events, or a deletion taking them in the table's order, can
// deadlock, PostgreSQL 40P01, and one of the two fails).
//
// The client's streams are created in the reverse order of their ids (the table's order, and
// its index's, is then d, c, b, a) and the append's events come in that order too. A blocker
// (through inTx) holds stream c changed but not committed; the append starts, then the
// deletion, each given time to take what it can and wait on c; then the blocker rolls back.
// A store that locks the streams in the order of their ids has the append wait on c holding
// a and b, and the deletion wait on a holding nothing. As in testSSFAppendOrderedWithChanges,
// the waits only decide whether a store that does not is caught.
func testSSFLockOrder(t *testing.T, s rescind.Store, inTx InTx) {
	ctx := context.Background()
	const client = "rx-order"
	if err := s.CreateClient(ctx, sampleClient(client)); err != nil {
		t.Fatal(err)
	}
	ids := []string{"ord-d", "ord-c", "ord-b", "ord-a"}
	var evs []rescind.SSFEvent
	for i, id := range ids {
		st := ssfStream(id, client, rescind.SSFPoll)
		st.CreatedAt = base.Add(time.Duration(i) * time.Second)
		if err := s.CreateSSFStream(ctx, st, 0); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ssfEvent(id, "j-"+id, "sig", base.Add(time.Minute)))
	}
	unblock := holdInTx(t, s, inTx, "changed the stream", `UPDATE ssf_streams SET updated_at = updated_at WHERE id = 'ord-c'`)
	appended, deleted := make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := s.AppendSSFEvents(ctx, evs, time.Hour)
		appended <- err
	}()
	time.Sleep(200 * time.Millisecond) // the append takes what it can and waits on c
	go func() {
		_, err := s.DeleteClient(ctx, client, base.Add(2*time.Minute), rescind.Revocation{Kind: rescind.RevokeClient, Key: client,
			ClientID: client, RevokedAt: base.Add(2 * time.Minute), ExpiresAt: base.Add(time.Hour)})
		deleted <- err
	}()
	time.Sleep(200 * time.Millisecond) // the deletion takes what it can and waits
	unblock()
	appendErr, deleteErr := waitErr(t, "the append", appended), waitErr(t, "the client's deletion", deleted)
	if appendErr != nil || deleteErr != nil {
		t.Fatalf("append: %v; client deletion: %v; want both done", appendErr, deleteErr)
	}
	for _, id := range ids {
		if _, err := s.GetSSFStream(ctx, id); !errors.Is(err, rescind.ErrNotFound) {
			t.Errorf("stream %s of the deleted client: %v; want ErrNotFound", id, err)
		}
		if evs, err := s.PendingSSFEvents(ctx, id, 10); err != nil || len(evs) != 0 {
			t.Errorf("stream %s of the deleted client holds %d events (%v); want none", id, len(evs), err)
		}
	}
}
