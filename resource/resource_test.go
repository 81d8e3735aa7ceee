package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func newMW(t testing.TB, as *fakeAS, cfg Config) *Middleware {
	cfg.Issuer = as.URL
	if cfg.Audience == "" {
		cfg.Audience = "https://api.example"
	}
	m, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestVerifyJWTNegative: each token differs from a valid one in exactly one property, and is
// refused by the check for that property.
func TestVerifyJWTNegative(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{})
	good := as.claims(1)
	if c, err := m.Verify(context.Background(), as.token(good)); err != nil || c.Subject != "alice" || len(c.Scopes) != 2 {
		t.Fatalf("valid token: %+v, %v", c, err)
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubDER, _ := x509.MarshalPKIXPublicKey(&as.key.PublicKey)
	now := time.Now().Unix()
	valid := as.token(good)
	goodJSON, _ := json.Marshal(good)
	cases := []struct {
		name string
		tok  string
		want error
	}{
		// The valid header with alg "none" and no signature.
		{"alg none", b64(`{"alg":"none","kid":"k1","typ":"at+jwt"}`) + "." + b64(string(goodJSON)) + ".", errNotJWS},
		// HMAC keyed with the public key: the classic algorithm confusion.
		{"HS256 with the public key", as.sign(good, "at+jwt", "k1", jose.HS256, pubDER), errNotJWS},
		{"ES384 under the ES256 key's kid", as.sign(good, "at+jwt", "k1", jose.ES384, mustKey384()), errAlgMismatch},
		{"wrong typ", as.sign(good, "JWT", "k1", jose.ES256, as.key), errTyp},
		{"no typ", as.sign(good, "", "k1", jose.ES256, as.key), errTyp},
		{"unknown kid", as.sign(good, "at+jwt", "k9", jose.ES256, as.key), errUnknownKey},
		{"signed by another key", as.sign(good, "at+jwt", "k1", jose.ES256, otherKey), errSignature},
		// Cut to 63 bytes, a whole number of base64 quanta: cut elsewhere, the encoding itself
		// may be broken (trailing bits), which is refused as errNotJWS.
		{"signature cut short", valid[:len(valid)-2], errSignature},
		{"wrong aud", as.token(with(good, "aud", "https://other.example")), errAudience},
		{"no aud", as.token(with(good, "aud", nil)), errAudience},
		{"wrong iss", as.token(with(good, "iss", "https://evil.example")), errIssuer},
		{"no exp", as.token(with(good, "exp", nil)), errNoExp},
		{"no jti", as.token(with(good, "jti", nil)), errNoJTI},
		{"exp is a string", as.token(with(good, "exp", "tomorrow")), errClaims},
		{"expired", as.token(with(good, "exp", now-1)), ErrExpired},
		{"not yet valid", as.token(with(good, "nbf", now+600)), errNotYetValid},
		{"oversized", valid + "." + strings.Repeat("A", maxTokenLen), errTooLong},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := m.Verify(context.Background(), tc.tok)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("refused with %q, want %q", err, tc.want)
			}
		})
	}
}

// TestClockSkew: a token from a server whose clock is ahead (nbf in the future) is accepted
// within ClockSkew; expiry gets no leeway, whatever ClockSkew is.
func TestClockSkew(t *testing.T) {
	as := newFakeAS(t)
	now := time.Now().Unix()
	ahead := as.token(with(as.claims(1), "nbf", now+30))
	expired := as.token(with(as.claims(1), "exp", now-1))
	for _, tc := range []struct {
		skew         time.Duration
		acceptsAhead bool
	}{{0, true}, {time.Minute, true}, {10 * time.Second, false}} {
		m := newMW(t, as, Config{ClockSkew: tc.skew})
		if _, err := m.Verify(context.Background(), ahead); (err == nil) != tc.acceptsAhead {
			t.Errorf("skew %v: token valid 30 s from now: %v", tc.skew, err)
		}
		if _, err := m.Verify(context.Background(), expired); !errors.Is(err, ErrExpired) {
			t.Errorf("skew %v: token expired a second ago: %v, want ErrExpired", tc.skew, err)
		}
	}
}

func mustKey384() *ecdsa.PrivateKey {
	k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	return k
}

