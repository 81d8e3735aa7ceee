package keys_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/token"
)

// TestReadyMakesAChainWithNoLiveKeyAgain: on an upgraded deployment the first start publishes
// an RS256 key that signs only after the activation delay; an operator retires that "next" key
// (allowed: it is not in force). The token endpoint asks Ready(RS256) before every exchange that
// would issue an RS256 ID token (503 while false): Ready must make the chain again, so ID tokens
// resume after the activation delay (before: Ready stayed false forever, only a SignWith from
// elsewhere made the chain again). The new key is published at once and signs only after the
// activation delay, like any new key. The control case differs only in the retirement: a chain
// whose key is coming gets no second key.
func TestReadyMakesAChainWithNoLiveKeyAgain(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		retire  bool
		byOther bool // retired through another instance, after this one saw the key coming
	}{
		{name: "next key retired here", retire: true},
		{name: "next key retired by another instance", retire: true, byOther: true},
		{name: "next key not retired (control)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "db")
			c := &clock{now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}
			upgradedStore(t, path, c.Now().Add(-time.Hour))
			// Ready reads the store at most once per MinRefreshInterval (wall time): the test
			// asks again at once.
			cfg := keys.Config{RetireAfter: 2 * time.Hour, MinRefreshInterval: time.Nanosecond}
			m := instanceWith(t, path, c, cfg)
			other := instanceWith(t, path, c, cfg)
			var next string
			for kid := range chainKeys(t, m, token.AlgRS256) {
				next = kid
			}
			if m.Ready(token.AlgRS256) {
				t.Fatal("Ready(RS256) right after the upgrade's first start: true; want false until the activation delay has passed")
			}
			m.WaitEnsure() // m now knows the key is coming
			if tc.retire {
				retirer := m
				if tc.byOther {
					retirer = other
				}
				if _, err := retirer.Retire(ctx, next, "admin:ops"); err != nil {
					t.Fatalf("retiring the next RS256 key: %v", err)
				}
				if err := m.Refresh(ctx); err != nil { // the notification, or the poll
					t.Fatal(err)
				}
			}
			if m.Ready(token.AlgRS256) {
				t.Fatal("Ready(RS256) with no RS256 key in force: true")
			}
			m.WaitEnsure()
			made := c.Now()
			list, err := m.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var live []keys.Info
			for _, k := range list {
				if k.Chain == token.AlgRS256 && k.RetiredAt.IsZero() {
					live = append(live, k)
				}
			}
			if len(live) != 1 {
				t.Fatalf("RS256 keys not retired after Ready: %v; want exactly one", live)
			}
			key := live[0]
			if tc.retire == (key.ID == next) {
				t.Fatalf("RS256 key not retired: %s (the retired-or-not key was %s)", key.ID, next)
			}
			if tc.retire {
				if key.State != rescind.KeyNext || key.ActivatesAt.Before(made.Add(keys.DefaultActivationDelay)) {
					t.Fatalf("the chain's new key %s: %s, activates %v; want next, from %v (the activation delay)",
						key.ID, key.State, key.ActivatesAt, made.Add(keys.DefaultActivationDelay))
				}
				published := false
				for _, k := range m.Signer().JWKS(c.Now()).Keys {
					published = published || k.KeyID == key.ID
				}
				if !published {
					t.Fatalf("the chain's new key %s is not in the JWKS before it signs", key.ID)
				}
			}
			c.advance(key.ActivatesAt.Sub(c.Now()) - time.Second)
			if m.Ready(token.AlgRS256) {
				t.Fatal("Ready(RS256) a second before the new key activates: true")
			}
			m.WaitEnsure()
			if got := len(chainKeys(t, m, token.AlgRS256)); got != map[bool]int{true: 2, false: 1}[tc.retire] {
				t.Fatalf("RS256 keys after asking again while the new key is coming: %v", chainKeys(t, m, token.AlgRS256))
			}
			c.advance(time.Second)
			if !m.Ready(token.AlgRS256) {
				t.Fatalf("Ready(RS256) once the new key activates: false; keys %v", chainKeys(t, m, token.AlgRS256))
			}
			if _, kid := signedWith(t, m, token.AlgRS256); kid != key.ID {
				t.Fatalf("RS256 signed by %s; want %s", kid, key.ID)
			}
		})
	}
}
