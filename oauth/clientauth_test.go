package oauth_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/ratelimit"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/oauth"
)

// limitedHandler is e's server on its store with limiter, to be called with a chosen RemoteAddr.
func limitedHandler(t *testing.T, e *env, limiter *ratelimit.Limiter) http.Handler {
	return gatedHandler(t, e, limiter, nil)
}

// gatedHandler is limitedHandler whose secret checks go through gate.
func gatedHandler(t *testing.T, e *env, limiter *ratelimit.Limiter, gate *secret.Gate) http.Handler {
	clients, _ := clientreg.New(clientreg.Config{Store: e.store, Gate: gate})
	state := revocation.NewState()
	if _, err := state.Load(context.Background(), e.store, e.clock(), nil); err != nil {
		t.Fatal(err)
	}
	com := revocation.NewCommitter(e.store, state, nil)
	t.Cleanup(com.Close)
	s, err := oauth.New(oauth.Config{Issuer: issuer, Clients: clients, Keys: e.keys, Revoked: state, Committer: com,
		Metrics: metrics.New(prometheus.NewRegistry(), func() float64 { return 0 }), Store: e.store, Now: e.clock,
		Signer: e.signer, Statuses: &statuslist.Allocator{Recorder: e.store}, Limiter: limiter})
	if err != nil {
		t.Fatal(err)
	}
	return s.Handler()
}

// tokenFrom posts a client credentials request for client/sec (HTTP Basic) as if from remote.
func tokenFrom(h http.Handler, remote, client, sec string) resp {
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(client, sec)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
}

// TestClientAuthIPv6Network (audit of issue 12, finding 1): wrong secrets from fresh addresses
// of one IPv6 /64 share one address bucket; the next /64 is another party.
func TestClientAuthIPv6Network(t *testing.T) {
	e := newEnv(t)
	l := ratelimit.New(ratelimit.Config{Burst: 2, PerMinute: 1, Now: e.clock})
	h := limitedHandler(t, e, l)
	wantError(t, tokenFrom(h, "[2001:db8:5:6::1]:1", "app", "wrong"), http.StatusUnauthorized, "invalid_client")
	wantError(t, tokenFrom(h, "[2001:db8:5:6::2]:1", "other", "wrong"), http.StatusUnauthorized, "invalid_client")
	wantError(t, tokenFrom(h, "[2001:db8:5:6:abcd::3]:1", "app", appSecret), http.StatusTooManyRequests, "slow_down")
	if r := tokenFrom(h, "[2001:db8:5:7::1]:1", "app", appSecret); r.status != http.StatusOK {
		t.Fatalf("the next /64: %d %s", r.status, r.body)
	}
}

// TestClientIDTooLong (audit of issue 12, finding 2): a client id over 256 bytes, in the body or
// in HTTP Basic, is a 400 invalid_request, refused before any rate-limit bucket is made.
func TestClientIDTooLong(t *testing.T) {
	e := newEnv(t)
	l := ratelimit.New(ratelimit.Config{Now: e.clock})
	h := limitedHandler(t, e, l)
	long := strings.Repeat("c", oauth.MaxClientIDLength+1)
	wantError(t, tokenFrom(h, "192.0.2.1:1", long, "secret"), http.StatusBadRequest, "invalid_request")
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {long}, "client_secret": {"secret"}}
	r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	wantError(t, resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}, http.StatusBadRequest, "invalid_request")
	if l.Len() != 0 {
		t.Fatalf("%d buckets made for refused ids", l.Len())
	}
	// At the bound, an unknown id is checked (and charged) like any other.
	wantError(t, tokenFrom(h, "192.0.2.1:1", long[1:], "secret"), http.StatusUnauthorized, "invalid_client")
	if l.Len() == 0 {
		t.Fatal("an id at the bound was not charged")
	}
}

