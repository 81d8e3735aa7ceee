// Package keys manages the server's keys through their lifecycle (see rescind.KeyState): the
// sealing keys of opaque access tokens and the signing keys of JWTs.
//
// Keys live in the store, sealed under the secrets key (internal/secret.Box), so every instance
// that shares the store and the secrets key holds the same keys. Every change is a stored fact
// (a key's creation, activation and retirement), which each instance reads back (Refresh: after
// its own changes, on notification, on its poll, and when a token names a key it lacks), so the
// instances and a restarted server agree on which key seals or signs with no timer of their own.
//
// A rotation publishes a new signing key at once and makes it sign only after ActivationDelay,
// past the JWKS cache lifetime (token.JWKSMaxAge): a verifier that caches the JWKS and refetches
// it on an unknown kid at most every few minutes never meets a kid it cannot know. Rotating
// "immediately" skips the wait, for emergencies. A retired key is refused everywhere from then
// on, and never comes back: the retirement is stored, and a key's retirement is final in every
// in-memory keyring.
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

// Key uses, as stored (rescind.Key.Use).
const (
	// UseSeal is the use of opaque-token sealing keys.
	UseSeal = "seal"
	// UseSign is the use of JWT signing keys.
	UseSign = "sign"
)

const algSeal = "XC20P"

// DefaultActivationDelay is how long after a rotation the new signing key starts to sign: the
// JWKS cache lifetime, plus a minute for the new key to reach every instance (notification, or
// the fallback poll) and for the instances' clocks to differ.
const DefaultActivationDelay = token.JWKSMaxAge + time.Minute

// DefaultRetireAfter is how long a key stays published and accepted after a newer one took over
// from it: the longest access token lifetime a client can have (30 days) plus an hour.
const DefaultRetireAfter = 30*24*time.Hour + time.Hour

// ErrSecretsKeyMismatch means the stored keys were sealed under a different secrets key.
var ErrSecretsKeyMismatch = errors.New("the stored keys were encrypted under a different secrets key " +
	"(check RESCIND_SECRETS_KEY, or the secrets.key file in the data directory)")

// Config configures a Manager.
type Config struct {
	// Store holds the keys. Required.
	Store rescind.Store
	// Box seals and opens the stored key material. Required.
	Box *secret.Box
	// SigningAlg is the algorithm of new signing keys: token.AlgES256 (if empty) or token.AlgEdDSA.
	SigningAlg string
	// RetireAfter is how long a key stays published and accepted after a newer key took over
	// from it. It must exceed the longest access token lifetime. If zero, DefaultRetireAfter.
	RetireAfter time.Duration
	// ActivationDelay is how long after a rotation a new signing key starts to sign. If zero,
	// DefaultActivationDelay.
	ActivationDelay time.Duration
	// MinRefreshInterval bounds how often a token naming an unknown key makes the Manager read
	// the store (anyone can forge such a token). If zero, 100 ms.
	MinRefreshInterval time.Duration
	// OnRetire, if set, is called with the record each retirement wrote, once it is committed:
	// apply it to the revocation state and wake the event streams (revocation.Committer.Apply).
	OnRetire func(rescind.Revocation)
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
}

// Manager holds this instance's keyring and signer, in step with the stored keys, and rotates,
// retires and lists keys. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	ring   *token.Keyring
	signer *token.Signer

	refreshMu    sync.Mutex // serializes Refresh
	onDemandMu   sync.Mutex
	lastOnDemand time.Time
}

