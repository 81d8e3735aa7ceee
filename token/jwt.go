package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
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

// Signing algorithms supported.
const (
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

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
	// Alg is AlgES256 or AlgEdDSA.
	Alg string
	// Private is the private key; it may be nil for a retired key.
	Private crypto.Signer
	// CreatedAt, ActivatesAt and RetiredAt place the key in its lifecycle (see
	// rescind.ActiveKey): the key in force signs; every key not retired is published and
	// verifies. A zero ActivatesAt means CreatedAt.
	CreatedAt, ActivatesAt, RetiredAt time.Time
}

// NewSigningKey generates a key for alg.
func NewSigningKey(kid, alg string, now time.Time) (SigningKey, error) {
	k := SigningKey{ID: kid, Alg: alg, CreatedAt: now}
	var err error
	switch alg {
	case AlgES256:
		k.Private, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, k.Private, err = ed25519.GenerateKey(rand.Reader)
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

// Signer signs JWTs with the key in force at its clock's now (rescind.ActiveKey) and verifies
// JWTs signed by any key it holds that is not retired. A key is published (in JWKS) from the
// moment it is added, before it signs, and stays published until RetireAfter past the moment a
// newer key took over from it (past the expiry of every token it signed), or until it is
// retired. It is safe for concurrent use; set its fields before first use.
type Signer struct {
	// RetireAfter is how long a replaced key stays published and trusted.
	RetireAfter time.Duration
	// Now returns the current time, for choosing the key that signs. If nil, time.Now.
	Now func() time.Time

	mu      sync.RWMutex
	keys    []SigningKey  // in rescind.SortKeys order
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
// keys can never undo a retirement.
func (s *Signer) Add(k SigningKey) {
	if k.ActivatesAt.IsZero() {
		k.ActivatesAt = k.CreatedAt
	}
	if !k.RetiredAt.IsZero() {
		k.Private = nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.keys, func(h SigningKey) bool { return h.ID == k.ID }); i >= 0 {
		have := &s.keys[i]
		if k.ActivatesAt.Before(have.ActivatesAt) {
			have.ActivatesAt = k.ActivatesAt
		}
		if have.RetiredAt.IsZero() && !k.RetiredAt.IsZero() {
			have.RetiredAt, have.Private = k.RetiredAt, nil
		}
	} else {
		s.keys = append(s.keys, k)
	}
	s.meta = s.meta[:0]
	for _, h := range s.keys {
		s.meta = append(s.meta, rescind.Key{ID: h.ID, CreatedAt: h.CreatedAt, ActivatesAt: h.ActivatesAt, RetiredAt: h.RetiredAt})
	}
	idx := make([]int, len(s.keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		x, y := s.meta[a], s.meta[b]
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	keys, meta := make([]SigningKey, len(idx)), make([]rescind.Key, len(idx))
	for i, j := range idx {
		keys[i], meta[i] = s.keys[j], s.meta[j]
	}
	s.keys, s.meta = keys, meta
	s.retires = make([]time.Time, len(keys))
	for i := range s.retires {
		if s.RetireAfter > 0 {
			s.retires[i] = rescind.KeyRetires(s.meta, i, s.RetireAfter)
		}
	}
}

// Has reports whether the signer knows kid, retired or not.
func (s *Signer) Has(kid string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.keys {
		if k.ID == kid {
			return true
		}
	}
	return false
}

// Active returns the kid of the key that signs now, and false if there is none.
func (s *Signer) Active() (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i := rescind.ActiveKey(s.meta, s.now()); i >= 0 {
		return s.keys[i].ID, true
	}
	return "", false
}

func (s *Signer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// live returns the keys published and trusted at now: those not retired.
func (s *Signer) live(now time.Time) []SigningKey {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []SigningKey
	for i, k := range s.keys {
		if k.RetiredAt.IsZero() && k.Private != nil && (s.retires[i].IsZero() || now.Before(s.retires[i])) {
			out = append(out, k)
		}
	}
	return out
}

// Sign signs claims (marshalled to JSON) with the key in force, with header typ.
func (s *Signer) Sign(claims any, typ string) (string, error) {
	s.mu.RLock()
	i := rescind.ActiveKey(s.meta, s.now())
	if i < 0 || s.keys[i].Private == nil {
		s.mu.RUnlock()
		return "", errors.New("token: no signing key")
	}
	k := s.keys[i]
	s.mu.RUnlock()
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("token: encoding claims: %w", err)
	}
	return signJWS(k.Alg, k.ID, typ, k.Private, payload)
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
		if jws.Alg == k.Alg {
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
	for i, k := range s.keys {
		if k.ID == kid && k.RetiredAt.IsZero() && k.Private != nil && (s.retires[i].IsZero() || now.Before(s.retires[i])) {
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

// JWKS returns the public keys published at now (RFC 7517).
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
