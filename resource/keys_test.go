package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/rescind/rescind/token"
)

// secondKey publishes a second signing key, k2, and returns a token signed by it.
func secondKey(as *fakeAS) string {
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	as.mu.Lock()
	as.extra = []jose.JSONWebKey{{Key: &k2.PublicKey, KeyID: "k2", Algorithm: "ES256", Use: "sig"}}
	as.mu.Unlock()
	return as.sign(as.claims(3), "at+jwt", "k2", jose.ES256, k2)
}

// TestPushedKeyRetirement: a "key" event makes the middleware refuse what the key signed at once,
// tokens it verified before included, and for good: a JWKS that still lists the key (fetched from
// an instance that has not heard of the retirement) does not bring it back.
func TestPushedKeyRetirement(t *testing.T) {
	as := newFakeAS(t)
	byK2 := secondKey(as)
	m := newMW(t, as, Config{Push: true, ClientID: "rs", ClientSecret: "s"})
	deadline := time.Now().Add(10 * time.Second)
	for m.StalenessBound() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("push subscription never became live")
		}
		time.Sleep(5 * time.Millisecond)
	}
	byK1 := as.token(as.claims(1))
	for _, tok := range []string{byK1, byK2} {
		if _, err := m.Verify(context.Background(), tok); err != nil {
			t.Fatalf("before the retirement: %v", err)
		}
	}
	as.events <- `{"type":"key","kid":"k2","client_id":"","time":1,"exp":9999999999}`
	for {
		_, err := m.Verify(context.Background(), byK2)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the retired key's token is still accepted")
		}
		time.Sleep(time.Millisecond)
	}
	// The JWKS still lists k2; an unknown-kid refetch happens (another unknown kid), k2 stays out.
	time.Sleep(1100 * time.Millisecond) // past the one-second refetch limit
	m.Verify(context.Background(), as.sign(as.claims(4), "at+jwt", "k9", jose.ES256, as.key))
	if _, err := m.Verify(context.Background(), byK2); err == nil {
		t.Fatal("a JWKS that still lists the retired key brought it back")
	}
	if _, err := m.Verify(context.Background(), byK1); err != nil {
		t.Fatalf("another key's token: %v", err)
	}
}

