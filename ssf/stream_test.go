package ssf

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// racingStore is a store on which another request lands at a chosen moment of a handler's:
// afterGet runs once, right after a read of a stream returns it (between the handler's
// ownership check and its write), afterClaim once, right after a verification is claimed.
type racingStore struct {
	rescind.Store
	afterGet, afterClaim func(id string)
}

func (s *racingStore) GetSSFStream(ctx context.Context, id string) (rescind.SSFStream, error) {
	st, err := s.Store.GetSSFStream(ctx, id)
	if f := s.afterGet; err == nil && f != nil {
		s.afterGet = nil
		f(id)
	}
	return st, err
}

func (s *racingStore) ClaimSSFVerification(ctx context.Context, id string, now time.Time, interval time.Duration) (bool, error) {
	ok, err := s.Store.ClaimSSFVerification(ctx, id, now, interval)
	if f := s.afterClaim; err == nil && f != nil {
		s.afterClaim = nil
		f(id)
	}
	return ok, err
}

// racingSetup is a transmitter on a racingStore, with a receiver "rx" (token "owner") and a
// log that records what the handlers log.
func racingSetup(t *testing.T) (*Transmitter, *racingStore, http.Handler, *bytes.Buffer) {
	t.Helper()
	tokens := map[string]Token{"owner": {ClientID: "rx", Scopes: []string{ScopeManage, ScopeRead}, ClientCredentials: true, Audience: []string{testIssuer}}}
	rs := &racingStore{}
	var log bytes.Buffer
	tr, st, h := testTransmitter(t, tokens, func(c *Config) {
		rs.Store, c.Store = c.Store, rs
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	createClient(t, st, "rx", rescind.RegistrationAdmin, ScopeManage, ScopeRead)
	return tr, rs, h, &log
}

// createStream creates a stream of the receiver "rx" with the given delivery and returns its id.
func createStream(t *testing.T, h http.Handler, delivery string) string {
	t.Helper()
	w := do(h, "POST", PathStream, "owner", `{"delivery":`+delivery+`,"description":"first"}`)
	if w.Code != http.StatusCreated {
		t.Fatalf("creating a stream: %d %s", w.Code, w.Body)
	}
	var c streamConfig
	if err := json.Unmarshal(w.Body.Bytes(), &c); err != nil || c.StreamID == "" {
		t.Fatalf("creating a stream: %s, %v", w.Body, err)
	}
	return c.StreamID
}

// TestStreamChangesDoNotUndoEachOther: a request that changes a stream, whose read of it came
// before another request's change, keeps that change: each request changes only what it was
// asked to, on the stream as it is when it writes. Before, the second writer put back every
// column it had read (re-audit 6 #1): a status update restored the push endpoint and credential
// the receiver had just replaced, a PATCH re-enabled a stream the receiver had disabled.
func TestStreamChangesDoNotUndoEachOther(t *testing.T) {
	const oldPush = `{"method":"` + rescind.SSFPush + `","endpoint_url":"https://old.example/events","authorization_header":"Bearer old-secret"}`
	const newPush = `{"method":"` + rescind.SSFPush + `","endpoint_url":"https://new.example/events","authorization_header":"Bearer new-secret"}`
	for _, c := range []struct {
		name string
		// meanwhile lands between the request's read and its write; request is the request.
		meanwhile, request struct{ method, path, body string }
		// want is the stream afterwards: the change of each.
		want rescind.SSFStream
		// header is the push credential the stream must hold afterwards.
		header string
	}{
		{
			name:      "a status update keeps the push endpoint and credential a PATCH set meanwhile",
			meanwhile: struct{ method, path, body string }{"PATCH", PathStream, `{"stream_id":"%s","delivery":` + newPush + `}`},
			request:   struct{ method, path, body string }{"POST", PathStatus, `{"stream_id":"%s","status":"paused","reason":"maintenance"}`},
			want: rescind.SSFStream{Description: "first", Method: rescind.SSFPush, EndpointURL: "https://new.example/events",
				Status: rescind.SSFPaused, StatusReason: "maintenance"},
			header: "Bearer new-secret",
		},
		{
			name:      "a PATCH keeps the stream disabled by a status update meanwhile",
			meanwhile: struct{ method, path, body string }{"POST", PathStatus, `{"stream_id":"%s","status":"disabled","reason":"incident"}`},
			request:   struct{ method, path, body string }{"PATCH", PathStream, `{"stream_id":"%s","description":"renamed"}`},
			want: rescind.SSFStream{Description: "renamed", Method: rescind.SSFPush, EndpointURL: "https://old.example/events",
				Status: rescind.SSFDisabled, StatusReason: "incident"},
			header: "Bearer old-secret",
		},
		{
			name:      "a PUT keeps the stream disabled by a status update meanwhile",
			meanwhile: struct{ method, path, body string }{"POST", PathStatus, `{"stream_id":"%s","status":"disabled","reason":"incident"}`},
			request:   struct{ method, path, body string }{"PUT", PathStream, `{"stream_id":"%s","delivery":` + newPush + `}`},
			want: rescind.SSFStream{Method: rescind.SSFPush, EndpointURL: "https://new.example/events",
				Status: rescind.SSFDisabled, StatusReason: "incident"},
			header: "Bearer new-secret",
		},
		{
			name:      "a PATCH of the description keeps the push endpoint and credential a PATCH set meanwhile",
			meanwhile: struct{ method, path, body string }{"PATCH", PathStream, `{"stream_id":"%s","delivery":` + newPush + `}`},
			request:   struct{ method, path, body string }{"PATCH", PathStream, `{"stream_id":"%s","description":"renamed"}`},
			want: rescind.SSFStream{Description: "renamed", Method: rescind.SSFPush, EndpointURL: "https://new.example/events",
				Status: rescind.SSFEnabled},
			header: "Bearer new-secret",
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			tr, rs, h, _ := racingSetup(t)
			id := createStream(t, h, oldPush)
			body := func(b string) string { return strings.Replace(b, "%s", id, 1) }
			rs.afterGet = func(string) {
				if w := do(h, c.meanwhile.method, c.meanwhile.path, "owner", body(c.meanwhile.body)); w.Code != http.StatusOK {
					t.Errorf("%s %s meanwhile: %d %s", c.meanwhile.method, c.meanwhile.path, w.Code, w.Body)
				}
			}
			if w := do(h, c.request.method, c.request.path, "owner", body(c.request.body)); w.Code != http.StatusOK {
				t.Fatalf("%s %s: %d %s", c.request.method, c.request.path, w.Code, w.Body)
			}
			if rs.afterGet != nil {
				t.Fatal("nothing happened meanwhile: the handler read no stream")
			}
			got, err := rs.GetSSFStream(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Description != c.want.Description || got.Method != c.want.Method || got.EndpointURL != c.want.EndpointURL ||
				got.Status != c.want.Status || got.StatusReason != c.want.StatusReason {
				t.Errorf("the stream afterwards: description %q, %s to %q, status %s (%q); want description %q, %s to %q, status %s (%q)",
					got.Description, got.Method, got.EndpointURL, got.Status, got.StatusReason,
					c.want.Description, c.want.Method, c.want.EndpointURL, c.want.Status, c.want.StatusReason)
			}
			hdr, err := tr.cfg.Box.Open(got.AuthHeader, []byte("ssf stream "+id))
			if err != nil || string(hdr) != c.header {
				t.Errorf("the push credential afterwards: %q, %v; want %q", hdr, err, c.header)
			}
		})
	}
}

// TestInvalidStreamChangeWritesNothing: a change the handler refuses (an endpoint on a
// private address, an unknown status) leaves the stream as it was, its updated_at included.
func TestInvalidStreamChangeWritesNothing(t *testing.T) {
	for _, c := range []struct{ method, path, body, refusal string }{
		{"PATCH", PathStream, `{"stream_id":"%s","description":"renamed","delivery":{"method":"` + rescind.SSFPush + `","endpoint_url":"https://10.1.2.3/events"}}`, "not public"},
		{"PUT", PathStream, `{"stream_id":"%s","default_subjects":"SOME"}`, "default_subjects"},
		{"POST", PathStatus, `{"stream_id":"%s","status":"stopped"}`, "status must be"},
		{"POST", PathStatus, `{"stream_id":"%s","status":"disabled","reason":"` + strings.Repeat("x", 1001) + `"}`, "reason is longer"},
	} {
		t.Run(c.method+" "+c.refusal, func(t *testing.T) {
			_, rs, h, _ := racingSetup(t)
			id := createStream(t, h, `{"method":"`+rescind.SSFPoll+`"}`)
			before, err := rs.GetSSFStream(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			w := do(h, c.method, c.path, "owner", strings.Replace(c.body, "%s", id, 1))
			if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), c.refusal) {
				t.Fatalf("%d %s; want 400 saying %q", w.Code, w.Body, c.refusal)
			}
			after, err := rs.GetSSFStream(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if after.Description != before.Description || after.Method != before.Method || after.Status != before.Status ||
				after.AllSubjects != before.AllSubjects || !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Errorf("a refused change wrote: %+v -> %+v", before, after)
			}
		})
	}
}

// TestStreamDeletedMeanwhileIsNotFound: a change, a status update or a verification of a
// stream deleted after the handler read it (the operator's `rescind ssf stream delete`, or the
// receiver's own DELETE) is answered 404 "no such stream" (SSF 1.0 §8.1.1.3, §8.1.2.2,
// §8.1.4.2), not 500 with an error logged (re-audit 6 #3).
func TestStreamDeletedMeanwhileIsNotFound(t *testing.T) {
	for _, c := range []struct {
		name, method, path, body string
		// afterClaim: deleted after the verification is claimed, before its event is queued.
		afterClaim bool
	}{
		{"PATCH", "PATCH", PathStream, `{"stream_id":"%s","description":"x"}`, false},
		{"PUT", "PUT", PathStream, `{"stream_id":"%s"}`, false},
		{"status update", "POST", PathStatus, `{"stream_id":"%s","status":"paused"}`, false},
		{"verification", "POST", PathVerify, `{"stream_id":"%s","state":"s"}`, false},
		{"verification, deleted after its claim", "POST", PathVerify, `{"stream_id":"%s","state":"s"}`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, rs, h, log := racingSetup(t)
			id := createStream(t, h, `{"method":"`+rescind.SSFPoll+`"}`)
			del := func(id string) {
				if err := rs.Store.DeleteSSFStream(context.Background(), id); err != nil {
					t.Errorf("deleting the stream meanwhile: %v", err)
				}
			}
			if c.afterClaim {
				rs.afterClaim = del
			} else {
				rs.afterGet = del
			}
			w := do(h, c.method, c.path, "owner", strings.Replace(c.body, "%s", id, 1))
			if rs.afterGet != nil || rs.afterClaim != nil {
				t.Fatal("the stream was not deleted meanwhile: the handler did not get that far")
			}
			var e struct{ Error, ErrorDescription string }
			_ = json.Unmarshal(w.Body.Bytes(), &struct {
				Error            *string `json:"error"`
				ErrorDescription *string `json:"error_description"`
			}{&e.Error, &e.ErrorDescription})
			if w.Code != http.StatusNotFound || e.Error != "not_found" || e.ErrorDescription != "no such stream" {
				t.Errorf("%d %s; want 404 not_found \"no such stream\"", w.Code, strings.TrimSpace(w.Body.String()))
			}
			if strings.Contains(log.String(), "level=ERROR") {
				t.Errorf("logged an error: %s", log)
			}
		})
	}
}