// TestStatusList: a revoked entry is refused once the list is refreshed (its ttl passed), and a
// list that cannot be refreshed past its ttl makes the middleware fail closed (or open, if set).
func TestStatusList(t *testing.T) {
	as := newFakeAS(t)
	now := time.Now()
	clock := func() time.Time { return now }
	m := newMW(t, as, Config{Now: clock})
	tok := as.token(as.claims(5))
	if _, err := m.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	as.mu.Lock()
	as.revoked[5] = true
	as.mu.Unlock()
	if _, err := m.Verify(context.Background(), tok); err != nil {
		t.Fatal("the cached list was refreshed before its ttl") // the bound is the ttl
	}
	now = now.Add(61 * time.Second)
	if _, err := m.Verify(context.Background(), tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the ttl: %v, want ErrRevoked", err)
	}
	if _, err := m.Verify(context.Background(), as.token(as.claims(6))); err != nil {
		t.Fatalf("another entry: %v", err)
	}
	if b := m.StalenessBound(); b != time.Minute {
		t.Fatalf("StalenessBound = %v, want the list ttl", b)
	}
	as.mu.Lock()
	as.listErr = true
	as.mu.Unlock()
	now = now.Add(61 * time.Second)
	if _, err := m.Verify(context.Background(), as.token(as.claims(6))); !errors.Is(err, ErrStatusStale) {
		t.Fatalf("list unreachable past its ttl: %v, want ErrStatusStale (fail closed)", err)
	}
	open := newMW(t, as, Config{Now: clock, FailOpen: true})
	if _, err := open.Verify(context.Background(), as.token(as.claims(6))); err != nil {
		t.Fatalf("FailOpen: %v", err)
	}
}

// TestPush: a pushed revocation is applied as it arrives, with no list refresh.
func TestPush(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{Push: true, ClientID: "rs", ClientSecret: "s"})
	deadline := time.Now().Add(10 * time.Second)
	for m.StalenessBound() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("push subscription never became live")
		}
		time.Sleep(5 * time.Millisecond)
	}
	tok := as.token(as.claims(7))
	grantTok := as.token(with(as.claims(8), "gid", "g1"))
	for _, tk := range []string{tok, grantTok} {
		if _, err := m.Verify(context.Background(), tk); err != nil {
			t.Fatal(err)
		}
	}
	as.events <- `{"type":"token","jti":"jti-7","client_id":"app","exp":9999999999}`
	as.events <- `{"type":"grant","grant_id":"g1","client_id":"app","exp":9999999999}`
	for _, tk := range []string{tok, grantTok} {
		for {
			if _, err := m.Verify(context.Background(), tk); errors.Is(err, ErrRevoked) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("pushed revocation not applied")
			}
			time.Sleep(time.Millisecond)
		}
	}
	if _, err := m.Verify(context.Background(), as.token(as.claims(9))); err != nil {
		t.Fatalf("an unrelated token: %v", err)
	}
}

func TestHandlerErrors(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{RequiredScopes: []string{"admin"}})
	h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		w.Write([]byte(c.Subject))
	}))
	do := func(auth string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do(""); w.Code != 401 || strings.Contains(w.Header().Get("WWW-Authenticate"), "error=") {
		t.Fatalf("no token: %d %q (RFC 6750 §3.1: no error code)", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := do("Bearer nonsense.x.y"); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("bad token: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := do("Bearer " + as.token(as.claims(1))); w.Code != 403 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Fatalf("missing scope: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	ok := newMW(t, as, Config{RequiredScopes: []string{"read"}}).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		w.Write([]byte(c.Subject))
	}))
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer "+as.token(as.claims(1)))
	w := httptest.NewRecorder()
	ok.ServeHTTP(w, r)
	if w.Code != 200 || w.Body.String() != "alice" {
		t.Fatalf("valid request: %d %q", w.Code, w.Body.String())
	}
}