// TestJWKSRefreshedAtMaxAge: without push, a key withdrawn from the JWKS (retired) stops being
// accepted once the JWKS's max-age has passed, tokens verified before included.
func TestJWKSRefreshedAtMaxAge(t *testing.T) {
	as := newFakeAS(t)
	as.jwksCache = "public, max-age=300"
	byK2 := secondKey(as)
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	m := newMW(t, as, Config{Now: clock, FailOpen: true})
	if _, err := m.Verify(context.Background(), byK2); err != nil {
		t.Fatal(err)
	}
	as.mu.Lock()
	as.extra = nil // k2 retired: it leaves the JWKS
	fetches := as.jwksFetches
	as.mu.Unlock()
	advance(299 * time.Second)
	if _, err := m.Verify(context.Background(), byK2); err != nil {
		t.Fatalf("within the JWKS max-age the cached set is used: %v", err)
	}
	as.mu.Lock()
	if as.jwksFetches != fetches {
		t.Fatalf("the JWKS was fetched %d times within its max-age", as.jwksFetches-fetches)
	}
	as.mu.Unlock()
	advance(2 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := m.Verify(context.Background(), byK2)
		if err != nil {
			if errors.Is(err, ErrRevoked) || errors.Is(err, ErrExpired) {
				t.Fatalf("refused for the wrong reason: %v", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a key gone from the JWKS is still accepted past its max-age")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestKeyWithdrawnWhileVerifying: a key withdrawn while a request is verifying a token it signed
// (between the key lookup and the caching of the verified claims) refuses that token at once and
// for good: neither the request in flight nor the cache it fills brings the key back.
func TestKeyWithdrawnWhileVerifying(t *testing.T) {
	for _, tc := range []struct {
		name     string
		push     bool
		withdraw func(t *testing.T, as *fakeAS, m *Middleware)
	}{
		{"retired by a key event", true, func(t *testing.T, as *fakeAS, m *Middleware) {
			as.events <- `{"type":"key","kid":"k2","client_id":"","time":1,"exp":9999999999}`
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				m.keysMu.RLock()
				_, done := m.retiredKids["k2"]
				m.keysMu.RUnlock()
				if done {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("the key event was never applied")
				}
			}
		}},
		{"dropped by a JWKS refetch", false, func(t *testing.T, as *fakeAS, m *Middleware) {
			as.mu.Lock()
			as.extra = nil
			as.mu.Unlock()
			if err := m.fetchKeys(context.Background()); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newFakeAS(t)
			byK2 := secondKey(as)
			cfg := Config{}
			if tc.push {
				cfg = Config{Push: true, ClientID: "rs", ClientSecret: "s"}
			}
			m := newMW(t, as, cfg)
			for deadline := time.Now().Add(10 * time.Second); tc.push && m.StalenessBound() != 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("push subscription never became live")
				}
			}
			var once sync.Once
			m.hookVerified = func() { once.Do(func() { tc.withdraw(t, as, m) }) }
			if _, err := m.Verify(context.Background(), byK2); !errors.Is(err, errUnknownKey) {
				t.Fatalf("the request in flight: err = %v, want %v", err, errUnknownKey)
			}
			for i := 0; i < 3; i++ {
				if _, err := m.Verify(context.Background(), byK2); !errors.Is(err, errUnknownKey) {
					t.Fatalf("request %d after the withdrawal: err = %v, want %v", i, err, errUnknownKey)
				}
			}
			if _, err := m.Verify(context.Background(), as.token(as.claims(1))); err != nil {
				t.Fatalf("the other key's token: %v", err)
			}
		})
	}
}

// TestKeyReplacedUnderSameKid: a JWKS that publishes another key under a kid the middleware had
// cached verifications for makes those verifications void: the token must verify under the key
// published now.
func TestKeyReplacedUnderSameKid(t *testing.T) {
	as := newFakeAS(t)
	byK2 := secondKey(as)
	m := newMW(t, as, Config{})
	if _, err := m.Verify(context.Background(), byK2); err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	as.mu.Lock()
	as.extra = []jose.JSONWebKey{{Key: &other.PublicKey, KeyID: "k2", Algorithm: "ES256", Use: "sig"}}
	as.mu.Unlock()
	if err := m.fetchKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(context.Background(), byK2); !errors.Is(err, errSignature) {
		t.Fatalf("err = %v, want %v (verified again, under the key published now)", err, errSignature)
	}
}

// livePush returns a middleware subscribed to as's event stream, once the subscription is live.
func livePush(t *testing.T, as *fakeAS) *Middleware {
	t.Helper()
	m := newMW(t, as, Config{Push: true, ClientID: "rs", ClientSecret: "s"})
	for deadline := time.Now().Add(10 * time.Second); m.StalenessBound() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("push subscription never became live")
		}
	}
	return m
}

