// Package keys loads, creates and rotates the server's token-sealing keys. Keys live in the
// store, sealed under the secrets key (internal/secret.Box), so every instance that shares the
// store and the secrets key opens every other instance's tokens.
package keys

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/token"
)

// UseSeal is the Key.Use of opaque-token sealing keys.
const UseSeal = "seal"

const algSeal = "XC20P"

// ErrSecretsKeyMismatch means the stored keys were sealed under a different secrets key.
var ErrSecretsKeyMismatch = errors.New("the stored keys were encrypted under a different secrets key " +
	"(check RESCIND_SECRETS_KEY, or the secrets.key file in the data directory)")

// LoadKeyring returns a keyring with every stored sealing key, the newest active. If there is
// none it generates and stores the first.
func LoadKeyring(ctx context.Context, store rescind.Store, box *secret.Box, now time.Time) (*token.Keyring, error) {
	stored, err := store.ListKeys(ctx, UseSeal)
	if err != nil {
		return nil, fmt.Errorf("keys: listing: %w", err)
	}
	if len(stored) == 0 {
		k, err := create(ctx, store, box, now)
		if err != nil {
			return nil, err
		}
		return token.NewKeyring(k)
	}
	sks := make([]token.SealKey, 0, len(stored))
	for _, sk := range stored {
		k, err := open(sk, box)
		if err != nil {
			return nil, err
		}
		sks = append(sks, k)
	}
	return token.NewKeyring(sks...)
}

// Rotate generates a new sealing key, stores it and makes it active in kr. Tokens sealed by older
// keys keep working: the keys stay in the keyring.
func Rotate(ctx context.Context, store rescind.Store, box *secret.Box, kr *token.Keyring, now time.Time) (string, error) {
	k, err := create(ctx, store, box, now)
	if err != nil {
		return "", err
	}
	if err := kr.Add(k); err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	return k.KeyIDString(), nil
}

// Refresh adds to kr every stored sealing key it lacks (keys rotated by another instance) and
// makes the newest stored key the active one. It returns how many keys it added.
func Refresh(ctx context.Context, store rescind.Store, box *secret.Box, kr *token.Keyring) (int, error) {
	stored, err := store.ListKeys(ctx, UseSeal)
	if err != nil {
		return 0, fmt.Errorf("keys: listing: %w", err)
	}
	added := 0
	for i := len(stored) - 1; i >= 0; i-- {
		id, err := token.ParseKeyID(stored[i].ID)
		if err != nil {
			return added, fmt.Errorf("keys: stored key: %w", err)
		}
		if kr.Has(id) {
			continue
		}
		k, err := open(stored[i], box)
		if err != nil {
			return added, err
		}
		if err := kr.Add(k); err != nil {
			return added, fmt.Errorf("keys: %w", err)
		}
		added++
	}
	if len(stored) > 0 {
		newest, _ := token.ParseKeyID(stored[0].ID)
		if err := kr.SetActive(newest); err != nil {
			return added, fmt.Errorf("keys: %w", err)
		}
	}
	return added, nil
}

// Refresher reloads the keyring when a token names a key it lacks (rotated by another
// instance). Refreshes are serialized, and the store is queried at most once per MinInterval,
// since anyone can forge a token naming an unknown key to make us look.
type Refresher struct {
	Store       rescind.Store
	Box         *secret.Box
	Keys        *token.Keyring
	MinInterval time.Duration

	mu   sync.Mutex
	last time.Time
}

// Refresh makes sure the keyring holds kid if the store does, and reports whether it does.
func (r *Refresher) Refresh(ctx context.Context, kid [4]byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.Keys.Has(kid) { // loaded meanwhile, by a notification or a concurrent request
		return true
	}
	if time.Since(r.last) < r.MinInterval {
		return false
	}
	r.last = time.Now()
	Refresh(ctx, r.Store, r.Box, r.Keys)
	return r.Keys.Has(kid)
}

func create(ctx context.Context, store rescind.Store, box *secret.Box, now time.Time) (token.SealKey, error) {
	k, err := token.NewSealKey()
	if err != nil {
		return k, fmt.Errorf("keys: %w", err)
	}
	kid := k.KeyIDString()
	sealed, err := box.Seal(k.Secret, []byte(kid))
	if err != nil {
		return k, fmt.Errorf("keys: sealing new key: %w", err)
	}
	if err := store.CreateKey(ctx, rescind.Key{ID: kid, Use: UseSeal, Algorithm: algSeal, Sealed: sealed, CreatedAt: now}); err != nil {
		return k, fmt.Errorf("keys: storing new key: %w", err)
	}
	return k, nil
}

func open(sk rescind.Key, box *secret.Box) (token.SealKey, error) {
	id, err := token.ParseKeyID(sk.ID)
	if err != nil {
		return token.SealKey{}, fmt.Errorf("keys: stored key: %w", err)
	}
	material, err := box.Open(sk.Sealed, []byte(sk.ID))
	if err != nil {
		return token.SealKey{}, fmt.Errorf("keys: opening key %s: %w", sk.ID, ErrSecretsKeyMismatch)
	}
	return token.SealKey{ID: id, Secret: material}, nil
}
