package ssf

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/outbox"
	"github.com/rescind/rescind/token"
)

// keyedSetup is pollSetup whose SETs are signed RS256 by a real keys.Manager over the same
// store, with the SET cache checking the signer (as cmd/rescind wires it).
func keyedSetup(t *testing.T, n int, mod func(*Config)) (*Transmitter, rescind.Store, http.Handler, *keys.Manager) {
	t.Helper()
	ctx := context.Background()
	var mgr *keys.Manager
	tr, st, h, _ := pollSetup(t, n, func(c *Config) {
		var err error
		if mgr, err = keys.Open(ctx, keys.Config{Store: c.Store, Box: c.Box}); err != nil {
			t.Fatal(err)
		}
		c.Sign = func(claims any, typ string) (string, error) { return mgr.SignWith(ctx, token.AlgRS256, claims, typ) }
		c.KeyVerifies = mgr.Signer().Verifies
		if mod != nil {
			mod(c)
		}
	})
	return tr, st, h, mgr
}

// kidsOf returns the kids of the SETs of a poll's answer.
func kidsOf(t *testing.T, sets map[string]string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, s := range sets {
		kid, err := token.JWTKeyID(s)
		if err != nil {
			t.Fatalf("a SET without a kid: %v", err)
		}
		out[kid] = true
	}
	return out
}

// retireRS256 rotates at once and retires the RS256 key that signs now (README: a compromised
// key), and returns the retired kid and the kid in force after it.
func retireRS256(t *testing.T, mgr *keys.Manager) (retired, now string) {
	t.Helper()
	ctx := context.Background()
	old, ok := mgr.Signer().ActiveWith(token.AlgRS256)
	if !ok {
		t.Fatal("no RS256 key signs")
	}
	if _, err := mgr.Rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.Retire(ctx, old, "admin:test"); err != nil {
		t.Fatal(err)
	}
	now, ok = mgr.Signer().ActiveWith(token.AlgRS256)
	if !ok || now == old {
		t.Fatalf("after retiring %s, RS256 signs with %q (%v)", old, now, ok)
	}
	return old, now
}

// TestPollReSignsSETsOfARetiredKey: a re-poll hands out the SETs it signed before while their
// key still verifies (no new signature), and once an operator has retired that key, SETs signed
// afresh by the key in force, never the retired one (re-audit 3B #1: the SET cache handed out
// SETs of a retired key, which the JWKS no longer lists, for ten minutes).
func TestPollReSignsSETsOfARetiredKey(t *testing.T) {
	_, _, h, mgr := keyedSetup(t, 3, nil)
	ctx := context.Background()
	code, first := pollOnce(t, h, ctx, "s1", `{"returnImmediately":true}`)
	if code != http.StatusOK || len(first.Sets) != 3 {
		t.Fatalf("poll 1: %d, %d SETs; want 200, 3", code, len(first.Sets))
	}
	// The key verifies: the cache serves the same texts.
	if _, again := pollOnce(t, h, ctx, "s1", `{"returnImmediately":true}`); !sameSets(again.Sets, first.Sets) {
		t.Fatal("a re-poll while the key verifies signed the SETs again; want the cached ones")
	}
	retired, active := retireRS256(t, mgr)
	if !kidsOf(t, first.Sets)[retired] {
		t.Fatalf("poll 1's SETs are not signed by %s, the key retired", retired)
	}
	code, second := pollOnce(t, h, ctx, "s1", `{"returnImmediately":true}`)
	kids := kidsOf(t, second.Sets)
	t.Logf("poll 2, after retiring %s: %d, %d SETs, kids %v", retired, code, len(second.Sets), kids)
	if code != http.StatusOK || len(second.Sets) != 3 || len(kids) != 1 || !kids[active] {
		t.Fatalf("poll 2 after retiring %s: %d, %d SETs, kids %v; want 200, 3 SETs all by %s", retired, code, len(second.Sets), kids, active)
	}
	for jti, set := range second.Sets {
		if _, err := mgr.Signer().Verify(set, TypeSET, time.Now()); err != nil {
			t.Errorf("SET %s of poll 2 does not verify with the published keys: %v", jti, err)
		}
	}
}

func sameSets(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPushRetryReSignsASETOfARetiredKey: a push that failed (503) is retried after the operator
// retired the key that signed it: the retry carries the SET signed afresh by the key in force,
// and the receiver accepts it (re-audit 3B #1: the retry sent the cached SET of the retired key,
// the receiver refused it, and the event was lost).
func TestPushRetryReSignsASETOfARetiredKey(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var got []string
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		n := len(got)
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusServiceUnavailable) // down for the first attempt
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}))
	defer rx.Close()
	tr, st, _, mgr := keyedSetup(t, 1, func(c *Config) { c.AllowLoopbackPush = true })
	toPush(t, st, "s1", rx.URL+"/events")
	msg := rescind.OutboxMessage{Kind: rescind.OutboxSSFPush, Key: "s1", Payload: []byte(`{"jti":"j0"}`)}
	if err := tr.PushDeliverer().Deliver(ctx, msg); err == nil {
		t.Fatal("the first attempt, answered 503, succeeded")
	}
	retired, active := retireRS256(t, mgr)
	msg.Attempts, msg.LastError = 1, "POST: 503 Service Unavailable"
	if err := tr.PushDeliverer().Deliver(ctx, msg); err != nil {
		t.Fatalf("the retry after the retirement: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d pushes; want 2", len(got))
	}
	k1, _ := token.JWTKeyID(got[0])
	k2, _ := token.JWTKeyID(got[1])
	t.Logf("attempt 1 signed by %s; retired; attempt 2 signed by %s", k1, k2)
	if k1 != retired || k2 != active {
		t.Fatalf("attempt 1 by %s, attempt 2 by %s; want %s (then retired), then %s", k1, k2, retired, active)
	}
	if ev, err := st.GetSSFEvent(ctx, "s1", "j0"); err != nil || ev.AckedAt.IsZero() || ev.Error != "" {
		t.Fatalf("the event after the accepted retry: %+v, %v; want acknowledged without error", ev, err)
	}
}