// TestVerificationOfAStreamDisabledMeanwhile: a verification whose stream is disabled after its
// claim, before its event is queued, queues nothing (a disabled stream holds nothing) and is
// answered as a verification of a disabled stream is, 409, not 204.
func TestVerificationOfAStreamDisabledMeanwhile(t *testing.T) {
	_, rs, h, _ := racingSetup(t)
	id := createStream(t, h, `{"method":"`+rescind.SSFPoll+`"}`)
	rs.afterClaim = func(id string) {
		if _, err := rs.Store.UpdateSSFStream(context.Background(), id, func(st *rescind.SSFStream) error {
			st.Status = rescind.SSFDisabled
			return nil
		}); err != nil {
			t.Errorf("disabling the stream meanwhile: %v", err)
		}
	}
	w := do(h, "POST", PathVerify, "owner", `{"stream_id":"`+id+`"}`)
	if rs.afterClaim != nil {
		t.Fatal("the verification was not claimed")
	}
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"stream_disabled"`) {
		t.Errorf("%d %s; want 409 stream_disabled", w.Code, strings.TrimSpace(w.Body.String()))
	}
	if evs, err := rs.PendingSSFEvents(context.Background(), id, 10); err != nil || len(evs) != 0 {
		t.Errorf("the disabled stream holds %d events, %v; want none", len(evs), err)
	}
}

// verifyRaceStore is a store on which the stream is changed at chosen moments of a
// verification: afterClaim runs once, right after the verification is claimed; afterAppend[i]
// right after the handler's i-th AppendSSFEvents; afterGet, once, right after a read of the
// stream (armed by the others, to land on the handler's re-read).
type verifyRaceStore struct {
	rescind.Store
	afterClaim, afterGet func(id string)
	afterAppend          []func(id string)
	appends              int
}

func (s *verifyRaceStore) ClaimSSFVerification(ctx context.Context, id string, now time.Time, interval time.Duration) (bool, error) {
	ok, err := s.Store.ClaimSSFVerification(ctx, id, now, interval)
	if f := s.afterClaim; err == nil && f != nil {
		s.afterClaim = nil
		f(id)
	}
	return ok, err
}

func (s *verifyRaceStore) AppendSSFEvents(ctx context.Context, evs []rescind.SSFEvent, window time.Duration) (int, error) {
	n, err := s.Store.AppendSSFEvents(ctx, evs, window)
	i := s.appends
	s.appends++
	if err == nil && i < len(s.afterAppend) && s.afterAppend[i] != nil {
		s.afterAppend[i](evs[0].StreamID)
	}
	return n, err
}

func (s *verifyRaceStore) GetSSFStream(ctx context.Context, id string) (rescind.SSFStream, error) {
	st, err := s.Store.GetSSFStream(ctx, id)
	if f := s.afterGet; err == nil && f != nil {
		s.afterGet = nil
		f(id)
	}
	return st, err
}

// TestVerificationNoContentOnlyIfQueued: a verification is answered 204 only if its event was
// queued (SSF 1.0 §8.1.4.2). Its stream disabled after the claim and enabled again before the
// handler looks at why nothing was queued gets its event queued by a second attempt, 204
// (re-audit 7 #2: it was answered 204 with nothing queued); one whose second attempt finds the
// stream disabled again is 409 stream_disabled, with nothing queued.
func TestVerificationNoContentOnlyIfQueued(t *testing.T) {
	for _, c := range []struct {
		name string
		// steps: after the claim, after the first append, and so on: the status set then.
		steps      []rescind.SSFStatus
		againAfter bool // disabled again right after the handler's re-read that found it enabled
		wantCode   int
		wantError  string
		wantEvents int
	}{
		{"disabled after its claim", []rescind.SSFStatus{rescind.SSFDisabled}, false, http.StatusConflict, "stream_disabled", 0},
		{"disabled after its claim, enabled again before the re-read", []rescind.SSFStatus{rescind.SSFDisabled, rescind.SSFEnabled},
			false, http.StatusNoContent, "", 1},
		{"disabled after its claim, paused before the re-read", []rescind.SSFStatus{rescind.SSFDisabled, rescind.SSFPaused},
			false, http.StatusNoContent, "", 1},
		{"disabled again before the second attempt", []rescind.SSFStatus{rescind.SSFDisabled, rescind.SSFEnabled, rescind.SSFEnabled},
			true, http.StatusConflict, "stream_disabled", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tokens := map[string]Token{"owner": {ClientID: "rx", Scopes: []string{ScopeManage, ScopeRead}, ClientCredentials: true, Audience: []string{testIssuer}}}
			vs := &verifyRaceStore{}
			_, st, h := testTransmitter(t, tokens, func(c *Config) { vs.Store, c.Store = c.Store, vs })
			createClient(t, st, "rx", rescind.RegistrationAdmin, ScopeManage, ScopeRead)
			id := createStream(t, h, `{"method":"`+rescind.SSFPoll+`"}`)
			set := func(status rescind.SSFStatus) func(string) {
				return func(id string) {
					if _, err := vs.Store.UpdateSSFStream(context.Background(), id, func(x *rescind.SSFStream) error {
						x.Status, x.UpdatedAt = status, time.Now()
						return nil
					}); err != nil {
						t.Errorf("setting the stream %s meanwhile: %v", status, err)
					}
				}
			}
			vs.afterClaim = set(c.steps[0])
			for i, status := range c.steps[1:] {
				f := set(status)
				if c.againAfter && i == 0 {
					f = func(id string) {
						set(status)(id)
						vs.afterGet = set(rescind.SSFDisabled)
					}
				}
				vs.afterAppend = append(vs.afterAppend, f)
			}
			w := do(h, "POST", PathVerify, "owner", `{"stream_id":"`+id+`","state":"s1"}`)
			if vs.afterClaim != nil {
				t.Fatal("the verification was not claimed")
			}
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(w.Body.Bytes(), &e)
			evs, err := vs.Store.PendingSSFEvents(context.Background(), id, 10)
			if err != nil {
				t.Fatal(err)
			}
			verifications := 0
			for _, ev := range evs {
				if ev.Type == EventVerification && bytes.Contains(ev.Claims, []byte(`"state":"s1"`)) {
					verifications++
				}
			}
			if w.Code != c.wantCode || e.Error != c.wantError || verifications != c.wantEvents {
				t.Errorf("%d %s, %d verification event(s) queued (after %d append(s)); want %d %q, %d queued",
					w.Code, strings.TrimSpace(w.Body.String()), verifications, vs.appends, c.wantCode, c.wantError, c.wantEvents)
			}
		})
	}
}
