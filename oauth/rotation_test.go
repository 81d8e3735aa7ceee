package oauth_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/clientreg"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/metrics"
	"github.com/rescind/rescind/internal/revocation"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/internal/statuslist"
	"github.com/rescind/rescind/oauth"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// fakeClock is the server's and the verifiers' clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// keysEnv is a server that issues JWT access tokens, on a fake clock, with its key manager.
type keysEnv struct {
	url   string
	clock *fakeClock
	keys  *keys.Manager
}

func newKeysEnv(t *testing.T) *keysEnv {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	c := &fakeClock{now: time.Date(2031, 3, 1, 12, 0, 0, 0, time.UTC)}
	hash, _ := secret.Hash("s", cheap)
	st.CreateClient(ctx, rescind.Client{ID: "jwt", Name: "jwt", SecretHash: hash, GrantTypes: []string{rescind.GrantClientCredentials},
		TokenFormat: rescind.TokenFormatJWT})
	km, err := keys.Open(ctx, keys.Config{Store: st, Box: testBox, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	state := revocation.NewState()
	reg, _ := clientreg.New(clientreg.Config{Store: st, Now: c.Now})
	met := metrics.New(prometheus.NewRegistry(), func() float64 { return 0 })
	com := revocation.NewCommitter(st, state, nil)
	srv, err := oauth.New(oauth.Config{Issuer: "https://as.example", Clients: reg, Keys: km.Keyring(), Revoked: state, Committer: com,
		Metrics: met, Store: st, Signer: km.Signer(), Statuses: &statuslist.Allocator{}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); com.Close(); st.Close() })
	return &keysEnv{url: hs.URL, clock: c, keys: km}
}

func (e *keysEnv) jwt(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("POST", e.url+"/oauth2/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("jwt", "s")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tr); err != nil || res.StatusCode != 200 {
		t.Fatalf("token: %d %v", res.StatusCode, err)
	}
	return tr.AccessToken
}

// verifier checks JWT signatures as resource servers built on common JOSE libraries do (jose's
// remote key sets, keyfunc): it keeps the JWKS for the max-age of the response it came in, and
// on an unknown kid refetches it early, at most once per five minutes.
type verifier struct {
	jwksURL string
	now     func() time.Time

	set           jose.JSONWebKeySet
	until         time.Time // the cached set's expiry
	lastUnknown   time.Time // the last early refetch for an unknown kid
	fetches       int
	unknownBudget time.Duration
}

var errUnknownKid = errors.New("unknown kid")

func (v *verifier) fetch(t *testing.T) {
	t.Helper()
	res, err := http.Get(v.jwksURL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	maxAge := 0
	for _, d := range strings.Split(res.Header.Get("Cache-Control"), ",") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(d), "max-age="); ok {
			maxAge, _ = strconv.Atoi(s)
		}
	}
	if maxAge <= 0 {
		t.Fatalf("JWKS without a max-age: %q", res.Header.Get("Cache-Control"))
	}
	v.set, v.until = set, v.now().Add(time.Duration(maxAge)*time.Second)
	v.fetches++
}