// Open loads the stored keys, generating the first key of each use if there is none.
func Open(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Store == nil || cfg.Box == nil {
		return nil, errors.New("keys: Config needs Store and Box")
	}
	if cfg.SigningAlg == "" {
		cfg.SigningAlg = token.AlgES256
	}
	if cfg.RetireAfter <= 0 {
		cfg.RetireAfter = DefaultRetireAfter
	}
	if cfg.ActivationDelay <= 0 {
		cfg.ActivationDelay = DefaultActivationDelay
	}
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ring, err := token.NewKeyring()
	if err != nil {
		return nil, err
	}
	ring.RetireAfter, ring.Now = cfg.RetireAfter, cfg.Now
	signer := token.NewSigner(cfg.RetireAfter)
	signer.Now = cfg.Now
	m := &Manager{cfg: cfg, ring: ring, signer: signer}
	if err := m.Refresh(ctx); err != nil {
		return nil, err
	}
	now := cfg.Now()
	if _, ok := ring.Active(); !ok {
		if _, err := m.createSealKey(ctx, now); err != nil {
			return nil, err
		}
	}
	if _, ok := signer.Active(); !ok {
		if _, err := m.createSigningKey(ctx, now, now); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Keyring returns the keyring that seals and opens opaque access tokens.
func (m *Manager) Keyring() *token.Keyring { return m.ring }

// Signer returns the signer of JWTs.
func (m *Manager) Signer() *token.Signer { return m.signer }

// Rotation reports a rotation.
type Rotation struct {
	// SealKeyID is the new sealing key, in force at once (only this server's instances open
	// sealed tokens, and they load a key they lack on first sight).
	SealKeyID string
	// SigningKeyID is the new signing key, published at once.
	SigningKeyID string
	// SigningActivatesAt is when the new signing key starts to sign.
	SigningActivatesAt time.Time
}

// Rotate generates a new sealing key and a new signing key. The sealing key is in force at once;
// the signing key is published at once and signs from ActivationDelay later, or at once if
// immediately is set (an emergency: a verifier that cached the JWKS just before may refuse the
// new tokens until it refetches). Tokens of the older keys keep working until they expire.
func (m *Manager) Rotate(ctx context.Context, immediately bool) (Rotation, error) {
	now := m.cfg.Now()
	seal, err := m.createSealKey(ctx, now)
	if err != nil {
		return Rotation{}, err
	}
	act := now.Add(m.cfg.ActivationDelay)
	if immediately {
		act = now
	}
	sign, err := m.createSigningKey(ctx, now, act)
	if err != nil {
		return Rotation{}, err
	}
	return Rotation{SealKeyID: seal, SigningKeyID: sign, SigningActivatesAt: act}, nil
}

// Retirement reports a retirement.
type Retirement struct {
	// Key is the retired key.
	Key Info
	// Activated is the key brought into force in its place, if it was the one in force.
	Activated string
}

// Retire retires the key kid (of either use) at once: from now on no instance seals, signs or
// accepts anything with it, and a retired signing key leaves the JWKS. If it is the key in force,
// the pending key that activates first takes over at once. It returns an error wrapping
// rescind.ErrNotFound for an unknown key, and rescind.ErrKeyInUse if the key is in force and no
// newer key can take over (rotate first). Retiring a retired key changes nothing. actor is
// recorded in the audit log.
func (m *Manager) Retire(ctx context.Context, kid, actor string) (Retirement, error) {
	now := m.cfg.Now()
	// The record outlives every token the key can have sealed or signed: it sealed or signed
	// nothing after now, and no token lives longer than RetireAfter.
	rev := rescind.Revocation{Kind: rescind.RevokeKey, Key: kid, RevokedAt: now, ExpiresAt: now.Add(m.cfg.RetireAfter),
		StatusIdx: -1, Actor: actor, Reason: "key retired"}
	activated, err := m.cfg.Store.RetireKey(ctx, kid, rev)
	if err != nil {
		return Retirement{}, fmt.Errorf("keys: retiring %s: %w", kid, err)
	}
	if err := m.Refresh(ctx); err != nil {
		return Retirement{}, err
	}
	if m.cfg.OnRetire != nil {
		m.cfg.OnRetire(rev)
	}
	list, err := m.List(ctx)
	if err != nil {
		return Retirement{}, err
	}
	out := Retirement{Activated: activated}
	for _, in := range list {
		if in.ID == kid {
			out.Key = in
		}
	}
	return out, nil
}

// Info describes a key (never its material).
type Info struct {
	ID, Use, Algorithm string
	State              rescind.KeyState
	// CreatedAt is when it was generated (and published), ActivatesAt when it starts (or
	// started) to seal or sign, RetiredAt when an operator retired it (zero if not), RetiresAt
	// when it retires by itself (zero if no newer key is scheduled to take over).
	CreatedAt, ActivatesAt, RetiredAt, RetiresAt time.Time
}

// List returns every stored key, sealing keys then signing keys, newest first, with its state now.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	now := m.cfg.Now()
	var out []Info
	for _, use := range []string{UseSeal, UseSign} {
		keys, err := m.cfg.Store.ListKeys(ctx, use)
		if err != nil {
			return nil, fmt.Errorf("keys: listing: %w", err)
		}
		for i, k := range keys {
			out = append(out, Info{ID: k.ID, Use: use, Algorithm: k.Algorithm, State: rescind.KeyStateAt(keys, i, m.cfg.RetireAfter, now),
				CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt,
				RetiresAt: rescind.KeyRetires(keys, i, m.cfg.RetireAfter)})
		}
	}
	return out, nil
}

// Refresh brings the keyring and the signer in step with the stored keys: it adds the keys they
// lack (another instance's rotations), and applies activations and retirements. Call it when
// another instance changed keys (a notification, the poll).
func (m *Manager) Refresh(ctx context.Context) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	seal, err := m.cfg.Store.ListKeys(ctx, UseSeal)
	if err != nil {
		return fmt.Errorf("keys: listing: %w", err)
	}
	for _, k := range seal {
		id, err := token.ParseKeyID(k.ID)
		if err != nil {
			return fmt.Errorf("keys: stored key: %w", err)
		}
		sk := token.SealKey{ID: id, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt}
		if !m.ring.Has(id) && k.RetiredAt.IsZero() {
			if sk.Secret, err = m.open(k); err != nil {
				return err
			}
		}
		if err := m.ring.Add(sk); err != nil {
			return fmt.Errorf("keys: %w", err)
		}
	}
	sign, err := m.cfg.Store.ListKeys(ctx, UseSign)
	if err != nil {
		return fmt.Errorf("keys: listing signing keys: %w", err)
	}
	for _, k := range sign {
		sk := token.SigningKey{ID: k.ID, Alg: k.Algorithm, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt}
		if !m.signer.Has(k.ID) && k.RetiredAt.IsZero() {
			der, err := m.open(k)
			if err != nil {
				return err
			}
			if sk.Private, err = token.ParsePrivate(der); err != nil {
				return fmt.Errorf("keys: signing key %s: %w", k.ID, err)
			}
		}
		m.signer.Add(sk)
	}
	return nil
}

