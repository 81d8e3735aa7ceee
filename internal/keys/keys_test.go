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
