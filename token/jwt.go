package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/rescind/rescind"
)

// Media types of JWTs this package issues (RFC 9068 §2.1, Token Status List §5.1).
const (
	TypeAccessToken = "at+jwt"
	TypeStatusList  = "statuslist+jwt"
)

// Signing algorithms supported (RFC 7518 §3.1, RFC 8037 §3.1): AlgRS256 too (RSASSA-PKCS1-v1_5
// with SHA-256, RFC 7518 §3.3), which OpenID Connect requires for ID tokens and the CAEP
// interoperability profile for security event tokens.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// SigningAlgorithms are the algorithms a Signer signs with, in the order its JWKS lists them.
var SigningAlgorithms = []string{AlgES256, AlgEdDSA, AlgRS256}

// RSAKeyBits is the size of the RSA keys NewSigningKey generates: 3072 bits (NIST SP 800-57's
// 128-bit security level, matching P-256), above the 2048 bits RFC 7518 §3.3 and the CAEP
// interoperability profile require at least.
const RSAKeyBits = 3072

// MinRSAKeyBits is the smallest RSA key the signer signs with (RFC 7518 §3.3).
const MinRSAKeyBits = 2048

// JWKSMaxAge is the Cache-Control max-age of the published JWKS: how long a verifier may keep
// using its copy. A rotated signing key is published at once but signs only once this has passed
// (with a margin), so a verifier that caches the JWKS never meets a kid it could not know.
const JWKSMaxAge = 5 * time.Minute

// ErrBadJWT is returned for a JWT that is malformed, signed by an unknown key, or has a bad
// signature or type.
var ErrBadJWT = errors.New("token: invalid JWT")

// SigningKey is a private key that signs JWTs.
type SigningKey struct {
	// ID is the kid.
	ID string
	// Alg is AlgES256, AlgEdDSA or AlgRS256.
	Alg string
	// Chain is the chain of keys the key belongs to: each key of a chain takes over from the
	// one before (rescind.ActiveKey), and the chain's key in force signs. "" is the chain of
	// Sign (access tokens, status lists: the keys of the configured algorithm); an algorithm
	// names the chain of SignWith that algorithm when the key in force of chain "" is of
	// another one.
	Chain string
	// Private is the private key; it may be nil for a retired key.
	Private crypto.Signer
	// CreatedAt, ActivatesAt and RetiredAt place the key in its lifecycle (see
	// rescind.ActiveKey): the key in force signs; every key not retired is published and
	// verifies. A zero ActivatesAt means CreatedAt.
	CreatedAt, ActivatesAt, RetiredAt time.Time

	// tagKey is the key of the tags of its access tokens (see tagParam), set by Signer.Add;
	// nil once the key is retired. tags computes them with it.
	tagKey []byte
	tags   *tagger
}

// NewSigningKey generates a key for alg (an RS256 key has RSAKeyBits), of chain "".
func NewSigningKey(kid, alg string, now time.Time) (SigningKey, error) {
	k := SigningKey{ID: kid, Alg: alg, CreatedAt: now}
	var err error
	switch alg {
	case AlgES256:
		k.Private, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, k.Private, err = ed25519.GenerateKey(rand.Reader)
	case AlgRS256:
		k.Private, err = rsa.GenerateKey(rand.Reader, RSAKeyBits)
	default:
		return k, fmt.Errorf("token: unsupported signing algorithm %q", alg)
	}
	if err != nil {
		return k, fmt.Errorf("token: generating key: %w", err)
	}
	return k, nil
}

// MarshalPrivate encodes the private key as PKCS #8 DER.
func (k SigningKey) MarshalPrivate() ([]byte, error) {
	return x509.MarshalPKCS8PrivateKey(k.Private)
}

// ParsePrivate decodes a PKCS #8 DER private key.
func ParsePrivate(der []byte) (crypto.Signer, error) {
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("token: parsing private key: %w", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, errors.New("token: private key cannot sign")
	}
	return s, nil
}