// opaqueToken returns a Rescind opaque access token sealed under a new key, and the key's id.
func opaqueToken(t *testing.T) (string, string) {
	t.Helper()
	k, err := token.NewSealKey()
	if err != nil {
		t.Fatal(err)
	}
	ring, err := token.NewKeyring(k)
	if err != nil {
		t.Fatal(err)
	}
	text, err := ring.Seal(&token.Claims{ClientID: "app", Subject: "alice", IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return text, k.KeyIDString()
}

// TestOpaqueTokenOfRetiredSealingKey: a "key" event for a sealing key refuses the opaque tokens it
// sealed at once, although the middleware had cached a positive introspection answer for them,
// and without asking the server again.
func TestOpaqueTokenOfRetiredSealingKey(t *testing.T) {
	as := newFakeAS(t)
	as.introActive = true
	m := livePush(t, as)
	text, kid := opaqueToken(t)
	for i := 0; i < 2; i++ {
		if _, err := m.Verify(context.Background(), text); err != nil {
			t.Fatalf("before the retirement: %v", err)
		}
	}
	if n := as.introCalls(); n != 1 {
		t.Fatalf("%d introspections; want 1 (the answer is cached)", n)
	}
	as.events <- `{"type":"key","kid":"` + kid + `","client_id":"","time":1,"exp":9999999999}`
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := m.Verify(context.Background(), text)
		if errors.Is(err, errRetiredKey) {
			break
		}
		if err != nil {
			t.Fatalf("refused for the wrong reason: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the retired sealing key's token is still accepted (a cached introspection answer)")
		}
		time.Sleep(time.Millisecond)
	}
	if n := as.introCalls(); n != 1 {
		t.Fatalf("%d introspections; want none after the retirement (the key id says enough)", n)
	}
}

// TestIntrospectionRacingAnEvent: an introspection answered before a grant revocation's event, and
// received after it, is not cached: the next request asks again, and the server now refuses.
func TestIntrospectionRacingAnEvent(t *testing.T) {
	as := newFakeAS(t)
	as.introActive = true
	m := livePush(t, as)
	text, _ := opaqueToken(t)
	var once sync.Once
	m.hookIntrospected = func() {
		once.Do(func() {
			m.introMu.Lock()
			gen := m.introGen
			m.introMu.Unlock()
			as.events <- `{"type":"grant","grant_id":"g1","client_id":"app","time":1,"exp":9999999999}`
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				m.introMu.Lock()
				applied := m.introGen != gen
				m.introMu.Unlock()
				if applied {
					break
				}
				if time.Now().After(deadline) {
					t.Error("the grant event was never applied")
					return
				}
			}
			as.mu.Lock()
			as.introActive = false // the server has revoked the grant
			as.mu.Unlock()
		})
	}
	m.Verify(context.Background(), text) // answered before the event: accepted this once
	if _, err := m.Verify(context.Background(), text); !errors.Is(err, errInactive) {
		t.Fatalf("after the event: err = %v; want %v (asked again, not a cached answer)", err, errInactive)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestStaleJWKS: without push, a JWKS that cannot be fetched again is trusted for its max-age
// plus a grace period, then every JWT is refused (ErrStatusStale) unless FailOpen: otherwise a
// key the server retired (gone from the JWKS the middleware cannot reach) would be accepted for
// as long as the outage lasts, and a token minted with a stolen key needs no status claim. A JWKS
// that can be fetched is fetched before the token is checked, however long the middleware idled.
func TestStaleJWKS(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failOpen  bool
		reachable bool
		idle      time.Duration
		want      error // nil: accepted
	}{
		{"unreachable, within the grace", false, false, 300*time.Second + jwksGrace - time.Second, nil},
		{"unreachable, past the grace", false, false, 300*time.Second + jwksGrace, ErrStatusStale},
		{"unreachable an hour later", false, false, time.Hour, ErrStatusStale},
		{"unreachable an hour later, FailOpen", true, false, time.Hour, nil},
		{"reachable after an hour idle", false, true, time.Hour, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			as := newFakeAS(t)
			as.jwksCache = "public, max-age=300"
			// What a thief of key k2 mints: no status claim, exp in a year.
			k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			as.mu.Lock()
			as.extra = []jose.JSONWebKey{{Key: &k2.PublicKey, KeyID: "k2", Algorithm: "ES256", Use: "sig"}}
			as.mu.Unlock()
			byK2 := as.sign(with(with(as.claims(5), "status", nil), "exp", time.Now().Unix()+365*86400), "at+jwt", "k2", jose.ES256, k2)
			var blocked atomic.Bool
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if blocked.Load() && strings.HasSuffix(r.URL.Path, "/jwks") {
					return nil, errors.New("unreachable")
				}
				return http.DefaultTransport.RoundTrip(r)
			})}
			var mu sync.Mutex
			now := time.Now()
			clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
			m := newMW(t, as, Config{Now: clock, HTTPClient: hc, FailOpen: tc.failOpen, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if _, err := m.Verify(context.Background(), byK2); err != nil {
				t.Fatal(err)
			}
			blocked.Store(!tc.reachable)
			mu.Lock()
			now = now.Add(tc.idle)
			mu.Unlock()
			// Background refetches have had every chance to fail (or succeed) first.
			m.Verify(context.Background(), byK2)
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
				m.keysMu.RLock()
				busy := m.refilling
				m.keysMu.RUnlock()
				if !busy {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the background refetch never ended")
				}
			}
			_, err := m.Verify(context.Background(), byK2)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
