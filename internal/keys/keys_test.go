package keys_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rescind/rescind/internal/keys"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/token"
)

func TestLoadRotateReload(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	box, _ := secret.NewBox(bytes.Repeat([]byte("a"), 32))
	now := time.Now()

	kr, err := keys.LoadKeyring(ctx, st, box, now)
	if err != nil {
		t.Fatal(err)
	}
	c := &token.Claims{ClientID: "c", IssuedAt: now, Expiry: now.Add(time.Hour)}
	old, _ := kr.Seal(c)
	if _, err := keys.Rotate(ctx, st, box, kr, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	fresh, _ := kr.Seal(c)

	// A restarted server (new keyring from the store) opens both, and seals with the new key.
	kr2, err := keys.LoadKeyring(ctx, st, box, now)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old, fresh} {
		if _, err := kr2.Open(tok); err != nil {
			t.Fatalf("reloaded keyring: %v", err)
		}
	}
	k1, _ := token.KeyID(fresh)
	again, _ := kr2.Seal(c)
	if k2, _ := token.KeyID(again); k1 != k2 {
		t.Fatal("reloaded keyring does not seal with the newest key")
	}

	// The wrong secrets key is refused with a clear error, not silently replaced.
	wrong, _ := secret.NewBox(bytes.Repeat([]byte("b"), 32))
	if _, err := keys.LoadKeyring(ctx, st, wrong, now); !errors.Is(err, keys.ErrSecretsKeyMismatch) {
		t.Fatalf("wrong secrets key: %v", err)
	}
}

// TestRefresher: a key rotated in through another handle is found on demand; a key that
// exists nowhere is looked for at most once per MinInterval.
func TestRefresher(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	mine, _ := sqlite.Open(ctx, path)
	other, _ := sqlite.Open(ctx, path)
	defer mine.Close()
	defer other.Close()
	box, _ := secret.NewBox(bytes.Repeat([]byte("a"), 32))
	now := time.Now()
	kr, err := keys.LoadKeyring(ctx, mine, box, now)
	if err != nil {
		t.Fatal(err)
	}
	otherRing, _ := keys.LoadKeyring(ctx, other, box, now)
	kid, err := keys.Rotate(ctx, other, box, otherRing, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := token.ParseKeyID(kid)
	r := &keys.Refresher{Store: mine, Box: box, Keys: kr, MinInterval: time.Hour}
	if !r.Refresh(ctx, id) || !kr.Has(id) {
		t.Fatal("rotated key not loaded")
	}
	if !r.Refresh(ctx, id) {
		t.Fatal("a key already held is reported missing (rate limit applied to a hit)")
	}
	if r.Refresh(ctx, [4]byte{9, 9, 9, 9}) {
		t.Fatal("an unknown key was reported found")
	}
	// The new key seals here too.
	tok, _ := kr.Seal(&token.Claims{IssuedAt: now, Expiry: now.Add(time.Hour)})
	if got, _ := token.KeyID(tok); got != id {
		t.Fatal("refreshed keyring does not seal with the newest key")
	}
}
