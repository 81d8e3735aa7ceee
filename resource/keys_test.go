package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
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
