// Package keys manages the server's keys through their lifecycle (see rescind.KeyState): the
// sealing keys of opaque access tokens and the signing keys of JWTs.
//
// Signing keys form chains (token.SigningKey.Chain), each with its own key in force, rotation
// and retirement: the chain of the configured algorithm (stored use UseSign), which signs access
// tokens and status lists, and a chain per other algorithm a caller signs with (SignWith: ID
// tokens, security event tokens; stored use "sign/" + the algorithm). Open makes the first key
// of every chain before the server serves anything, so every JWKS ever served lists every key
// that signs (a relying party or a Shared Signals receiver that cached it meets no unknown kid).
//
// Keys live in the store, sealed under the secrets key (internal/secret.Box), so every instance
// that shares the store and the secrets key holds the same keys. Every change is a stored fact
// (a key's creation, activation and retirement), which each instance reads back (Refresh: after
// its own changes, on notification, on its poll, and when a token names a key it lacks), so the
// instances and a restarted server agree on which key seals or signs with no timer of their own.
//
// Keys of a use are ordered by their stored creation time, and a new key is stamped after every
// key stored before it (see created), so the order is the order of creation in the store, not
// of the instances' clocks: the latest rotation wins wherever it was made.
//
// A rotation publishes a new signing key at once and makes it sign only after the activation
// delay: the JWKS cache lifetime (token.JWKSMaxAge), plus the longest an instance can take to
// learn of the key (Config.PollInterval: a JWKS it serves meanwhile lacks it), plus the largest
// difference between the instances' clocks (Config.ClockSkew: the moment is stored, and read by
// each instance's clock). A verifier that caches the JWKS and refetches it on an unknown kid at
// most every few minutes never meets a kid it cannot know. Rotating
// "immediately" skips the wait, for emergencies. A retired key is refused everywhere from then
// on, and never comes back: the retirement is stored, and a key's retirement is final in every
// in-memory keyring.
package keys

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
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
	// UseSign is the use of JWT signing keys: the stored use of the chain of the configured
	// algorithm; the chain of another algorithm is stored as ChainUse(alg).
	UseSign = "sign"
)

// ChainUse returns the stored use of the signing keys of chain (token.SigningKey.Chain): UseSign
// for chain "", "sign/" + chain for the chain of an algorithm.
func ChainUse(chain string) string {
	if chain == "" {
		return UseSign
	}
	return UseSign + "/" + chain
}

// signUses are the stored uses of signing keys: one per chain.
var signUses = func() []string {
	uses := []string{UseSign}
	for _, alg := range token.SigningAlgorithms {
		uses = append(uses, ChainUse(alg))
	}
	return uses
}()

// allUses are the stored uses of every key, in the order List shows them.
var allUses = append([]string{UseSeal}, signUses...)

// chainOf returns the chain of the signing keys of use, and false if use is not one.
func chainOf(use string) (string, bool) {
	if use == UseSign {
		return "", true
	}
	if c, ok := strings.CutPrefix(use, UseSign+"/"); ok && slices.Contains(token.SigningAlgorithms, c) {
		return c, true
	}
	return "", false
}

const algSeal = "XC20P"

// DefaultClockSkew is Config.ClockSkew if zero: the server's default --clock-skew.
const DefaultClockSkew = time.Minute

// activationMargin is added to the activation delay for what the bounds leave out: the poll's
// own query, and a JWKS response in flight (a cache that counts the max-age from the response's
// arrival, not from its request).
const activationMargin = 10 * time.Second

// DefaultActivationDelay is how long after a rotation the new signing key starts to sign with the
// default Config (DefaultClockSkew, no poll): see ActivationDelay.
const DefaultActivationDelay = token.JWKSMaxAge + DefaultClockSkew + activationMargin