// BenchmarkJWTFirstSight measures a JWT the middleware has not seen: signature verification
// (ES256) dominates.
func BenchmarkJWTFirstSight(b *testing.B) {
	as := newFakeAS(b)
	m := newMW(b, as, Config{})
	toks := make([]string, 256)
	for i := range toks {
		toks[i] = as.token(as.claims(int64(i)))
	}
	m.Verify(context.Background(), toks[0])
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		m.verifiedMu.Lock()
		clear(m.verified)
		m.verifiedMu.Unlock()
		if _, err := m.Verify(context.Background(), toks[i%len(toks)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkJWTWithStatus measures the middleware's per-request cost for a JWT access token it
// has seen before, with the expiry, push and status list checks, state cached
// (go test -bench JWTWithStatus ./resource/).
func BenchmarkJWTWithStatus(b *testing.B) {
	as := newFakeAS(b)
	m := newMW(b, as, Config{})
	tok := as.token(as.claims(3))
	if _, err := m.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Verify(context.Background(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPushOwnTokensOnly: a stream that carries only the client's own tokens (a client that is
// not registered as a resource server) is followed, but does not count as push coverage: the
// staleness bound stays the status list's, and the middleware says why, once.
func TestPushOwnTokensOnly(t *testing.T) {
	as := newFakeAS(t)
	as.scope = "own-tokens"
	var logs syncLog
	m := newMW(t, as, Config{Push: true, ClientID: "app", ClientSecret: "s", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	tok := as.token(as.claims(9))
	if _, err := m.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	as.events <- `{"type":"token","jti":"jti-9","client_id":"app","exp":9999999999}`
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := m.Verify(context.Background(), tok); errors.Is(err, ErrRevoked) {
			break // the stream is connected and its events applied
		}
		if time.Now().After(deadline) {
			t.Fatal("the own-tokens stream's event never arrived")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b := m.StalenessBound(); b != time.Minute {
		t.Fatalf("StalenessBound = %v with an own-tokens stream; want the status list's ttl (1m), not 0", b)
	}
	if !strings.Contains(logs.String(), "resource server") || strings.Count(logs.String(), "only this client's own tokens") != 1 {
		t.Fatalf("log: %s", logs.String())
	}
}

// syncLog is a log sink safe for the middleware's goroutines.
type syncLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStatusListFailureNotRefetchedAtOnce: a list that cannot be fetched is not asked for again on
// every request (each would hit the server), only after a short interval; meanwhile tokens naming
// it are refused (fail closed).
func TestStatusListFailureNotRefetchedAtOnce(t *testing.T) {
	as := newFakeAS(t)
	as.listErr = true
	now := time.Now()
	m := newMW(t, as, Config{Now: func() time.Time { return now }})
	for range 5 {
		if _, err := m.Verify(context.Background(), as.token(as.claims(3))); !errors.Is(err, ErrStatusStale) {
			t.Fatalf("list down: %v, want ErrStatusStale", err)
		}
	}
	as.mu.Lock()
	n := as.fetches
	as.listErr = false
	as.mu.Unlock()
	if n != 1 {
		t.Fatalf("5 requests fetched the failing list %d times, want 1", n)
	}
	now = now.Add(listRetryInterval)
	if _, err := m.Verify(context.Background(), as.token(as.claims(3))); err != nil {
		t.Fatalf("after the retry interval, with the list back: %v", err)
	}
}

// TestPushReconnectsPromptlyAfterLongStreams: a server that ends each event stream after a while
// (a Rescind server does, every 10 minutes) does not make the middleware's reconnection back-off
// grow: after a stream that lasted, it reconnects at once, every time.
func TestPushReconnectsPromptlyAfterLongStreams(t *testing.T) {
	healthyStreamOverride.Store(int64(50 * time.Millisecond))
	defer healthyStreamOverride.Store(0)
	as := newFakeAS(t)
	newMW(t, as, Config{Push: true, ClientID: "rs", ClientSecret: "s"})
	opened := func(n int, within time.Duration) {
		t.Helper()
		for deadline := time.Now().Add(within); as.streamsOpened() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("stream %d not opened within %v", n, within)
			}
		}
	}
	opened(1, 10*time.Second)
	for i := 2; i <= 7; i++ {
		time.Sleep(100 * time.Millisecond) // the stream lasts past the healthy age
		as.endStream <- struct{}{}
		opened(i, 2*time.Second) // with a back-off doubling from 200 ms, the 5th wait would be 3.2 s
	}
}
