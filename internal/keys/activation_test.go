package keys_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

// instanceWith is instance with cfg (its Store, Box, NewSigningKey and Now filled in).
func instanceWith(t *testing.T, path string, c *clock, cfg keys.Config) *keys.Manager {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store, cfg.Box, cfg.NewSigningKey, cfg.Now = st, box, pooled, c.Now
	m, err := keys.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// upgradedStore writes, at path, the keys of a deployment of a release that made the chains of
// the other algorithms on first need: one ES256 key of chain "", created at created. It returns
// that key's kid.
func upgradedStore(t *testing.T, path string, created time.Time) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	old, err := token.NewSigningKey("olderes256key", token.AlgES256, created)
	if err != nil {
		t.Fatal(err)
	}
	der, err := old.MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := box.Seal(der, []byte(old.ID))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateKey(ctx, rescind.Key{ID: old.ID, Use: keys.UseSign, Algorithm: old.Alg, CreatedAt: created,
		ActivatesAt: created, Sealed: sealed}); err != nil {
		t.Fatal(err)
	}
	return old.ID
}

// TestNewKeySignsOnlyOnceEveryCachedJWKSHasIt: a new signing key (a rotation's, or the first key
// of a chain made after the first start) is published at once and signs on no instance before
// every JWKS served without it has left the verifiers' caches, however far apart the instances'
// clocks are (within --clock-skew) and however late an instance learns of the key (a lost
// notification: within --poll-interval). The JWKS a verifier keeps longest without the key is
// one fetched from an instance that has not learnt of it yet, just before its poll: cached until
// the poll interval plus the JWKS max-age after the key was made.
func TestNewKeySignsOnlyOnceEveryCachedJWKSHasIt(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		skew, poll  time.Duration
		offsets     []time.Duration // each instance's clock, from real time; the first makes the key
		upgradedAge time.Duration   // if set: the chains are made by the first start of an upgraded deployment whose key is this old
	}{
		{name: "rotation, other instance 90s ahead", skew: 90 * time.Second, poll: time.Second, offsets: []time.Duration{0, 90 * time.Second}},
		{name: "rotation, other instance 5m ahead", skew: 5 * time.Minute, poll: time.Second, offsets: []time.Duration{0, 5 * time.Minute}},
		{name: "rotation, rotating instance 1h behind", skew: time.Hour, poll: time.Second, offsets: []time.Duration{-time.Hour, 0}},
		{name: "rotation, poll 10m", skew: time.Minute, poll: 10 * time.Minute, offsets: []time.Duration{0, time.Minute}},
		{name: "rotation, defaults", offsets: []time.Duration{0, time.Minute}},
		{name: "chain made on an upgraded deployment, other instance 5m ahead", skew: 5 * time.Minute, poll: 30 * time.Second,
			offsets: []time.Duration{0, 5 * time.Minute}, upgradedAge: time.Hour},
		{name: "chain made on an upgraded deployment by an instance 1h behind", skew: time.Hour, poll: time.Second,
			offsets: []time.Duration{-time.Hour, 0}, upgradedAge: 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			clocks := make([]*clock, len(tc.offsets))
			for i, off := range tc.offsets {
				clocks[i] = &clock{now: t0.Add(off)}
			}
			cfg := keys.Config{ClockSkew: tc.skew, PollInterval: tc.poll}
			poll := tc.poll // zero skew: keys.DefaultClockSkew
			ms := make([]*keys.Manager, len(clocks))
			served := map[string]bool{} // the JWKS verifiers fetched before the new keys
			if tc.upgradedAge > 0 {
				served[upgradedStore(t, path, t0.Add(-tc.upgradedAge))] = true
				for i := range ms { // the first instance's first start makes the chains
					ms[i] = instanceWith(t, path, clocks[i], cfg)
				}
			} else {
				for i := range ms {
					ms[i] = instanceWith(t, path, clocks[i], cfg)
				}
				for _, k := range ms[0].Signer().JWKS(clocks[0].Now()).Keys {
					served[k.KeyID] = true
				}
				if _, err := ms[0].Rotate(ctx, false); err != nil {
					t.Fatal(err)
				}
			}
			// Real time from the new keys' creation until the last JWKS without them expires.
			cachedFor := poll + token.JWKSMaxAge
			refreshed := false
			for step := time.Duration(0); step < cachedFor; step += 15 * time.Second {
				if !refreshed && step >= poll {
					for _, m := range ms[1:] {
						if err := m.Refresh(ctx); err != nil {
							t.Fatal(err)
						}
					}
					refreshed = true
				}
				for i, m := range ms {
					for _, alg := range token.SigningAlgorithms {
						text, err := m.Signer().SignWith(alg, token.AccessClaims{ID: "j"}, "JWT")
						if err != nil {
							continue // nothing signs with alg yet: safe
						}
						if kid, _ := token.JWTKeyID(text); !served[kid] {
							t.Fatalf("%v after the new keys were made (a JWKS without them is cached %v more), instance %d (clock %+v) signs %s with %s, which no cached JWKS lists",
								step, cachedFor-step, i, tc.offsets[i], alg, kid)
						}
					}
				}
				for _, c := range clocks {
					c.advance(15 * time.Second)
				}
			}
			// Once every cached JWKS has them (and the delay's margin has passed), the new keys sign.
			for _, c := range clocks {
				c.advance(tc.skew + 2*time.Minute)
			}
			for i, m := range ms {
				if err := m.Refresh(ctx); err != nil {
					t.Fatal(err)
				}
				text, err := m.Signer().SignWith(token.AlgRS256, token.AccessClaims{ID: "j"}, "JWT")
				if err != nil {
					t.Fatalf("instance %d: RS256 after the activation delay: %v", i, err)
				}
				if kid, _ := token.JWTKeyID(text); served[kid] && tc.upgradedAge == 0 {
					t.Errorf("instance %d: still signs RS256 with the old key %s after the activation delay", i, kid)
				}
			}
		})
	}
}