// ActivationDelay returns how long after its creation a new signing key (a rotation's, or the
// first key of a chain made after the first start) starts to sign, given the largest difference
// between the instances' clocks and the longest an instance can take to learn of the key (a lost
// notification: the fallback poll). A verifier may cache a JWKS without the key until the JWKS
// max-age after it fetched it, from an instance that learnt of the key last (pollInterval after
// its creation); the key's activation is stored as a moment of the creating instance's clock,
// which another instance's reaches up to clockSkew earlier. Ten seconds are added for the poll's
// own query and a JWKS response in flight.
func ActivationDelay(clockSkew, pollInterval time.Duration) time.Duration {
	return token.JWKSMaxAge + pollInterval + clockSkew + activationMargin
}

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
	// SigningAlg is the algorithm of new signing keys of chain "" (access tokens, status lists):
	// token.AlgES256 (if empty) or token.AlgEdDSA.
	SigningAlg string
	// RetireAfter is how long a key stays published and accepted after a newer key took over
	// from it. It must exceed the longest access token lifetime. If zero, DefaultRetireAfter.
	RetireAfter time.Duration
	// ActivationDelay is how long after a rotation a new signing key starts to sign: never less
	// than ActivationDelay(ClockSkew, PollInterval), which it is if zero.
	ActivationDelay time.Duration
	// ClockSkew is the largest difference between the clocks of the instances sharing the store
	// (the server's --clock-skew). If zero, DefaultClockSkew.
	ClockSkew time.Duration
	// PollInterval is the longest an instance can take to learn of a key another instance
	// created when the notification is lost (the server's --poll-interval); zero for none.
	PollInterval time.Duration
	// MinRefreshInterval bounds how often a token naming an unknown key makes the Manager read
	// the store (anyone can forge such a token). If zero, 100 ms.
	MinRefreshInterval time.Duration
	// OnRetire, if set, is called with the record each retirement wrote, once it is committed
	// (whatever happens after the commit): apply it to the revocation state and wake the event
	// streams (revocation.Committer.Apply). Retiring a key already retired writes nothing and
	// does not call it.
	OnRetire func(rescind.Revocation)
	// Logger receives the errors of refreshes no caller waits for (on demand, after a
	// retirement). If nil, slog.Default().
	Logger *slog.Logger
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// NewSigningKey generates a signing key. If nil, token.NewSigningKey. (Tests reuse
	// pregenerated RSA keys with it: generating one takes half a second.)
	NewSigningKey func(kid, alg string, created time.Time) (token.SigningKey, error)
}