// Signer signs JWTs with the key in force at its clock's now (rescind.ActiveKey) of a chain of
// keys (SigningKey.Chain), and verifies JWTs signed by any key it holds that is not retired,
// each with its own algorithm only. A key is published (in JWKS) from the moment it is added,
// before it signs, and stays published until RetireAfter past the moment a newer key of its
// chain took over from it (past the expiry of every token it signed), or until it is retired.
// It is safe for concurrent use; set its fields before first use.
type Signer struct {
	// RetireAfter is how long a replaced key stays published and trusted.
	RetireAfter time.Duration
	// Now returns the current time, for choosing the key that signs. If nil, time.Now.
	Now func() time.Time

	mu     sync.RWMutex
	chains map[string]*keyChain
}

// keyChain is the keys of one chain, in rescind.SortKeys order, with their lifecycles.
type keyChain struct {
	keys    []SigningKey
	meta    []rescind.Key // their lifecycles, in the same order
	retires []time.Time   // when each retires by itself (zero: not scheduled)
}

// NewSigner returns a Signer holding keys.
func NewSigner(retireAfter time.Duration, keys ...SigningKey) *Signer {
	s := &Signer{RetireAfter: retireAfter}
	for _, k := range keys {
		s.Add(k)
	}
	return s
}

// Add adds a key or, if the signer holds one with its kid, updates that key's lifecycle: an
// activation can only move earlier and a retirement is final, so that a stale copy of the stored
// keys can never undo a retirement. A key keeps the chain and algorithm it was first added with.
func (s *Signer) Add(k SigningKey) {
	if k.ActivatesAt.IsZero() {
		k.ActivatesAt = k.CreatedAt
	}
	if !k.RetiredAt.IsZero() {
		k.Private = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.chains == nil {
		s.chains = map[string]*keyChain{}
	}
	c, i := s.find(k.ID)
	if i >= 0 {
		have := &c.keys[i]
		if k.ActivatesAt.Before(have.ActivatesAt) {
			have.ActivatesAt = k.ActivatesAt
		}
		if have.RetiredAt.IsZero() && !k.RetiredAt.IsZero() {
			have.RetiredAt, have.Private, have.tagKey, have.tags = k.RetiredAt, nil, nil, nil
		}
	} else {
		if c = s.chains[k.Chain]; c == nil {
			c = &keyChain{}
			s.chains[k.Chain] = c
		}
		k.tagKey, k.tags = deriveTagKey(k), nil
		if k.tagKey != nil {
			k.tags = newTagger(k.tagKey)
		}
		c.keys = append(c.keys, k)
	}
	c.sort(s.RetireAfter)
}

// find returns the chain holding kid and its index there, or -1. s.mu must be held.
func (s *Signer) find(kid string) (*keyChain, int) {
	for _, c := range s.chains {
		for i, k := range c.keys {
			if k.ID == kid {
				return c, i
			}
		}
	}
	return nil, -1
}

// sort restores the chain's order and recomputes its lifecycles.
func (c *keyChain) sort(retireAfter time.Duration) {
	slices.SortStableFunc(c.keys, func(x, y SigningKey) int {
		if d := y.CreatedAt.Compare(x.CreatedAt); d != 0 {
			return d
		}
		return strings.Compare(y.ID, x.ID)
	})
	c.meta = c.meta[:0]
	for _, h := range c.keys {
		c.meta = append(c.meta, rescind.Key{ID: h.ID, CreatedAt: h.CreatedAt, ActivatesAt: h.ActivatesAt, RetiredAt: h.RetiredAt})
	}
	c.retires = make([]time.Time, len(c.keys))
	for i := range c.retires {
		if retireAfter > 0 {
			c.retires[i] = rescind.KeyRetires(c.meta, i, retireAfter)
		}
	}
}

// active returns the key in force of chain at now, if it can sign. s.mu must be held.
func (s *Signer) active(chain string, now time.Time) (SigningKey, bool) {
	c := s.chains[chain]
	if c == nil {
		return SigningKey{}, false
	}
	if i := rescind.ActiveKey(c.meta, now); i >= 0 && c.keys[i].Private != nil {
		return c.keys[i], true
	}
	return SigningKey{}, false
}

// signingKey returns the key that signs with alg at now: the key in force of chain "" if it is
// of alg, else the key in force of chain alg. s.mu must be held.
func (s *Signer) signingKey(alg string, now time.Time) (SigningKey, bool) {
	if k, ok := s.active("", now); ok && k.Alg == alg {
		return k, true
	}
	if k, ok := s.active(alg, now); ok && k.Alg == alg {
		return k, true
	}
	return SigningKey{}, false
}

// Has reports whether the signer knows kid, retired or not.
func (s *Signer) Has(kid string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, i := s.find(kid)
	return i >= 0
}

// Active returns the kid of the key that signs now with Sign, and false if there is none.
func (s *Signer) Active() (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.active("", s.now())
	return k.ID, ok
}

// ActiveWith returns the kid of the key that signs now with SignWith(alg), and false if there
// is none.
func (s *Signer) ActiveWith(alg string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.signingKey(alg, s.now())
	return k.ID, ok
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// live returns the keys published and trusted at now: those not retired, chain "" first, then
// the chains of SigningAlgorithms in that order (any other after them, by name), each newest
// first.
func (s *Signer) live(now time.Time) []SigningKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	names := make([]string, 0, len(s.chains))
	for name := range s.chains {
		names = append(names, name)
	}
	rank := func(n string) int {
		if n == "" {
			return -1
		}
		if i := slices.Index(SigningAlgorithms, n); i >= 0 {
			return i
		}
		return len(SigningAlgorithms)
	}
	slices.SortFunc(names, func(a, b string) int {
		if c := rank(a) - rank(b); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var out []SigningKey
	for _, name := range names {
		c := s.chains[name]
		for i, k := range c.keys {
			if k.RetiredAt.IsZero() && k.Private != nil && (c.retires[i].IsZero() || now.Before(c.retires[i])) {
				out = append(out, k)
			}
		}
	}
	return out
}

// ErrNoSigningKey means the signer has no key in force for the algorithm asked for.
var ErrNoSigningKey = errors.New("token: no signing key")

// Sign signs claims (marshalled to JSON) with the key in force of chain "" (the configured
// algorithm's: access tokens, status lists), with header typ.
func (s *Signer) Sign(claims any, typ string) (string, error) {
	s.mu.RLock()
	k, ok := s.active("", s.now())
	s.mu.RUnlock()
	if !ok {
		return "", ErrNoSigningKey
	}
	return signClaims(k, claims, typ)
}

// SignWith signs claims (marshalled to JSON) with algorithm alg (AlgES256, AlgEdDSA or
// AlgRS256), with header typ: with the key in force of chain "" if it is of alg, else with the
// key in force of chain alg. It returns an error wrapping ErrNoSigningKey if there is none
// (keys.Manager.SignWith creates it). An RS256 signature costs milliseconds: ID tokens and
// security event tokens only, never access tokens.
func (s *Signer) SignWith(alg string, claims any, typ string) (string, error) {
	s.mu.RLock()
	k, ok := s.signingKey(alg, s.now())
	s.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("%w for %s", ErrNoSigningKey, alg)
	}
	return signClaims(k, claims, typ)
}

func signClaims(k SigningKey, claims any, typ string) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("token: encoding claims: %w", err)
	}
	var tagKey []byte
	if typ == TypeAccessToken {
		tagKey = k.tagKey
	}
	return signJWS(k.Alg, k.ID, typ, k.Private, tagKey, payload)
}

