package keys

import (
	"context"
	"fmt"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/token"
)

// UseSign is the Key.Use of JWT signing keys.
const UseSign = "sign"

// LoadSigner returns a signer with every stored signing key, generating the first (of alg) if
// there is none. retireAfter is how long a replaced key stays published.
func LoadSigner(ctx context.Context, store rescind.Store, box *secret.Box, alg string, retireAfter time.Duration, now time.Time) (*token.Signer, error) {
	s := token.NewSigner(retireAfter)
	n, err := RefreshSigner(ctx, store, box, s)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		if _, err := RotateSigner(ctx, store, box, s, alg, now); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// RefreshSigner adds every stored signing key the signer lacks and returns how many it holds.
func RefreshSigner(ctx context.Context, store rescind.Store, box *secret.Box, s *token.Signer) (int, error) {
	stored, err := store.ListKeys(ctx, UseSign)
	if err != nil {
		return 0, fmt.Errorf("keys: listing signing keys: %w", err)
	}
	for _, sk := range stored {
		if s.Has(sk.ID) {
			continue
		}
		der, err := box.Open(sk.Sealed, []byte(sk.ID))
		if err != nil {
			return 0, fmt.Errorf("keys: opening signing key %s: %w", sk.ID, ErrSecretsKeyMismatch)
		}
		priv, err := token.ParsePrivate(der)
		if err != nil {
			return 0, fmt.Errorf("keys: signing key %s: %w", sk.ID, err)
		}
		s.Add(token.SigningKey{ID: sk.ID, Alg: sk.Algorithm, Private: priv, CreatedAt: sk.CreatedAt})
	}
	return len(stored), nil
}

// RotateSigner generates a signing key of alg, stores it sealed, and makes it the signer's
// newest. It returns the new kid.
func RotateSigner(ctx context.Context, store rescind.Store, box *secret.Box, s *token.Signer, alg string, now time.Time) (string, error) {
	kid, err := secret.NewID()
	if err != nil {
		return "", err
	}
	k, err := token.NewSigningKey(kid, alg, now)
	if err != nil {
		return "", err
	}
	der, err := k.MarshalPrivate()
	if err != nil {
		return "", fmt.Errorf("keys: encoding signing key: %w", err)
	}
	sealed, err := box.Seal(der, []byte(kid))
	if err != nil {
		return "", fmt.Errorf("keys: sealing signing key: %w", err)
	}
	if err := store.CreateKey(ctx, rescind.Key{ID: kid, Use: UseSign, Algorithm: alg, Sealed: sealed, CreatedAt: now}); err != nil {
		return "", fmt.Errorf("keys: storing signing key: %w", err)
	}
	s.Add(k)
	return kid, nil
}