// Manager holds this instance's keyring and signer, in step with the stored keys, and rotates,
// retires and lists keys. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	ring   *token.Keyring
	signer *token.Signer

	refreshMu    sync.Mutex // serializes apply
	rotateMu     sync.Mutex // serializes Rotate and the creation of a chain
	onDemandMu   sync.Mutex
	lastOnDemand time.Time

	pendingMu sync.Mutex
	pending   map[string]error // by algorithm: why nothing signs with it yet, until when

	ensureMu   sync.Mutex
	ensuring   map[string]time.Time // by algorithm: when Ready last started an Ensure (wall time)
	ensureBusy map[string]bool      // by algorithm: Ready's Ensure is running
	ensureWG   sync.WaitGroup
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
	if cfg.ClockSkew <= 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	cfg.PollInterval = max(cfg.PollInterval, 0)
	cfg.ActivationDelay = max(cfg.ActivationDelay, ActivationDelay(cfg.ClockSkew, cfg.PollInterval))
	if cfg.MinRefreshInterval <= 0 {
		cfg.MinRefreshInterval = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewSigningKey == nil {
		cfg.NewSigningKey = token.NewSigningKey
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
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
	base, err := cfg.Store.ListKeys(ctx, UseSign)
	if err != nil {
		return nil, fmt.Errorf("keys: listing: %w", err)
	}
	if _, ok := signer.Active(); !ok {
		if _, err := m.createSigningKey(ctx, "", cfg.SigningAlg, now, now, ""); err != nil {
			return nil, err
		}
	}
	// Every algorithm's chain has its key before this instance serves anything: a key made
	// later would sign while JWKS copies served before lack it.
	m.rotateMu.Lock()
	defer m.rotateMu.Unlock()
	for _, alg := range token.SigningAlgorithms {
		if _, err := m.ensureChain(ctx, alg, m.firstActivation(base, now)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// firstStartGrace is how recent the first key of chain "" must be for the first keys of the
// other chains to sign at once: a deployment that new has served no JWKS without them (they are
// made in the same Open, before anything is served; another instance starting at the same time
// finds the first key a moment old).
const firstStartGrace = time.Minute

// firstActivation returns when the first key of a chain made now signs, given base, the stored
// keys of chain "" as Open found them: at once on a new deployment (no key yet, or the first
// made within firstStartGrace of now by this clock, either side), since no JWKS was served
// without it; else after ActivationDelay, like a rotation's, since JWKS copies served before
// (within their max-age) lack it. A first key stamped further ahead than the grace is an old
// key seen by a clock that is behind, not a new one: its chains wait too.
func (m *Manager) firstActivation(base []rescind.Key, now time.Time) time.Time {
	if len(base) == 0 {
		return now
	}
	if age := now.Sub(base[len(base)-1].CreatedAt); age > -firstStartGrace && age < firstStartGrace {
		return now
	}
	return now.Add(m.cfg.ActivationDelay)
}

// SignWith signs claims (marshalled to JSON) with algorithm alg (token.AlgES256, AlgEdDSA or
// AlgRS256), with header typ (token.Signer.SignWith): with the key in force of the configured
// algorithm's chain if it is of alg, else with that of the chain of alg, which it creates (see
// Ensure) if there is none. For ID tokens and security event tokens; access tokens are signed by
// Signer().Sign.
func (m *Manager) SignWith(ctx context.Context, alg string, claims any, typ string) (string, error) {
	text, err := m.signer.SignWith(alg, claims, typ)
	if !errors.Is(err, token.ErrNoSigningKey) {
		return text, err
	}
	if err := m.pendingErr(alg); err != nil {
		return "", err // the chain's first key is published and not in force yet: no store read
	}
	if err := m.Ensure(ctx, alg); err != nil {
		return "", err
	}
	return m.signer.SignWith(alg, claims, typ)
}

// Ready reports whether a key signs with alg now (SignWith would sign without creating one): the
// token endpoint asks it (oauth.AlgSigner.CanSign) before it uses a code or refresh token for an
// ID token of alg, and answers 503 with Retry-After if not. If no key signs with alg and none of
// alg's chain is known to be coming (its keys were all retired, by this instance or another: a
// "next" key retired before it ever signed), Ready makes the chain again in the background
// (Ensure): its new key is published at once and signs after the activation delay, like a
// rotation's, so ID tokens of alg resume then instead of never. The store is read for that at
// most once per MinRefreshInterval and alg, by one Ensure at a time; while the chain's key is
// known to be coming, not at all.
func (m *Manager) Ready(alg string) bool {
	if _, ok := m.signer.ActiveWith(alg); ok {
		return true
	}
	if !slices.Contains(token.SigningAlgorithms, alg) || m.pendingErr(alg) != nil {
		return false
	}
	m.ensureMu.Lock()
	now := time.Now() // wall time: a rate limit, whatever the configured clock says
	if m.ensureBusy[alg] || now.Sub(m.ensuring[alg]) < m.cfg.MinRefreshInterval {
		m.ensureMu.Unlock()
		return false
	}
	if m.ensuring == nil {
		m.ensuring, m.ensureBusy = map[string]time.Time{}, map[string]bool{}
	}
	m.ensuring[alg], m.ensureBusy[alg] = now, true
	m.ensureWG.Add(1)
	m.ensureMu.Unlock()
	go func() {
		defer m.ensureWG.Done()
		defer func() {
			m.ensureMu.Lock()
			m.ensureBusy[alg] = false
			m.ensureMu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Ensure(ctx, alg); err != nil && !errors.Is(err, token.ErrNoSigningKey) {
			m.cfg.Logger.Warn("keys: making the chain of an algorithm with no key again", "alg", alg, "err", err)
		}
	}()
	return false
}

// pendingErr returns Ensure's last error for alg while the key it names is not in force yet.
func (m *Manager) pendingErr(alg string) error {
	m.pendingMu.Lock()
	defer m.pendingMu.Unlock()
	p, ok := m.pending[alg].(*pendingError)
	if !ok || !m.cfg.Now().Before(p.at) {
		return nil
	}
	return p
}

// pendingError says that the first key of alg's chain signs from at.
type pendingError struct {
	alg string
	at  time.Time
}

func (e *pendingError) Error() string {
	return fmt.Sprintf("keys: the first %s key signs from %s, once every cached JWKS can hold it: %v",
		e.alg, e.at.UTC().Format(time.RFC3339), token.ErrNoSigningKey)
}

func (e *pendingError) Unwrap() error { return token.ErrNoSigningKey }

// Ensure makes sure alg's chain has a key: if neither the configured algorithm's chain nor
// alg's has one, it creates the first key of alg's chain. Open creates every chain's first key,
// so Ensure creates one only if the chain's keys were all retired (or the store was written by
// a release that made them on first need); SignWith and Ready call it when nothing signs. Such a key is published at once and signs only
// ActivationDelay later, like a rotation's: JWKS copies served before it (within their max-age)
// lack it. Until then Ensure, and SignWith, return an error wrapping token.ErrNoSigningKey
// that says when it signs. Every instance creating that first key at the same time derives the
// same kid from the stored keys (firstKeyID), so the store keeps exactly one (the others' writes
// fail as duplicates, and they load the stored one).
func (m *Manager) Ensure(ctx context.Context, alg string) error {
	if !slices.Contains(token.SigningAlgorithms, alg) {
		return fmt.Errorf("keys: unsupported signing algorithm %q", alg)
	}
	if _, ok := m.signer.ActiveWith(alg); ok {
		return nil
	}
	m.rotateMu.Lock()
	defer m.rotateMu.Unlock()
	if err := m.Refresh(ctx); err != nil {
		return err
	}
	now := m.cfg.Now()
	at, err := m.ensureChain(ctx, alg, now.Add(m.cfg.ActivationDelay))
	if err != nil {
		return err
	}
	if _, ok := m.signer.ActiveWith(alg); !ok {
		err := &pendingError{alg: alg, at: at}
		m.pendingMu.Lock()
		if m.pending == nil {
			m.pending = map[string]error{}
		}
		m.pending[alg] = err
		m.pendingMu.Unlock()
		return err
	}
	return nil
}

// ensureChain creates the first key of alg's chain, signing from activates, unless a key signs
// with alg now or the chain has a key that is not retired. It returns when the chain's first
// key not retired signs (zero if a key signs with alg already). m.rotateMu must be held.
func (m *Manager) ensureChain(ctx context.Context, alg string, activates time.Time) (time.Time, error) {
	if _, ok := m.signer.ActiveWith(alg); ok {
		return time.Time{}, nil
	}
	use := ChainUse(alg)
	keys, err := m.cfg.Store.ListKeys(ctx, use)
	if err != nil {
		return time.Time{}, fmt.Errorf("keys: listing: %w", err)
	}
	if at, ok := pending(keys); ok {
		return at, nil
	}
	kid, err := m.firstKeyID(ctx, use, keys)
	if err != nil {
		return time.Time{}, err
	}
	now := m.cfg.Now()
	if activates.Before(now) {
		activates = now // in force from its creation, not before it
	}
	if _, err := m.createSigningKey(ctx, alg, alg, now, activates, kid); errors.Is(err, rescind.ErrAlreadyExists) {
		// Another instance created it first: use the stored one.
		if err := m.Refresh(ctx); err != nil {
			return time.Time{}, err
		}
		if keys, err = m.cfg.Store.ListKeys(ctx, use); err != nil {
			return time.Time{}, fmt.Errorf("keys: listing: %w", err)
		}
		at, _ := pending(keys)
		return at, nil
	} else if err != nil {
		return time.Time{}, err
	}
	return activates, nil
}

// pending returns the earliest activation among keys not retired, and false if every key is
// retired (or there is none).
func pending(keys []rescind.Key) (time.Time, bool) {
	var at time.Time
	ok := false
	for _, k := range keys {
		if k.RetiredAt.IsZero() && (!ok || k.ActivatesAt.Before(at)) {
			at, ok = k.ActivatesAt, true
		}
	}
	return at, ok
}

// firstKeyID returns the kid of a key that starts (or restarts) the chain of use, whose stored
// keys are keys: derived from the chain, the first key of chain "" (which identifies the
// deployment, so that two servers' chains do not share kids) and the chain's newest stored key,
// so that every instance that finds the same stored keys derives the same kid.
func (m *Manager) firstKeyID(ctx context.Context, use string, keys []rescind.Key) (string, error) {
	base, err := m.cfg.Store.ListKeys(ctx, UseSign)
	if err != nil {
		return "", fmt.Errorf("keys: listing: %w", err)
	}
	if len(base) == 0 {
		return "", errors.New("keys: no signing key of chain \"\" yet")
	}
	newest := ""
	if len(keys) > 0 {
		newest = keys[0].ID
	}
	h := sha256.Sum256([]byte("rescind signing key chain\x00" + base[len(base)-1].ID + "\x00" + use + "\x00" + newest))
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(h[:16])), nil
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
	// SigningKeyID is the new signing key of the configured algorithm's chain, published at once.
	SigningKeyID string
	// SigningActivatesAt is when the new signing keys start to sign.
	SigningActivatesAt time.Time
	// Signing is every new signing key, one per chain: SigningKeyID's first.
	Signing []RotatedKey
}

// RotatedKey is a signing key a rotation created.
type RotatedKey struct {
	// ID is its kid, Alg its algorithm.
	ID, Alg string
}

// Rotate generates a new sealing key and a new signing key for every chain of signing keys (the
// configured algorithm's, with SigningAlg, and each other algorithm's; a chain whose algorithm
// chain "" stops signing, SigningAlg having changed, gets its first key). The sealing
// key is in force at once; the signing keys are published at once and sign from ActivationDelay
// later, or at once if immediately is set (an emergency: a verifier that cached the JWKS just
// before may refuse the new tokens until it refetches). Tokens of the older keys keep working
// until they expire.
func (m *Manager) Rotate(ctx context.Context, immediately bool) (Rotation, error) {
	m.rotateMu.Lock() // this instance's rotations are ordered; see created for other instances'
	defer m.rotateMu.Unlock()
	now := m.cfg.Now()
	seal, err := m.createSealKey(ctx, now)
	if err != nil {
		return Rotation{}, err
	}
	act := now.Add(m.cfg.ActivationDelay)
	if immediately {
		act = now
	}
	sign, err := m.createSigningKey(ctx, "", m.cfg.SigningAlg, now, act, "")
	if err != nil {
		return Rotation{}, err
	}
	rot := Rotation{SealKeyID: seal, SigningKeyID: sign, SigningActivatesAt: act, Signing: []RotatedKey{{sign, m.cfg.SigningAlg}}}
	for _, alg := range token.SigningAlgorithms {
		keys, err := m.cfg.Store.ListKeys(ctx, ChainUse(alg))
		if err != nil {
			return rot, fmt.Errorf("keys: listing: %w", err)
		}
		if len(keys) == 0 && alg == m.cfg.SigningAlg {
			continue // no such chain: chain "" signs with alg, and goes on doing so
		}
		// A chain with no key yet is one chain "" signs for until now (SigningAlg was changed):
		// its first key is published now and takes over when the new key of chain "" does, so
		// the algorithm is never left without a key published beforehand.
		kid, err := m.createSigningKey(ctx, alg, alg, now, act, "")
		if err != nil {
			return rot, err
		}
		rot.Signing = append(rot.Signing, RotatedKey{kid, alg})
	}
	return rot, nil
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
//
// Once the store has committed the retirement, this instance applies it before Retire returns,
// from what it read before and what the store did, with no further I/O that could fail: neither
// the caller going away nor a database error after the commit can leave this instance accepting
// the key. What else changed meanwhile is then read back with a context of its own.
func (m *Manager) Retire(ctx context.Context, kid, actor string) (Retirement, error) {
	use, keys, err := m.find(ctx, kid)
	if err != nil {
		return Retirement{}, err
	}
	i := slices.IndexFunc(keys, func(k rescind.Key) bool { return k.ID == kid })
	if !keys[i].RetiredAt.IsZero() {
		// Retired already: nothing to write, no record. This instance holds the retirement
		// (applying it again is harmless, and covers one that was never applied here).
		if err := m.apply(use, keys); err != nil {
			m.cfg.Logger.Warn("keys: applying the stored keys", "err", err)
		}
		return Retirement{Key: m.info(use, keys, i)}, nil
	}
	now := m.cfg.Now()
	// The record outlives every token the key can have sealed or signed: it sealed or signed
	// nothing after now, and no token lives longer than RetireAfter.
	rev := rescind.Revocation{Kind: rescind.RevokeKey, Key: kid, RevokedAt: now, ExpiresAt: now.Add(m.cfg.RetireAfter),
		StatusIdx: -1, Actor: actor, Reason: "key retired"}
	activated, err := m.cfg.Store.RetireKey(ctx, kid, rev)
	switch {
	case errors.Is(err, rescind.ErrNotFound) || errors.Is(err, rescind.ErrKeyInUse):
		return Retirement{}, fmt.Errorf("keys: retiring %s: %w", kid, err)
	case err != nil:
		// The outcome is unknown (the request ended, the connection broke mid-commit): read
		// the key back, and if this retirement committed, carry on as if told so.
		stored, act, rerr := m.committed(ctx, use, kid, now)
		if rerr != nil {
			// Perhaps committed, perhaps not: retrying tells (retiring a retired key applies
			// the stored retirement here and writes nothing).
			return Retirement{}, fmt.Errorf("keys: retiring %s (retry: it may have been retired): %w", kid, err)
		}
		keys, activated = stored, act
	default:
		// Apply what the store did (RetireKey's contract) to what was read before it.
		for j := range keys {
			switch {
			case j == i:
				keys[j].RetiredAt = now
			case keys[j].ID == activated && keys[j].ActivatesAt.After(now):
				keys[j].ActivatesAt = now
			}
		}
	}
	i = slices.IndexFunc(keys, func(k rescind.Key) bool { return k.ID == kid })
	// Committed: from here on, nothing may stop the retirement from taking effect here.
	if err := m.apply(use, keys); err != nil {
		// Only a key this instance did not hold can fail (its material); every retirement
		// and activation was applied before it.
		m.cfg.Logger.Warn("keys: applying the stored keys after a retirement", "err", err)
	}
	if m.cfg.OnRetire != nil {
		m.cfg.OnRetire(rev)
	}
	m.refreshDetached(ctx)
	return Retirement{Key: m.info(use, keys, i), Activated: activated}, nil
}

// find returns the use of the key kid and the stored keys of that use (SortKeys order).
func (m *Manager) find(ctx context.Context, kid string) (string, []rescind.Key, error) {
	for _, use := range allUses {
		keys, err := m.cfg.Store.ListKeys(ctx, use)
		if err != nil {
			return "", nil, fmt.Errorf("keys: listing: %w", err)
		}
		if slices.ContainsFunc(keys, func(k rescind.Key) bool { return k.ID == kid }) {
			return use, keys, nil
		}
	}
	return "", nil, fmt.Errorf("keys: retiring %s: %w", kid, rescind.ErrNotFound)
}

// committed reads back, with a context of its own, whether the retirement of kid at now
// committed although the store reported an error. It returns the stored keys of use and the key
// the retirement activated (if any), or an error if the retirement is not known to have
// committed.
func (m *Manager) committed(ctx context.Context, use, kid string, now time.Time) ([]rescind.Key, string, error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	keys, err := m.cfg.Store.ListKeys(rctx, use)
	if err != nil {
		return nil, "", fmt.Errorf("keys: reading back: %w", err)
	}
	i := slices.IndexFunc(keys, func(k rescind.Key) bool { return k.ID == kid })
	if i < 0 || !keys[i].RetiredAt.Equal(now) {
		return nil, "", errors.New("keys: the retirement did not commit")
	}
	activated := ""
	for j := 0; j < i; j++ {
		if keys[j].RetiredAt.IsZero() && keys[j].ActivatesAt.Equal(now) {
			activated = keys[j].ID
		}
	}
	return keys, activated, nil
}

// refreshDetached reads the stored keys back after a change, with a context of its own (the
// caller may be gone), trying a few times; a failure is logged (the change itself is applied).
func (m *Manager) refreshDetached(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	var err error
	for _, wait := range []time.Duration{0, 100 * time.Millisecond, 400 * time.Millisecond} {
		time.Sleep(wait)
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = m.Refresh(rctx)
		cancel()
		if err == nil {
			return
		}
	}
	m.cfg.Logger.Warn("keys: reading the keys back after a change (the next refresh will)", "err", err)
}

// info describes keys[i] (of use) as List does.
func (m *Manager) info(use string, keys []rescind.Key, i int) Info {
	k := keys[i]
	chain, sign := chainOf(use)
	if sign {
		use = UseSign
	}
	return Info{ID: k.ID, Use: use, Chain: chain, Algorithm: k.Algorithm, State: rescind.KeyStateAt(keys, i, m.cfg.RetireAfter, m.cfg.Now()),
		CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt,
		RetiresAt: rescind.KeyRetires(keys, i, m.cfg.RetireAfter)}
}

// Info describes a key (never its material).
type Info struct {
	// Use is UseSeal or UseSign (whatever the chain); Chain is the chain of a signing key
	// (token.SigningKey.Chain): "" for the configured algorithm's, else an algorithm. State is
	// the key's state among the keys of its use and chain.
	ID, Use, Chain, Algorithm string
	State                     rescind.KeyState
	// CreatedAt is when it was generated (and published), ActivatesAt when it starts (or
	// started) to seal or sign, RetiredAt when an operator retired it (zero if not), RetiresAt
	// when it retires by itself (zero if no newer key is scheduled to take over).
	CreatedAt, ActivatesAt, RetiredAt, RetiresAt time.Time
}

// List returns every stored key, sealing keys then signing keys (the configured algorithm's
// chain, then the other chains), newest first, with its state now in its chain.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	var out []Info
	for _, use := range allUses {
		keys, err := m.cfg.Store.ListKeys(ctx, use)
		if err != nil {
			return nil, fmt.Errorf("keys: listing: %w", err)
		}
		for i := range keys {
			out = append(out, m.info(use, keys, i))
		}
	}
	return out, nil
}

// Refresh brings the keyring and the signer in step with the stored keys: it adds the keys they
// lack (another instance's rotations), and applies activations and retirements. Call it when
// another instance changed keys (a notification, the poll). Every retirement and activation it
// reads is applied, even if a key's material cannot be opened (it returns that error too).
func (m *Manager) Refresh(ctx context.Context) error {
	var errs []error
	for _, use := range allUses {
		keys, err := m.cfg.Store.ListKeys(ctx, use)
		if err != nil {
			errs = append(errs, fmt.Errorf("keys: listing %s keys: %w", use, err))
			continue
		}
		errs = append(errs, m.apply(use, keys))
	}
	return errors.Join(errs...)
}

// apply brings the keyring (UseSeal) or the signer (UseSign) in step with keys, the stored keys
// of use (and forgets that a key of a chain is coming once the chain has none not retired): first every lifecycle change (retirements, activations, retired keys it lacks), which
// needs no key material, then the keys it lacks, whose material it opens. A key whose material
// cannot be opened is left out (and reported); the others are applied.
func (m *Manager) apply(use string, keys []rescind.Key) error {
	m.refreshMu.Lock()
	defer m.refreshMu.Unlock()
	if chain, ok := chainOf(use); ok && chain != "" {
		if _, live := pending(keys); !live {
			// The key Ensure found coming was retired (here or by another instance): nothing
			// of the chain is coming any more, so SignWith and Ready make it again.
			m.pendingMu.Lock()
			delete(m.pending, chain)
			m.pendingMu.Unlock()
		}
	}
	var errs []error
	for _, material := range []bool{false, true} {
		for _, k := range keys {
			var err error
			if use == UseSeal {
				err = m.applySeal(k, material)
			} else if chain, ok := chainOf(use); ok {
				err = m.applySign(chain, k, material)
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// applySeal applies the stored sealing key k to the keyring: without material, if the keyring
// holds k or k is retired; with material, if it is neither.
func (m *Manager) applySeal(k rescind.Key, material bool) error {
	id, err := token.ParseKeyID(k.ID)
	if err != nil {
		if material {
			return fmt.Errorf("keys: stored key: %w", err)
		}
		return nil
	}
	sk := token.SealKey{ID: id, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt}
	if needs := !m.ring.Has(id) && k.RetiredAt.IsZero(); needs != material {
		return nil
	} else if needs {
		if sk.Secret, err = m.open(k); err != nil {
			return err
		}
	}
	if err := m.ring.Add(sk); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

// applySign is applySeal for a signing key of chain.
func (m *Manager) applySign(chain string, k rescind.Key, material bool) error {
	sk := token.SigningKey{ID: k.ID, Alg: k.Algorithm, Chain: chain, CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt}
	if needs := !m.signer.Has(k.ID) && k.RetiredAt.IsZero(); needs != material {
		return nil
	} else if needs {
		der, err := m.open(k)
		if err != nil {
			return err
		}
		if sk.Private, err = token.ParsePrivate(der); err != nil {
			return fmt.Errorf("keys: signing key %s: %w", k.ID, err)
		}
	}
	m.signer.Add(sk)
	return nil
}

// RefreshSealKey makes sure the keyring knows kid if the store does (a key another instance just
// rotated in), and reports whether it does. The store is read at most once per
// MinRefreshInterval, since anyone can forge a token naming an unknown key.
func (m *Manager) RefreshSealKey(ctx context.Context, kid [4]byte) bool {
	if m.ring.Has(kid) || !m.onDemand() {
		return m.ring.Has(kid)
	}
	if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
		m.cfg.Logger.Warn("keys: refreshing for a token of an unknown sealing key", "err", err)
	}
	return m.ring.Has(kid)
}

// RefreshSigningKey is RefreshSealKey for a signing key.
func (m *Manager) RefreshSigningKey(ctx context.Context, kid string) bool {
	if m.signer.Has(kid) || !m.onDemand() {
		return m.signer.Has(kid)
	}
	if err := m.Refresh(ctx); err != nil && ctx.Err() == nil {
		m.cfg.Logger.Warn("keys: refreshing for a token of an unknown signing key", "err", err)
	}
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

// created returns the creation time of a new key of use: now, unless a stored key of use was
// created at or after now by this clock (stamped by an instance whose clock is ahead), then just
// after the newest stored key. Keys are ordered by creation time (rescind.SortKeys), so a key
// always sorts after every key stored before it, whatever the instances' clocks: a rotation
// through one instance is never undone by an earlier one through another whose clock is ahead.
func (m *Manager) created(ctx context.Context, use string, now time.Time) (time.Time, error) {
	keys, err := m.cfg.Store.ListKeys(ctx, use)
	if err != nil {
		return time.Time{}, fmt.Errorf("keys: listing: %w", err)
	}
	if len(keys) > 0 && !now.After(keys[0].CreatedAt) {
		return keys[0].CreatedAt.Add(time.Microsecond), nil
	}
	return now, nil
}

// createSealKey creates a sealing key, in force from now.
func (m *Manager) createSealKey(ctx context.Context, now time.Time) (string, error) {
	created, err := m.created(ctx, UseSeal, now)
	if err != nil {
		return "", err
	}
	k, err := token.NewSealKey()
	if err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	k.CreatedAt, k.ActivatesAt = created, now
	kid := k.KeyIDString()
	if err := m.store(ctx, rescind.Key{ID: kid, Use: UseSeal, Algorithm: algSeal, CreatedAt: created, ActivatesAt: now}, k.Secret); err != nil {
		return "", err
	}
	if err := m.ring.Add(k); err != nil {
		return "", fmt.Errorf("keys: %w", err)
	}
	return kid, nil
}

// createSigningKey creates a signing key of alg in chain, published at once and signing from
// activates, with kid (if empty, a random one).
func (m *Manager) createSigningKey(ctx context.Context, chain, alg string, now, activates time.Time, kid string) (string, error) {
	use := ChainUse(chain)
	created, err := m.created(ctx, use, now)
	if err != nil {
		return "", err
	}
	if kid == "" {
		if kid, err = secret.NewID(); err != nil {
			return "", err
		}
	}
	k, err := m.cfg.NewSigningKey(kid, alg, created)
	if err != nil {
		return "", err
	}
	k.Chain, k.ActivatesAt = chain, activates
	der, err := k.MarshalPrivate()
	if err != nil {
		return "", fmt.Errorf("keys: encoding signing key: %w", err)
	}
	if err := m.store(ctx, rescind.Key{ID: kid, Use: use, Algorithm: k.Alg, CreatedAt: created, ActivatesAt: activates}, der); err != nil {
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
		return fmt.Errorf("keys: storing new key: %w", err) // ErrAlreadyExists for a taken kid
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
