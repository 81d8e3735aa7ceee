package keys_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// clock is a fake clock shared by every manager of a test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var box, _ = secret.NewBox(bytes.Repeat([]byte("a"), 32))

// instance is a Manager on its own handle of the database at path, as another server instance
// (or a restarted one) would have.
func instance(t *testing.T, path string, c *clock) *keys.Manager {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m, err := keys.Open(context.Background(), keys.Config{Store: st, Box: box, NewSigningKey: pooled, Now: c.Now, RetireAfter: 2 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sealed(t *testing.T, m *keys.Manager, c *clock) (string, string) {
	t.Helper()
	text, err := m.Keyring().Seal(&token.Claims{ClientID: "c", IssuedAt: c.Now(), Expiry: c.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := token.KeyID(text)
	return text, token.SealKey{ID: kid}.KeyIDString()
}

func signed(t *testing.T, m *keys.Manager) (string, string) {
	t.Helper()
	text, err := m.Signer().Sign(token.AccessClaims{ID: "j"}, token.TypeAccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	payload, _ := jsonPart(text, 0)
	json.Unmarshal(payload, &h)
	return text, h.Kid
}

func jsonPart(jwt string, i int) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[i])
}

func states(t *testing.T, m *keys.Manager) map[string]rescind.KeyState {
	t.Helper()
	list, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]rescind.KeyState{}
	for _, in := range list {
		out[in.ID] = in.State
	}
	return out
}

// TestRotationSchedule: a rotation publishes the signing key at once and signs with it only after
// the activation delay, on every instance and after a restart, with no timer; the sealing key is
// in force at once. Rotating immediately skips the wait.
func TestRotationSchedule(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	c := &clock{now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := instance(t, path, c)
	_, firstSign := signed(t, a)
	_, firstSeal := sealed(t, a, c)

	c.advance(time.Minute)
	rot, err := a.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.Now().Add(keys.DefaultActivationDelay); !rot.SigningActivatesAt.Equal(want) {
		t.Fatalf("activates at %v, want %v", rot.SigningActivatesAt, want)
	}
	b := instance(t, path, c) // another instance, started after the rotation
	for name, m := range map[string]*keys.Manager{"rotating instance": a, "other instance": b} {
		if _, kid := signed(t, m); kid != firstSign {
			t.Fatalf("%s signs with %s before the activation; want %s", name, kid, firstSign)
		}
		if _, kid := sealed(t, m, c); kid != rot.SealKeyID {
			t.Fatalf("%s seals with %s; want the new sealing key at once", name, kid)
		}
		if n := len(m.Signer().JWKS(c.Now()).Keys); n != 6 {
			t.Fatalf("%s publishes %d signing keys; want 6 (each chain's new one at once)", name, n)
		}
	}
	if st := states(t, a); st[rot.SigningKeyID] != rescind.KeyNext || st[firstSign] != rescind.KeyActive ||
		st[rot.SealKeyID] != rescind.KeyActive || st[firstSeal] != rescind.KeyRetiring {
		t.Fatalf("states after rotate: %v", st)
	}

	c.advance(keys.DefaultActivationDelay)
	restarted := instance(t, path, c)
	for name, m := range map[string]*keys.Manager{"rotating instance": a, "other instance": b, "restarted": restarted} {
		if _, kid := signed(t, m); kid != rot.SigningKeyID {
			t.Fatalf("%s signs with %s at the activation; want %s", name, kid, rot.SigningKeyID)
		}
	}
	if st := states(t, b); st[rot.SigningKeyID] != rescind.KeyActive || st[firstSign] != rescind.KeyRetiring {
		t.Fatalf("states after activation: %v", st)
	}

	// Immediately: the new key signs at once, everywhere.
	now, err := a.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*keys.Manager{"rotating instance": a, "other instance": b} {
		if _, kid := signed(t, m); kid != now.SigningKeyID {
			t.Fatalf("%s signs with %s after rotate --now; want %s", name, kid, now.SigningKeyID)
		}
	}
	// Old keys retire by themselves once RetireAfter has passed since a newer key took over.
	c.advance(2 * time.Hour)
	if st := states(t, a); st[firstSign] != rescind.KeyRetired || st[rot.SigningKeyID] != rescind.KeyRetired ||
		st[now.SigningKeyID] != rescind.KeyActive {
		t.Fatalf("states past RetireAfter: %v", st)
	}
	if n := len(a.Signer().JWKS(c.Now()).Keys); n != 3 {
		t.Fatalf("%d keys published past RetireAfter; want 3 (one per chain)", n)
	}
}

// TestRetire: a retired key's tokens are refused by every instance once it has refreshed (and by
// a restarted one), the retired key never comes back (restart, rotate again, a stale refresh),
// and the only key in force cannot be retired without a replacement.
func TestRetire(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	c := &clock{now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	var records []rescind.Revocation
	st, _ := sqlite.Open(ctx, path)
	defer st.Close()
	a, err := keys.Open(ctx, keys.Config{Store: st, Box: box, NewSigningKey: pooled, Now: c.Now, OnRetire: func(r rescind.Revocation) { records = append(records, r) }})
	if err != nil {
		t.Fatal(err)
	}
	b := instance(t, path, c)
	jwt, signKid := signed(t, a)
	opaque, sealKid := sealed(t, a, c)

	for _, kid := range []string{signKid, sealKid} {
		_, err := a.Retire(ctx, kid, "admin")
		if !errors.Is(err, rescind.ErrKeyInUse) {
			t.Fatalf("retiring the only key %s: %v; want ErrKeyInUse", kid, err)
		}
	}
	if _, err := a.Retire(ctx, "no-such-key", "admin"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("retiring an unknown key: %v; want ErrNotFound", err)
	}
	c.advance(time.Second)
	rot, err := a.Rotate(ctx, false) // the new signing key is pending: retiring the old one brings it forward
	if err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{signKid, sealKid} {
		r, err := a.Retire(ctx, kid, "admin")
		if err != nil || r.Key.State != rescind.KeyRetired {
			t.Fatalf("Retire(%s) = %+v, %v", kid, r, err)
		}
		if kid == signKid && r.Activated != rot.SigningKeyID {
			t.Fatalf("retiring the signing key in force activated %q; want the pending %s", r.Activated, rot.SigningKeyID)
		}
	}
	if len(records) != 2 || records[0].Kind != rescind.RevokeKey || records[0].Key != signKid {
		t.Fatalf("OnRetire got %+v; want the two key records", records)
	}
	if _, kid := signed(t, a); kid != rot.SigningKeyID {
		t.Fatalf("signs with %s after retirement; want the replacement at once", kid)
	}

	refused := func(name string, m *keys.Manager) {
		t.Helper()
		if _, err := m.Keyring().Open(opaque); !errors.Is(err, token.ErrRetiredKey) {
			t.Fatalf("%s: token of the retired sealing key: %v", name, err)
		}
		if _, err := m.Signer().Verify(jwt, token.TypeAccessToken, c.Now()); err == nil {
			t.Fatalf("%s: JWT of the retired signing key verifies", name)
		}
		for _, k := range m.Signer().JWKS(c.Now()).Keys {
			if k.KeyID == signKid {
				t.Fatalf("%s: retired key still in the JWKS", name)
			}
		}
		if _, kid := signed(t, m); kid == signKid {
			t.Fatalf("%s signs with the retired key", name)
		}
		if _, kid := sealed(t, m, c); kid == sealKid {
			t.Fatalf("%s seals with the retired key", name)
		}
	}
	refused("retiring instance", a)
	if err := b.Refresh(ctx); err != nil { // what a notification or the poll does
		t.Fatal(err)
	}
	refused("other instance", b)
	refused("restarted instance", instance(t, path, c))
	c.advance(time.Second)
	if _, err := b.Rotate(ctx, true); err != nil { // rotating again does not revive it
		t.Fatal(err)
	}
	a.Refresh(ctx)
	refused("after another rotation", a)
	c.advance(keys.DefaultActivationDelay)
	refused("later", a)
	if st := states(t, b); st[signKid] != rescind.KeyRetired || st[sealKid] != rescind.KeyRetired {
		t.Fatalf("states: %v", st)
	}
}

// TestRefreshOnDemand: a key rotated in through another instance is found when a token names it;
// a key that exists nowhere makes the manager read the store at most once per interval.
func TestRefreshOnDemand(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	c := &clock{now: time.Now()}
	a, b := instance(t, path, c), instance(t, path, c)
	c.advance(time.Second)
	rot, err := b.Rotate(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := token.ParseKeyID(rot.SealKeyID)
	if !a.RefreshSealKey(ctx, id) || !a.RefreshSigningKey(ctx, rot.SigningKeyID) {
		t.Fatal("rotated keys not loaded on demand")
	}
	if a.RefreshSealKey(ctx, [4]byte{9, 9, 9, 9}) || a.RefreshSigningKey(ctx, "nope") {
		t.Fatal("an unknown key was reported found")
	}
	if _, kid := sealed(t, a, c); kid != rot.SealKeyID {
		t.Fatal("a refreshed keyring does not seal with the newest key")
	}
}

// TestWrongSecretsKey: keys sealed under another secrets key stop the start with a clear error.
func TestWrongSecretsKey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	instance(t, path, &clock{now: time.Now()})
	st, _ := sqlite.Open(ctx, path)
	defer st.Close()
	wrong, _ := secret.NewBox(bytes.Repeat([]byte("b"), 32))
	if _, err := keys.Open(ctx, keys.Config{Store: st, Box: wrong}); !errors.Is(err, keys.ErrSecretsKeyMismatch) {
		t.Fatalf("wrong secrets key: %v", err)
	}
}

// TestRotationOrderAcrossSkewedClocks: keys are ordered by creation time, and a rotation through
// an instance whose clock is behind another's (within the clock-skew allowance) still sorts after
// a rotation made earlier through the other: every instance then seals and signs with the key of
// the latest rotation, whatever their clocks.
func TestRotationOrderAcrossSkewedClocks(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	ca := &clock{now: time.Unix(1_800_000_000, 0)}
	cb := &clock{now: ca.now.Add(50 * time.Second)} // B's clock is 50 s ahead of A's
	a, b := instance(t, path, ca), instance(t, path, cb)
	if _, err := b.Rotate(ctx, true); err != nil { // an emergency rotation through B...
		t.Fatal(err)
	}
	ca.advance(10 * time.Second)
	cb.advance(10 * time.Second)
	latest, err := a.Rotate(ctx, true) // ...and another through A, 10 s later
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*keys.Manager{"A": a, "B": b} {
		if err := m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		c := ca
		if name == "B" {
			c = cb
		}
		if _, kid := signed(t, m); kid != latest.SigningKeyID {
			t.Errorf("%s signs with %s; want the latest rotation's key %s", name, kid, latest.SigningKeyID)
		}
		if _, kid := sealed(t, m, c); kid != latest.SealKeyID {
			t.Errorf("%s seals with %s; want the latest rotation's key %s", name, kid, latest.SealKeyID)
		}
	}
	if st := states(t, b); st[latest.SigningKeyID] != rescind.KeyActive || st[latest.SealKeyID] != rescind.KeyActive {
		t.Errorf("states on B: %v; want the latest rotation's keys active", st)
	}
}

// rsaPool holds three RSA keys generated once: generating one takes half a second, and every
// Open of a new store makes an RS256 key.
var rsaPool struct {
	once sync.Once
	keys [3]token.SigningKey
	err  error
	next int
	mu   sync.Mutex
}

// pooled is token.NewSigningKey, but an RS256 key reuses one of the three RSA keys of rsaPool
// in turn (its kid and times its own).
func pooled(kid, alg string, created time.Time) (token.SigningKey, error) {
	if alg != token.AlgRS256 {
		return token.NewSigningKey(kid, alg, created)
	}
	rsaPool.once.Do(func() {
		for i := range rsaPool.keys {
			if rsaPool.keys[i], rsaPool.err = token.NewSigningKey("", alg, created); rsaPool.err != nil {
				return
			}
		}
	})
	if rsaPool.err != nil {
		return token.SigningKey{}, rsaPool.err
	}
	rsaPool.mu.Lock()
	k := rsaPool.keys[rsaPool.next%len(rsaPool.keys)]
	rsaPool.next++
	rsaPool.mu.Unlock()
	k.ID, k.CreatedAt = kid, created
	return k, nil
}
