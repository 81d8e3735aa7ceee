package ssf

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// pollSetup is a transmitter whose Sign counts its calls, with stream s1 of receiver rx
// holding n pending events.
func pollSetup(t *testing.T, n int, mod func(*Config)) (*Transmitter, rescind.Store, http.Handler, *atomic.Int64) {
	t.Helper()
	var signs atomic.Int64
	tokens := map[string]Token{"rx": {ClientID: "rx", Scopes: []string{ScopeRead}, ClientCredentials: true, Audience: []string{testIssuer}}}
	tr, st, h := testTransmitter(t, tokens, func(c *Config) {
		c.Sign = func(claims any, typ string) (string, error) {
			signs.Add(1)
			b, err := json.Marshal(claims)
			return string(b), err
		}
		if mod != nil {
			mod(c)
		}
	})
	createClient(t, st, "rx", rescind.RegistrationAdmin, ScopeRead)
	ctx := context.Background()
	now := time.Now()
	for _, id := range []string{"s1", "s2"} {
		if err := st.CreateSSFStream(ctx, rescind.SSFStream{ID: id, ClientID: "rx", Method: rescind.SSFPoll, Status: rescind.SSFEnabled,
			EventsDelivered: Supported, CreatedAt: now, UpdatedAt: now}, 10); err != nil {
			t.Fatal(err)
		}
	}
	var evs []rescind.SSFEvent
	for i := range n {
		evs = append(evs, rescind.SSFEvent{StreamID: "s1", JTI: fmt.Sprint("j", i), Source: fmt.Sprint("src", i), Type: EventSessionRevoked,
			Claims: []byte(`{"iat":1,"jti":"j","sub_id":{"format":"opaque","id":"x"},"events":{}}`), CreatedAt: now.Add(time.Duration(i))})
	}
	if len(evs) > 0 {
		if _, err := st.AppendSSFEvents(ctx, evs, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	return tr, st, h, &signs
}

func pollOnce(t *testing.T, h http.Handler, ctx context.Context, stream, body string) (int, pollResponse) {
	t.Helper()
	req := httptest.NewRequestWithContext(ctx, "POST", PathPoll+stream, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer rx")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var resp pollResponse
	if w.Code == http.StatusOK && w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.Fatalf("poll answer %s: %v", w.Body, err)
		}
	}
	return w.Code, resp
}

// TestPollSignsEachSETOnce: a poll returns at most maxEventsCap SETs whatever maxEvents asks,
// and polling again without acknowledging signs nothing more: the SETs are kept (audit 19,
// finding 2: 500 RSA signatures per poll, repeated on every poll).
func TestPollSignsEachSETOnce(t *testing.T) {
	_, _, h, signs := pollSetup(t, 500, nil)
	var first pollResponse
	for i := range 3 {
		code, resp := pollOnce(t, h, context.Background(), "s1", `{"returnImmediately":true,"maxEvents":500}`)
		if code != http.StatusOK || len(resp.Sets) != maxEventsCap || !resp.MoreAvailable {
			t.Fatalf("poll %d: %d, %d SETs, moreAvailable %v; want 200, %d, true", i, code, len(resp.Sets), resp.MoreAvailable, maxEventsCap)
		}
		if i == 0 {
			first = resp
		} else if fmt.Sprint(resp.Sets) != fmt.Sprint(first.Sets) {
			t.Fatalf("poll %d returned other SETs than the first", i)
		}
	}
	if n := signs.Load(); n != maxEventsCap {
		t.Fatalf("3 polls of the same %d pending events signed %d SETs; want %d", maxEventsCap, n, maxEventsCap)
	}
	var acks []string
	for jti := range first.Sets {
		acks = append(acks, jti)
	}
	b, _ := json.Marshal(map[string]any{"ack": acks, "returnImmediately": true})
	if code, resp := pollOnce(t, h, context.Background(), "s1", string(b)); code != http.StatusOK || len(resp.Sets) != maxEventsCap {
		t.Fatalf("poll after acknowledging: %d, %d SETs", code, len(resp.Sets))
	}
	if n := signs.Load(); n != 2*maxEventsCap {
		t.Fatalf("after acknowledging %d and polling again: %d signatures; want %d", maxEventsCap, n, 2*maxEventsCap)
	}
}

// TestPollStopsWhenReceiverGone: a poll whose request has ended signs nothing.
func TestPollStopsWhenReceiverGone(t *testing.T) {
	_, _, h, signs := pollSetup(t, 100, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	pollOnce(t, h, ctx, "s1", `{"returnImmediately":true}`)
	if n := signs.Load(); n != 0 {
		t.Fatalf("a poll whose receiver was gone signed %d SETs", n)
	}
}

// TestPollConcurrencyLimit: two long polls of a stream at once; a third is answered 429 with
// Retry-After, while another stream of the receiver can still be polled; once they end, the
// stream can be polled again.
func TestPollConcurrencyLimit(t *testing.T) {
	tr, _, h, _ := pollSetup(t, 0, func(c *Config) { c.LongPoll = 30 * time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range maxPollsPerStream {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pollOnce(t, h, ctx, "s1", `{}`) // waits for events until cancelled
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.polls.mu.Lock()
		n := tr.polls.n["s\x00s1"]
		tr.polls.mu.Unlock()
		if n == maxPollsPerStream {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the long polls did not start: %d under way", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	req := httptest.NewRequest("POST", PathPoll+"s1", strings.NewReader(`{"returnImmediately":true}`))
	req.Header.Set("Authorization", "Bearer rx")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "too many polls") {
		t.Fatalf("a third poll of the stream: %d %s (Retry-After %q); want 429", w.Code, w.Body, w.Header().Get("Retry-After"))
	}
	if code, _ := pollOnce(t, h, context.Background(), "s2", `{"returnImmediately":true}`); code != http.StatusOK {
		t.Fatalf("a poll of the receiver's other stream: %d; want 200", code)
	}
	cancel()
	wg.Wait()
	if code, _ := pollOnce(t, h, context.Background(), "s1", `{"returnImmediately":true}`); code != http.StatusOK {
		t.Fatalf("a poll after the others ended: %d; want 200", code)
	}
}