// toPush makes stream id a push stream to url.
func toPush(t *testing.T, st rescind.Store, id, url string) {
	t.Helper()
	if _, err := st.UpdateSSFStream(context.Background(), id, func(s *rescind.SSFStream) error {
		s.Method, s.EndpointURL, s.UpdatedAt = rescind.SSFPush, url, time.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestPushKeyRefusalIsRetriedSignedAfresh: a receiver that cannot verify a SET answers 400
// with RFC 8935 §2.3's err "invalid_key" (its JWKS copy lacks the kid). That passes, so the push
// is a failure to retry (not permanent), the event stays pending with no error recorded, and the
// retry, on this instance or another, signs the SET afresh instead of resending a kept one;
// when the receiver accepts it, the event is acknowledged. Any other 400 is still a refusal for
// good (re-audit 3B #3: invalid_key gave the event up at once).
func TestPushKeyRefusalIsRetriedSignedAfresh(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	answers := []func(w http.ResponseWriter){ // to the 1st, 2nd, ... push; the last one then on
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) },
		func(w http.ResponseWriter) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"err":"invalid_key","description":"kid not found at jwks_uri"}`))
		},
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) },
	}
	var got []string
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(b))
		answers[min(len(got), len(answers))-1](w)
	}))
	defer rx.Close()
	var signs int
	tr, st, _, _ := keyedSetup(t, 1, func(c *Config) {
		c.AllowLoopbackPush = true
		sign := c.Sign
		c.Sign = func(claims any, typ string) (string, error) {
			mu.Lock()
			signs++
			mu.Unlock()
			return sign(claims, typ)
		}
	})
	// Another instance, with its own cache, on the same store and keys.
	other, err := New(tr.cfg)
	if err != nil {
		t.Fatal(err)
	}
	toPush(t, st, "s1", rx.URL+"/events")
	msg := rescind.OutboxMessage{Kind: rescind.OutboxSSFPush, Key: "s1", Payload: []byte(`{"jti":"j0"}`)}
	pending := func(when string) {
		t.Helper()
		ev, err := st.GetSSFEvent(ctx, "s1", "j0")
		if err != nil || !ev.AckedAt.IsZero() || ev.Error != "" {
			t.Fatalf("%s: event %+v, %v; want pending, no error recorded", when, ev, err)
		}
	}
	// Attempt 1 on each instance: 503; both keep the SET they signed.
	for _, in := range []*Transmitter{tr, other} {
		if err := in.PushDeliverer().Deliver(ctx, msg); err == nil || outbox.IsPermanent(err) {
			t.Fatalf("attempt answered 503: %v; want a failure to retry", err)
		}
	}
	pending("after two 503s")
	msg.Attempts, msg.LastError = 2, "POST: 503 Service Unavailable"
	err = tr.PushDeliverer().Deliver(ctx, msg)
	t.Logf("attempt answered 400 invalid_key: permanent=%v err=%v", outbox.IsPermanent(err), err)
	if err == nil || outbox.IsPermanent(err) || !strings.HasPrefix(err.Error(), keyRefusedText) {
		t.Fatalf("attempt answered 400 invalid_key: %v; want a failure to retry, saying so", err)
	}
	pending("after the key refusal")
	mu.Lock()
	before := signs
	mu.Unlock()
	// The retry lands on the other instance, whose cache holds the SET: it signs afresh.
	msg.Attempts, msg.LastError = 3, err.Error()
	if err := other.PushDeliverer().Deliver(ctx, msg); err != nil {
		t.Fatalf("the retry after the key refusal: %v", err)
	}
	mu.Lock()
	if signs != before+1 || len(got) != 4 {
		t.Errorf("the retry after the key refusal signed %d SETs (%d pushes in all); want 1 (afresh, not the kept one), 4 pushes", signs-before, len(got))
	}
	mu.Unlock()
	if ev, err := st.GetSSFEvent(ctx, "s1", "j0"); err != nil || ev.AckedAt.IsZero() || ev.Error != "" {
		t.Fatalf("the event after the accepted retry: %+v, %v; want acknowledged without error", ev, err)
	}

	// Another 400 (a refusal of the SET itself): given up, recorded on the event.
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"err":"invalid_request","description":"not a SET"}`))
	}))
	defer refuse.Close()
	if _, err := st.AppendSSFEvents(ctx, []rescind.SSFEvent{{StreamID: "s1", JTI: "j1", Source: "src1", Type: EventSessionRevoked,
		Claims: []byte(`{"iat":1,"jti":"j1","sub_id":{"format":"opaque","id":"x"},"events":{}}`), CreatedAt: time.Now()}}, time.Hour); err != nil {
		t.Fatal(err)
	}
	toPush(t, st, "s1", refuse.URL+"/events")
	err = tr.PushDeliverer().Deliver(ctx, rescind.OutboxMessage{Kind: rescind.OutboxSSFPush, Key: "s1", Payload: []byte(`{"jti":"j1"}`)})
	if !outbox.IsPermanent(err) {
		t.Fatalf("a push refused with invalid_request: %v; want permanent", err)
	}
	if ev, err := st.GetSSFEvent(ctx, "s1", "j1"); err != nil || ev.AckedAt.IsZero() || !strings.Contains(ev.Error, "invalid_request") {
		t.Fatalf("the event refused with invalid_request: %+v, %v; want acknowledged with the error", ev, err)
	}
}