func (v *verifier) verify(t *testing.T, text string) error {
	t.Helper()
	if v.until.IsZero() || !v.now().Before(v.until) {
		v.fetch(t)
	}
	jws, err := jose.ParseSigned(text, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		return err
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := v.set.Key(kid)
	if len(keys) == 0 && (v.lastUnknown.IsZero() || v.now().Sub(v.lastUnknown) >= 5*time.Minute) {
		v.lastUnknown = v.now()
		v.fetch(t)
		keys = v.set.Key(kid)
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w %s", errUnknownKid, kid)
	}
	_, err = jws.Verify(keys[0])
	return err
}

// kidOf returns the kid of a JWT.
func kidOf(t *testing.T, text string) string {
	t.Helper()
	kid, err := token.JWTKeyID(text)
	if err != nil {
		t.Fatal(err)
	}
	return kid
}

// TestJWTRotationNeverRefused issues a JWT every ten seconds of a fake clock for 25 minutes,
// across two rotations, and has it checked by verifiers that first fetched the JWKS at every
// phase of its cache lifetime, some of which an attacker made spend their early refetch (a token
// naming a bogus kid) just before each rotation. No token is ever refused, and every signing key
// is actually used.
func TestJWTRotationNeverRefused(t *testing.T) {
	e := newKeysEnv(t)
	ctx := context.Background()
	var vs []*verifier
	for range 12 {
		vs = append(vs, &verifier{jwksURL: e.url + "/.well-known/jwks.json", now: e.clock.Now})
	}
	bogus := e.jwt(t)
	bogus = strings.Replace(bogus, bogus[:strings.IndexByte(bogus, '.')], // a header naming a kid nobody has
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImJvZ3VzIiwidHlwIjoiYXQrand0In0", 1)
	oldest := e.jwt(t) // a token of the first key, checked until the end
	kids := map[string]bool{}
	rotations := map[int]bool{30: true, 90: true} // steps (of 10 s) at which to rotate
	for step := range 150 {
		if rotations[step] {
			for i, v := range vs {
				if i%2 == 0 {
					v.verify(t, bogus) // spends the early refetch: the next five minutes rely on max-age alone
				}
			}
			if _, err := e.keys.Rotate(ctx, false); err != nil {
				t.Fatal(err)
			}
		}
		tok := e.jwt(t)
		kids[kidOf(t, tok)] = true
		for i, v := range vs {
			if step >= i*3 { // verifier i first fetches the JWKS at step 3i: every phase of the 300 s lifetime
				for _, x := range []string{tok, oldest} {
					if err := v.verify(t, x); err != nil {
						t.Fatalf("step %d (%v after start): verifier %d refused a token of key %s: %v",
							step, time.Duration(step)*10*time.Second, i, kidOf(t, x), err)
					}
				}
			}
		}
		e.clock.advance(10 * time.Second)
	}
	if len(kids) != 3 {
		t.Fatalf("tokens were signed by %d keys; want 3 (two rotations took effect)", len(kids))
	}
}

// TestJWTRotateNow: rotating "now" (the emergency path) signs with the new key at once; a verifier
// that has spent its early refetch refuses the new tokens until its cached JWKS expires, at most
// five minutes later, which is what the documentation warns of.
func TestJWTRotateNow(t *testing.T) {
	e := newKeysEnv(t)
	ctx := context.Background()
	jwks := e.url + "/.well-known/jwks.json"
	spent := &verifier{jwksURL: jwks, now: e.clock.Now}
	fresh := &verifier{jwksURL: jwks, now: e.clock.Now}
	before := e.jwt(t)
	for _, v := range []*verifier{spent, fresh} {
		if err := v.verify(t, before); err != nil {
			t.Fatal(err)
		}
	}
	bad := strings.Replace(before, before[:strings.IndexByte(before, '.')], "eyJhbGciOiJFUzI1NiIsImtpZCI6ImJvZ3VzIiwidHlwIjoiYXQrand0In0", 1)
	spent.verify(t, bad)
	e.clock.advance(time.Second)
	rot, err := e.keys.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	tok := e.jwt(t)
	if kidOf(t, tok) != rot.SigningKeyID {
		t.Fatal("rotate --now does not sign with the new key at once")
	}
	if err := fresh.verify(t, tok); err != nil {
		t.Fatalf("a verifier with its early refetch available: %v", err)
	}
	if err := spent.verify(t, tok); !errors.Is(err, errUnknownKid) {
		t.Fatalf("a verifier that spent its early refetch: %v; want it to refuse (the documented trade-off)", err)
	}
	refusedFor := time.Duration(0)
	for spent.verify(t, tok) != nil {
		e.clock.advance(10 * time.Second)
		refusedFor += 10 * time.Second
		if refusedFor > token.JWKSMaxAge {
			t.Fatal("refused past the JWKS max-age")
		}
	}
	t.Logf("refused for %v after rotate --now (bound: the JWKS max-age, %v)", refusedFor, token.JWKSMaxAge)
	if err := spent.verify(t, before); err != nil {
		t.Fatalf("the old key's token after rotate --now: %v", err)
	}
}