// LooksLikeJWT reports whether text has the shape of a compact JWS.
func LooksLikeJWT(text string) bool {
	return strings.HasPrefix(text, "eyJ") && strings.Count(text, ".") == 2
}

// Verify checks a JWT signed by one of the signer's keys that are not retired, with header typ,
// and returns its payload. An error is ErrBadJWT; it is also ErrUnknownKey if the token names a
// kid the signer does not know.
func (s *Signer) Verify(text, typ string, now time.Time) ([]byte, error) {
	payload, _, err := s.VerifyKey(text, typ, now)
	return payload, err
}

// VerifyKey is Verify that also returns the kid of the key that verified the token.
func (s *Signer) VerifyKey(text, typ string, now time.Time) (payload []byte, kid string, err error) {
	if len(text) > MaxLength*2 || !LooksLikeJWT(text) {
		return nil, "", ErrBadJWT
	}
	jws, err := ParseJWS(text)
	if err != nil {
		return nil, "", ErrBadJWT
	}
	if !strings.EqualFold(jws.Typ, typ) && !strings.EqualFold(jws.Typ, "application/"+typ) {
		return nil, "", ErrBadJWT
	}
	if k, ok := s.verifier(jws.Kid, now); ok {
		// A token of this signer's is the one text it would sign for its header and payload:
		// signing again and comparing costs a third of verifying (see signature). A token that
		// differs (signed by an older release, with a random nonce) is verified.
		if jws.Alg == k.Alg && k.Alg != AlgRS256 { // an RSA signature costs some 16 verifications
			if sig, err := signature(k.Alg, k.Private, []byte(jws.signed)); err == nil && subtle.ConstantTimeCompare(sig, jws.signature) == 1 {
				return jws.Payload, jws.Kid, nil
			}
		}
		if !jws.Verify(k.Alg, k.Private.Public()) {
			return nil, "", ErrBadJWT
		}
		return jws.Payload, jws.Kid, nil
	}
	if !s.Has(jws.Kid) {
		return nil, "", errUnknownJWTKey
	}
	return nil, "", ErrBadJWT
}