// RefreshSealKey makes sure the keyring knows kid if the store does (a key another instance just
// rotated in), and reports whether it does. The store is read at most once per
// MinRefreshInterval, since anyone can forge a token naming an unknown key.
func (m *Manager) RefreshSealKey(ctx context.Context, kid [4]byte) bool {
	if m.ring.Has(kid) || !m.onDemand() {
		return m.ring.Has(kid)
	}
	m.Refresh(ctx)
	return m.ring.Has(kid)
}

// RefreshSigningKey is RefreshSealKey for a signing key.
func (m *Manager) RefreshSigningKey(ctx context.Context, kid string) bool {
	if m.signer.Has(kid) || !m.onDemand() {
		return m.signer.Has(kid)
	}
	m.Refresh(ctx)
	return m.signer.Has(kid)
}

// onDemand reports whether an on-demand refresh may read the store now.
func (m *Manager) onDemand() bool {
	m.onDemandMu.Lock()
	defer m.onDemandMu.Unlock()
	now := time.Now() // wall time: a rate limit, whatever the configured clock says
	if now.Sub(m.lastOnDemand) < m.cfg.MinRefreshInterval {
		return false
	}
	m.lastOnDemand = now
	return true
}

func (m *Manager) createSealKey(ctx context.Context, now time.Time) (string, error) {
	k, err := token.NewSealKey()
	if err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	k.CreatedAt, k.ActivatesAt = now, now
	kid := k.KeyIDString()
	if err := m.store(ctx, rescind.Key{ID: kid, Use: UseSeal, Algorithm: algSeal, CreatedAt: now, ActivatesAt: now}, k.Secret); err != nil {
		return "", err
	}
	if err := m.ring.Add(k); err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	return kid, nil
}

func (m *Manager) createSigningKey(ctx context.Context, now, activates time.Time) (string, error) {
	kid, err := secret.NewID()
	if err != nil {
		return "", err
	}
	k, err := token.NewSigningKey(kid, m.cfg.SigningAlg, now)
	if err != nil {
		return "", err
	}
	k.ActivatesAt = activates
	der, err := k.MarshalPrivate()
	if err != nil {
		return "", fmt.Errorf("keys: encoding signing key: %w", err)
	}
	if err := m.store(ctx, rescind.Key{ID: kid, Use: UseSign, Algorithm: k.Alg, CreatedAt: now, ActivatesAt: activates}, der); err != nil {
		return "", err
	}
	m.signer.Add(k)
	return kid, nil
}

// store seals material under the secrets key (bound to the key id) and stores k with it.
func (m *Manager) store(ctx context.Context, k rescind.Key, material []byte) error {
	sealed, err := m.cfg.Box.Seal(material, []byte(k.ID))
	if err != nil {
		return fmt.Errorf("keys: sealing new key: %w", err)
	}
	k.Sealed = sealed
	if err := m.cfg.Store.CreateKey(ctx, k); err != nil {
		return fmt.Errorf("keys: storing new key: %w", err)
	}
	return nil
}

func (m *Manager) open(k rescind.Key) ([]byte, error) {
	material, err := m.cfg.Box.Open(k.Sealed, []byte(k.ID))
	if err != nil {
		return nil, fmt.Errorf("keys: opening key %s: %w", k.ID, ErrSecretsKeyMismatch)
	}
	return material, nil
}