// TestClientIDTimingOracle (audit of issue 12, finding 3): a failed client authentication costs
// the same number of hash checks whether the client id exists or not, and whether it is public:
// with HTTP Basic and a secret whose form decoding differs from itself ("+"), which gives two
// candidates, and with client_secret_post.
func TestClientIDTimingOracle(t *testing.T) {
	e := newEnv(t)
	gate := secret.NewGate(secret.GateConfig{Params: cheap})
	h := gatedHandler(t, e, nil, gate)
	cost := func(send func() resp) int64 {
		t.Helper()
		before := gate.Checks()
		wantError(t, send(), http.StatusUnauthorized, "invalid_client")
		return gate.Checks() - before
	}
	basic := func(id, sec string) func() resp {
		return func() resp { return tokenFrom(h, "192.0.2.1:1", id, sec) }
	}
	post := func(id, sec string) func() resp {
		return func() resp {
			form := url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {sec}}
			r := httptest.NewRequest(http.MethodPost, "/oauth2/token", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			return resp{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
		}
	}
	for _, tc := range []struct {
		name         string
		known, ghost func() resp
	}{
		{"basic, secret with '+'", basic("app", "wrong+secret"), basic("no-such-client", "wrong+secret")},
		{"basic, plain secret", basic("app", "wrongsecret"), basic("no-such-client", "wrongsecret")},
		{"basic, public client", basic("pub", "wrong+secret"), basic("no-such-client", "wrong+secret")},
		{"post, public client", post("pub", "wrongsecret"), post("no-such-client", "wrongsecret")},
		{"post", post("app", "wrong+secret"), post("no-such-client", "wrong+secret")},
	} {
		k, g := cost(tc.known), cost(tc.ghost)
		if k != g || k == 0 {
			t.Errorf("%s: a known client costs %d checks, an unknown one %d", tc.name, k, g)
		}
	}
}

// TestManyConnectionsAtOnce: a client that opens many connections at once after a start, each
// with its right secret, gets its tokens on all of them: one secret check is made and charged to
// the rate limit, and the others wait for it, rather than all but the limit's burst being refused
// with slow_down. The same number of connections with a wrong secret still gets no more checks
// than the burst.
func TestManyConnectionsAtOnce(t *testing.T) {
	e := newEnv(t)
	const burst, n = 2, 16
	slow, err := secret.Hash("burst-secret", secret.DefaultParams) // a check long enough to overlap
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateClient(context.Background(), rescind.Client{ID: "burst", Name: "Burst", SecretHash: slow,
		GrantTypes: []string{rescind.GrantClientCredentials}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, secret string
		wantOK       bool
	}{{"right secret", "burst-secret", true}, {"wrong secret", "wrong-secret", false}} {
		t.Run(tc.name, func(t *testing.T) {
			gate := secret.NewGate(secret.GateConfig{})
			h := gatedHandler(t, e, ratelimit.New(ratelimit.Config{Burst: burst, PerMinute: 1, Now: e.clock}), gate)
			codes := make(chan int, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					codes <- tokenFrom(h, "192.0.2.7:"+strconv.Itoa(1000+i), "burst", tc.secret).status
				}()
			}
			close(start)
			wg.Wait()
			close(codes)
			count := map[int]int{}
			for c := range codes {
				count[c]++
			}
			checks := gate.Checks()
			if tc.wantOK {
				if count[http.StatusOK] != n || checks != 1 {
					t.Fatalf("statuses %v, %d secret checks; want %d × 200 and 1 check", count, checks, n)
				}
				return
			}
			// Each failure costs clientreg.WrongSecretChecks checks, whatever the id.
			if count[http.StatusUnauthorized] > burst || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests] != n ||
				checks > burst*clientreg.WrongSecretChecks {
				t.Fatalf("statuses %v, %d secret checks; want at most %d 401s and %d checks, the rest 429", count, checks, burst, burst*clientreg.WrongSecretChecks)
			}
		})
	}
}

// TestSecretRightOnlyAsSent: a client whose secret has "+" and "%XX" in it, sent in HTTP Basic as
// it is (as curl -u and Go's SetBasicAuth do, skipping RFC 6749 §2.3.1's form encoding), has it
// checked once: later requests, several at once, try the reading verified first and cost no
// check, where each used to check the form-decoded reading (wrong) first, twice with the padding
// of a failure. Re-audit 8 #1.
func TestSecretRightOnlyAsSent(t *testing.T) {
	e := newEnv(t)
	const sec = "a+b%2Fc-right-as-sent"
	h, err := secret.Hash(sec, cheap)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateClient(context.Background(), rescind.Client{ID: "raw", Name: "Raw", SecretHash: h,
		GrantTypes: []string{rescind.GrantClientCredentials}}); err != nil {
		t.Fatal(err)
	}
	gate := secret.NewGate(secret.GateConfig{Params: cheap})
	hd := gatedHandler(t, e, ratelimit.New(ratelimit.Config{Burst: 2, PerMinute: 1, Now: e.clock}), gate)
	if r := tokenFrom(hd, "192.0.2.8:1", "raw", sec); r.status != http.StatusOK {
		t.Fatalf("first request: %d %s", r.status, r.body)
	}
	before := gate.Checks()
	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- tokenFrom(hd, "192.0.2.8:"+strconv.Itoa(2+i), "raw", sec).status
		}()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a later request: %d", c)
		}
	}
	if checks := gate.Checks() - before; checks != 0 {
		t.Fatalf("%d secret checks for %d requests with a secret verified before; want 0", checks, n)
	}
}