// verifier returns the key kid if it verifies at now: held, not retired, not past its own
// retirement.
func (s *Signer) verifier(kid string, now time.Time) (SigningKey, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, i := s.find(kid)
	if i >= 0 {
		if k := c.keys[i]; k.RetiredAt.IsZero() && k.Private != nil && (c.retires[i].IsZero() || now.Before(c.retires[i])) {
			return k, true
		}
	}
	return SigningKey{}, false
}

// Verifies reports whether the signer still verifies what key kid signed, at now: it holds the
// key, and the key is neither retired nor past its own retirement. A cache of verified tokens
// asks it before each use of an entry, so that retiring a key also undoes what it verified.
func (s *Signer) Verifies(kid string, now time.Time) bool {
	_, ok := s.verifier(kid, now)
	return ok
}

// JWTKeyID returns the kid in the header of a compact JWS, without verifying anything.
func JWTKeyID(text string) (string, error) {
	if len(text) > MaxLength*2 || !LooksLikeJWT(text) {
		return "", ErrBadJWT
	}
	b, err := base64.RawURLEncoding.DecodeString(text[:strings.IndexByte(text, '.')])
	if err != nil {
		return "", ErrBadJWT
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil || h.Kid == "" {
		return "", ErrBadJWT
	}
	return h.Kid, nil
}

// errUnknownJWTKey is ErrBadJWT for a kid the signer does not know (perhaps a key another
// instance just added): errors.Is it ErrUnknownKey too.
var errUnknownJWTKey = fmt.Errorf("%w: %w", ErrBadJWT, ErrUnknownKey)

// JWKS returns the public keys published at now (RFC 7517), of every chain and algorithm, each
// with its kid, its alg (the only algorithm it verifies) and use "sig".
func (s *Signer) JWKS(now time.Time) jose.JSONWebKeySet {
	var set jose.JSONWebKeySet
	for _, k := range s.live(now) {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.ID, Algorithm: k.Alg, Use: "sig"})
	}
	return set
}

// AccessClaims are the claims of a JWT access token (RFC 9068 §2.2), with the status claim of
// the Token Status List and the grant id.
type AccessClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience Audience `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	ID       string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	GrantID  string   `json:"gid,omitempty"`
	Status   *Status  `json:"status,omitempty"`
	// Confirmation binds the token to a DPoP key (RFC 9449 §6.1); nil for a bearer token.
	Confirmation *Confirmation `json:"cnf,omitempty"`
}

// Confirmation is the cnf claim of a sender-constrained token (RFC 7800 §3.1): for DPoP, the
// key's JWK SHA-256 thumbprint (RFC 9449 §6.1).
type Confirmation struct {
	JKT string `json:"jkt"`
}

// Status is the status claim of a referenced token (Token Status List §6.1).
type Status struct {
	StatusList StatusListRef `json:"status_list"`
}

// StatusListRef points at one entry of a status list.
type StatusListRef struct {
	Idx int64  `json:"idx"`
	URI string `json:"uri"`
}

// Audience is a JWT "aud" claim (RFC 7519 §4.1.3): one value is written as a string, as RFC 9068
// examples and most resource servers expect, several as an array; both are read.
type Audience []string

// MarshalJSON implements json.Marshaler.
func (a Audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

// UnmarshalJSON implements json.Unmarshaler.
func (a *Audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = Audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("token: aud must be a string or an array of strings")
	}
	*a = many
	return nil
}
