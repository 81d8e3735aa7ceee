package keys_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/store/postgres"
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

// TestEveryChainMadeAtFirstStart: the first Open of a store makes the first key of every
// chain (ES256 for access tokens, EdDSA and RS256 for ID tokens and SETs), each in force at once
// and published in the JWKS the instance serves from its start; another instance, and several
// SignWith at once on both, use those keys and make none (re-audit 3B #2: the RS256 key was
// made on first need and signed while JWKS copies served before lacked it). SignWith of the
// configured algorithm uses the access tokens' key.
func TestEveryChainMadeAtFirstStart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	c := &clock{now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := instance(t, path, c)
	served := map[string]string{} // the JWKS a serves from its start, kid to alg
	for _, k := range a.Signer().JWKS(c.Now()).Keys {
		served[k.KeyID] = k.Algorithm
	}
	b := instance(t, path, c)
	_, access := signed(t, a)
	if _, kid := signedWith(t, a, token.AlgES256); kid != access {
		t.Fatalf("SignWith(ES256) used %s; want the access tokens' ES256 key %s", kid, access)
	}
	if got := chainKeys(t, a, token.AlgES256); len(got) != 0 {
		t.Fatalf("an ES256 chain was created although the access tokens' key is ES256: %v", got)
	}
	first := map[string]string{}
	for _, alg := range []string{token.AlgEdDSA, token.AlgRS256} {
		got := chainKeys(t, a, alg)
		if len(got) != 1 {
			t.Fatalf("%s keys after the first start: %v; want exactly one", alg, got)
		}
		for kid, st := range got {
			if st != rescind.KeyActive || served[kid] != alg {
				t.Fatalf("the first %s key %s is %s, in the first JWKS as %q; want active, listed", alg, kid, st, served[kid])
			}
			first[alg] = kid
		}
	}
	// Many signers at once, on both instances: every kid is one the first JWKS listed.
	var wg sync.WaitGroup
	kids := make([]string, 16)
	errs := make([]error, 16)
	for i := range kids {
		m, alg := []*keys.Manager{a, b}[i%2], []string{token.AlgRS256, token.AlgEdDSA}[i/2%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			text, err := m.SignWith(ctx, alg, token.AccessClaims{ID: "j"}, "JWT")
			if errs[i] = err; err == nil {
				kids[i], errs[i] = token.JWTKeyID(text)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for i, kid := range kids {
		if alg := []string{token.AlgRS256, token.AlgEdDSA}[i/2%2]; kid != first[alg] {
			t.Fatalf("SignWith(%s) %d signed with %s; want %s, listed from the start", alg, i, kid, first[alg])
		}
	}
	rsKid := first[token.AlgRS256]
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
	if want := []string{token.AlgES256, token.AlgEdDSA, token.AlgRS256}; !slices.Equal(algs, want) {
		t.Fatalf("JWKS algs = %v; want %v", algs, want)
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
	if len(rot.Signing) != 3 || rot.Signing[0].ID != rot.SigningKeyID || rot.Signing[0].Alg != token.AlgES256 ||
		rot.Signing[1].Alg != token.AlgEdDSA || rot.Signing[2].Alg != token.AlgRS256 {
		t.Fatalf("rotation created %+v; want the ES256 key, then an EdDSA and an RS256 key", rot.Signing)
	}
	rs2 := rot.Signing[2].ID
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*keys.Manager{"a": a, "b": b} {
		if _, kid := signedWith(t, m, token.AlgRS256); kid != rs1 {
			t.Fatalf("%s signs RS256 with %s before the activation; want %s", name, kid, rs1)
		}
		if n := len(m.Signer().JWKS(c.Now()).Keys); n != 6 {
			t.Fatalf("%s publishes %d keys; want 6 (two per chain)", name, n)
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

// TestChainAddedToARunningDeploymentWaits: a deployment made by a release that created chains
// on first need has served JWKS without an RS256 key. Upgraded (PostgreSQL, two instances), the
// first start makes the RS256 and EdDSA chains' first keys, published at once and signing only
// after the activation delay (the JWKS max-age plus a minute), like a rotation's: during that
// window many SignWith at once on both instances, and on an instance notified of the key, sign
// nothing with it (re-audit 3B #2: FirstKeySettle held back only the caller that made the key);
// from its activation every instance signs with it. A chain whose pending key is retired gets a
// new one made at run time by one instance, which the notified other one does not use early
// either.
func TestChainAddedToARunningDeploymentWaits(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	c := &clock{now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	openStore := func() rescind.Store {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	open := func() *keys.Manager {
		m, err := keys.Open(ctx, keys.Config{Store: openStore(), Box: box, NewSigningKey: pooled, Now: c.Now, RetireAfter: 2 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// What the older release left: the access tokens' ES256 key, an hour old, and no other chain.
	old, err := token.NewSigningKey("olderes256key", token.AlgES256, c.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	der, _ := old.MarshalPrivate()
	sealedKey, err := box.Seal(der, []byte(old.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := openStore().CreateKey(ctx, rescind.Key{ID: old.ID, Use: keys.UseSign, Algorithm: old.Alg, CreatedAt: old.CreatedAt,
		ActivatesAt: old.CreatedAt, Sealed: sealedKey}); err != nil {
		t.Fatal(err)
	}

	a := open()
	served := map[string]bool{}
	for _, k := range a.Signer().JWKS(c.Now()).Keys {
		served[k.KeyID] = true
	}
	b := open()
	rs := chainKeys(t, b, token.AlgRS256)
	var kid string
	for k, st := range rs {
		if kid = k; st != rescind.KeyNext || !served[k] {
			t.Fatalf("the upgraded deployment's first RS256 key is %s, listed from the start %v; want next, listed", st, served[k])
		}
	}
	if len(rs) != 1 {
		t.Fatalf("RS256 keys after two instances started: %v; want one", rs)
	}
	refused := func(when, alg string, ms ...*keys.Manager) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				text, err := ms[i%len(ms)].SignWith(ctx, alg, token.AccessClaims{ID: "j"}, "secevent+jwt")
				if err == nil {
					k, _ := token.JWTKeyID(text)
					err = fmt.Errorf("signed with %s", k)
				} else if errors.Is(err, token.ErrNoSigningKey) {
					err = nil
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatalf("%s: SignWith(%s) before the new key's activation: %v; want ErrNoSigningKey", when, alg, err)
		}
	}
	refused("at the start", token.AlgRS256, a, b)
	if _, kid := signed(t, a); kid != old.ID {
		t.Fatalf("access tokens signed with %s; want the older release's key %s", kid, old.ID)
	}

	// EdDSA's pending key (made with the RS256 one) is retired before it ever signed: the next
	// SignWith(EdDSA), on b, makes another, which signs only after the delay, on b and on a,
	// notified of it.
	c.advance(time.Minute)
	for k := range chainKeys(t, a, token.AlgEdDSA) {
		if _, err := a.Retire(ctx, k, "test"); err != nil {
			t.Fatal(err)
		}
	}
	refused("a new EdDSA key made at run time", token.AlgEdDSA, b)
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	refused("a new EdDSA key, on the notified instance", token.AlgEdDSA, a, b)
	var ed string
	for k, st := range chainKeys(t, a, token.AlgEdDSA) {
		if st == rescind.KeyNext {
			ed = k
		}
	}
	edListed := false
	for _, k := range a.Signer().JWKS(c.Now()).Keys {
		edListed = edListed || k.KeyID == ed
	}
	if ed == "" || !edListed {
		t.Fatalf("the EdDSA key made at run time: %q, in a's JWKS: %v; want a next key, listed", ed, edListed)
	}

	c.advance(keys.DefaultActivationDelay - time.Minute - time.Second)
	if err := b.Refresh(ctx); err != nil { // b's notification, or its poll
		t.Fatal(err)
	}
	refused("a second before the activation", token.AlgRS256, a, b)
	c.advance(time.Second)
	for name, m := range map[string]*keys.Manager{"a": a, "b": b} {
		if _, got := signedWith(t, m, token.AlgRS256); got != kid {
			t.Fatalf("%s signs RS256 with %s at the activation; want %s", name, got, kid)
		}
	}
	refused("the run-time EdDSA key, before its own activation", token.AlgEdDSA, a, b)
	c.advance(time.Minute)
	for name, m := range map[string]*keys.Manager{"a": a, "b": b} {
		if _, got := signedWith(t, m, token.AlgEdDSA); got != ed {
			t.Fatalf("%s signs EdDSA with %s at its activation; want %s", name, got, ed)
		}
	}
}

// TestSigningAlgChangeKeepsEveryAlgorithmSigned: the operator changes --signing-alg from ES256 to
// EdDSA and rotates. Chain "" signed ES256 (ID tokens asked for ES256 too) until the new EdDSA key
// takes over; the rotation publishes the ES256 chain's first key at once and it takes over at
// the same moment, so ES256 never lacks a key published beforehand.
func TestSigningAlgChangeKeepsEveryAlgorithmSigned(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	c := &clock{now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := instance(t, path, c)
	_, es := signedWith(t, a, token.AlgES256)
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := keys.Open(ctx, keys.Config{Store: st, Box: box, NewSigningKey: pooled, Now: c.Now, RetireAfter: 2 * time.Hour,
		SigningAlg: token.AlgEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	c.advance(time.Minute)
	rot, err := b.Rotate(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	var newES string
	for _, k := range rot.Signing {
		if k.Alg == token.AlgES256 && k.ID != rot.SigningKeyID {
			newES = k.ID
		}
	}
	if newES == "" {
		t.Fatalf("the rotation to EdDSA made no ES256 key: %+v", rot.Signing)
	}
	if _, kid := signedWith(t, b, token.AlgES256); kid != es {
		t.Fatalf("before the activation ES256 signs with %s; want chain \"\"'s %s", kid, es)
	}
	c.advance(keys.DefaultActivationDelay)
	for name, m := range map[string]*keys.Manager{"a": a, "b": b} {
		if err := m.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if _, kid := signedWith(t, m, token.AlgES256); kid != newES {
			t.Fatalf("%s signs ES256 with %s at the activation; want %s, published at the rotation", name, kid, newES)
		}
		if _, kid := signed(t, m); kid != rot.SigningKeyID {
			t.Fatalf("%s signs access tokens with %s; want the new EdDSA key %s", name, kid, rot.SigningKeyID)
		}
	}
}
