package keys_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// signedWith signs with alg through m and returns the token and its kid.
func signedWith(t *testing.T, m *keys.Manager, alg string) (string, string) {
	t.Helper()
	text, err := m.SignWith(context.Background(), alg, token.AccessClaims{ID: "j"}, "JWT")
	if err != nil {
		t.Fatalf("SignWith(%s): %v", alg, err)
	}
	kid, err := token.JWTKeyID(text)
	if err != nil {
		t.Fatal(err)
	}
	return text, kid
}

// chainKeys returns the stored signing keys of m of alg, by kid, with their states.
func chainKeys(t *testing.T, m *keys.Manager, chain string) map[string]rescind.KeyState {
	t.Helper()
	list, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]rescind.KeyState{}
	for _, k := range list {
		if k.Use == keys.UseSign && k.Chain == chain {
			out[k.ID] = k.State
		}
	}
	return out
}

// TestChainCreatedOnceAcrossInstances: a server starts with no RS256 key (generating one costs
// half a second); the first SignWith(RS256) creates one, and instances asking at the same time
// all end up with the same single key, which every instance and a restarted one then sign and
// verify with. SignWith of the configured algorithm uses the access tokens' key.
func TestChainCreatedOnceAcrossInstances(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	c := &clock{now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, b := instance(t, path, c), instance(t, path, c)
	if got := chainKeys(t, a, token.AlgRS256); len(got) != 0 {
		t.Fatalf("RS256 keys at start: %v; want none until needed", got)
	}
	_, access := signed(t, a)
	if _, kid := signedWith(t, a, token.AlgES256); kid != access {
		t.Fatalf("SignWith(ES256) used %s; want the access tokens' ES256 key %s", kid, access)
	}
	if got := chainKeys(t, a, token.AlgES256); len(got) != 0 {
		t.Fatalf("an ES256 chain was created although the access tokens' key is ES256: %v", got)
	}

	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i, m := range []*keys.Manager{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.Ensure(ctx, token.AlgRS256)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	got := chainKeys(t, a, token.AlgRS256)
	if len(got) != 1 {
		t.Fatalf("RS256 keys after concurrent first use: %v; want exactly one", got)
	}
	var rsKid string
	for kid, st := range got {
		if rsKid = kid; st != rescind.KeyActive {
			t.Fatalf("the first RS256 key is %s; want active", st)
		}
	}
	restarted := instance(t, path, c)
	for name, m := range map[string]*keys.Manager{"a": a, "b": b, "restarted": restarted} {
		text, kid := signedWith(t, m, token.AlgRS256)
		if kid != rsKid {
			t.Fatalf("%s signs RS256 with %s; want %s", name, kid, rsKid)
		}
		if jws, _ := token.ParseJWS(text); jws == nil || jws.Alg != token.AlgRS256 {
			t.Fatalf("%s: not an RS256 token", name)
		}
		for other, v := range map[string]*keys.Manager{"a": a, "b": b, "restarted": restarted} {
			if _, err := v.Signer().Verify(text, "JWT", c.Now()); err != nil {
				t.Fatalf("%s's RS256 token refused by %s: %v", name, other, err)
			}
		}
	}
	if got := chainKeys(t, a, token.AlgRS256); len(got) != 1 {
		t.Fatalf("RS256 keys after every instance signed: %v; want one", got)
	}
	var algs []string
	for _, k := range b.Signer().JWKS(c.Now()).Keys {
		if k.Use != "sig" {
			t.Fatalf("JWKS key %s has use %q", k.KeyID, k.Use)
		}
		algs = append(algs, k.Algorithm)
	}
	if !slices.Equal(algs, []string{token.AlgES256, token.AlgRS256}) {
		t.Fatalf("JWKS algs = %v; want ES256 then RS256", algs)
	}
	if err := a.Ensure(ctx, "HS256"); err == nil {
		t.Fatal("Ensure(HS256) succeeded")
	}
}

// TestRotateAndRetirePerChain: a rotation rotates every chain (each new key published at once,
// signing after the activation delay); retiring the only active key of a chain is refused;
// retiring the RS256 key in force brings its chain's next key in at once and leaves the access
// tokens' key alone; the retired key's tokens are refused by every instance and a restarted one,
// and it leaves their JWKS.
func TestRotateAndRetirePerChain(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	c := &clock{now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, b := instance(t, path, c), instance(t, path, c)
	_, access := signed(t, a)
	before, rs1 := signedWith(t, a, token.AlgRS256)
	if _, err := a.Retire(ctx, rs1, "test"); !errors.Is(err, rescind.ErrKeyInUse) {
		t.Fatalf("retiring the only RS256 key: %v; want ErrKeyInUse", err)
	}

	c.advance(time.Minute)
	rot, err := a.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rot.Signing) != 2 || rot.Signing[0].ID != rot.SigningKeyID || rot.Signing[0].Alg != token.AlgES256 ||
		rot.Signing[1].Alg != token.AlgRS256 {
		t.Fatalf("rotation created %+v; want the ES256 key then an RS256 key", rot.Signing)
	}
	rs2 := rot.Signing[1].ID
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*keys.Manager{"a": a, "b": b} {
		if _, kid := signedWith(t, m, token.AlgRS256); kid != rs1 {
			t.Fatalf("%s signs RS256 with %s before the activation; want %s", name, kid, rs1)
		}
		if n := len(m.Signer().JWKS(c.Now()).Keys); n != 4 {
			t.Fatalf("%s publishes %d keys; want 4 (two per chain)", name, n)
		}
	}
	if st := chainKeys(t, b, token.AlgRS256); st[rs1] != rescind.KeyActive || st[rs2] != rescind.KeyNext {
		t.Fatalf("RS256 states after rotate: %v", st)
	}

	// The RS256 key in force is compromised: retire it; its chain's next key takes over at once.
	ret, err := b.Retire(ctx, rs1, "test")
	if err != nil {
		t.Fatal(err)
	}
	if ret.Activated != rs2 || ret.Key.State != rescind.KeyRetired || ret.Key.Algorithm != token.AlgRS256 {
		t.Fatalf("retirement %+v; want %s activated", ret, rs2)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := instance(t, path, c)
	for name, m := range map[string]*keys.Manager{"a": a, "b": b, "restarted": restarted} {
		if _, err := m.Signer().Verify(before, "JWT", c.Now()); !errors.Is(err, token.ErrBadJWT) {
			t.Fatalf("%s accepts the retired RS256 key's token: %v", name, err)
		}
		if _, kid := signedWith(t, m, token.AlgRS256); kid != rs2 {
			t.Fatalf("%s signs RS256 with %s after the retirement; want %s at once", name, kid, rs2)
		}
		if _, kid := signed(t, m); kid != access {
			t.Fatalf("%s signs access tokens with %s; the RS256 retirement must not touch %s", name, kid, access)
		}
		for _, k := range m.Signer().JWKS(c.Now()).Keys {
			if k.KeyID == rs1 {
				t.Fatalf("%s still publishes the retired key", name)
			}
		}
	}
	if st := chainKeys(t, a, ""); st[access] != rescind.KeyActive || st[rot.SigningKeyID] != rescind.KeyNext {
		t.Fatalf("ES256 states after retiring an RS256 key: %v", st)
	}
	// Never back: a later rotation, the clock, a restart.
	c.advance(keys.DefaultActivationDelay)
	if _, err := a.Rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	again := instance(t, path, c)
	if st := chainKeys(t, again, token.AlgRS256); st[rs1] != rescind.KeyRetired || len(st) != 3 {
		t.Fatalf("RS256 states after another rotation: %v", st)
	}
	if _, err := again.Signer().Verify(before, "JWT", c.Now()); err == nil {
		t.Fatal("the retired RS256 key came back")
	}
}

// TestFirstKeySettles: with FirstKeySettle (a shared store), the first key of a chain does not
// sign before that long after it was stored, whichever instance made it, so that every instance
// publishes it in its JWKS before a token naming it leaves; a key already in force signs at once.
func TestFirstKeySettles(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	const settle = 300 * time.Millisecond
	open := func() *keys.Manager {
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		m, err := keys.Open(ctx, keys.Config{Store: st, Box: box, RetireAfter: 2 * time.Hour, FirstKeySettle: settle})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	a, b := open(), open()
	start := time.Now()
	if err := a.Ensure(ctx, token.AlgRS256); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < settle {
		t.Fatalf("the instance that made the first RS256 key signed with it %v after; want at least %v", d, settle)
	}
	start = time.Now()
	if err := a.Ensure(ctx, token.AlgRS256); err != nil {
		t.Fatal(err)
	}
	signedWith(t, a, token.AlgRS256)
	if d := time.Since(start); d >= settle {
		t.Fatalf("a key in force waited %v", d)
	}
	// Another instance making the first EdDSA key while this one loads it: neither signs early.
	var wg sync.WaitGroup
	var errs [2]error
	var took [2]time.Duration
	for i, m := range []*keys.Manager{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := time.Now()
			errs[i] = m.Ensure(ctx, token.AlgEdDSA)
			took[i] = time.Since(s)
		}()
	}
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || took[i] < settle/2 {
			t.Fatalf("instance %d: Ensure(EdDSA) = %v after %v; want it to wait for the key to settle", i, errs[i], took[i])
		}
	}
}
