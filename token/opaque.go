package token

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/rescind/rescind"
)

// AccessPrefix starts every opaque access token.
const AccessPrefix = "rsc_at_"

// MaxLength bounds the text length of a token the server will try to open.
const MaxLength = 4096

// Format versions. Version 1 carries no audience (its tokens' audience is the issuer);
// version 2 adds the audience list after the other claims; version 3 adds, after the audience
// list, the thumbprint of the DPoP key the token is bound to (RFC 9449 §6). All three open. A
// token is sealed in the lowest version that carries its claims, so that a server that knows
// only an older version (an older instance during an upgrade) reads it, and revokes it, like any
// other; a DPoP-bound token is one that such a server cannot open, so it never accepts one as a
// bearer token.
const (
	formatV1      = 1
	formatVersion = 2
	formatDPoP    = 3
	kidLen        = 4
	headerLen     = 1 + kidLen
	crcLen        = 4
	jtiLen        = 16
)

// strictB64 refuses non-zero trailing bits. It skips CR and LF, as every Go base64 decoder
// does: decodeB64 refuses them (and any other byte outside the alphabet) first.
var strictB64 = base64.RawURLEncoding.Strict()

// decodeB64 decodes unpadded base64url with zero trailing bits and nothing but the alphabet's
// 64 characters, so that each byte string has exactly one text form: a token cannot be given
// other spellings (say, with line breaks) that pass every check as the same token but are
// different keys to a cache or a replay record.
func decodeB64(s string) ([]byte, error) {
	// The decoder refuses every byte outside the alphabet but CR and LF, which it skips: those
	// two are looked for here (a vectorised search, not a loop over every byte: issue 20).
	for _, c := range [...]byte{'\r', '\n'} {
		if i := strings.IndexByte(s, c); i >= 0 {
			return nil, fmt.Errorf("token: byte %#x at %d is not base64url", c, i)
		}
	}
	return strictB64.DecodeString(s)
}

// ErrMalformed is returned for text that is not a well-formed opaque access token.
var ErrMalformed = errors.New("token: malformed access token")

// ErrUnknownKey is returned when a well-formed token names a key the keyring does not hold.
var ErrUnknownKey = errors.New("token: sealed under an unknown key")

// ErrRetiredKey is returned for a token sealed under a key that is retired: refused everywhere.
var ErrRetiredKey = errors.New("token: sealed under a retired key")

// ErrInvalid is returned when a token fails authentication (forged or altered).
var ErrInvalid = errors.New("token: authentication failed")

// Claims are the contents of an access token.
type Claims struct {
	// ID is the token id (jti), 16 random bytes.
	ID [jtiLen]byte
	// GrantID is the grant the token belongs to; empty for client_credentials tokens.
	GrantID string
	// ClientID is the client the token was issued to.
	ClientID string
	// Subject is the resource owner, or the client id for client_credentials.
	Subject string
	// Scope is the space-delimited scope.
	Scope string
	// IssuedAt is when the token was issued, to the nanosecond (revocation cut-offs compare it).
	IssuedAt time.Time
	// Expiry is when the token stops being valid, to the second.
	Expiry time.Time
	// Audience lists the resources (RFC 8707) the token is for. Empty means the issuer: a
	// token sealed before audiences were sealed (format version 1) opens with none.
	Audience []string
	// JKT is the JWK SHA-256 thumbprint of the DPoP key the token is bound to (RFC 9449 §6.1,
	// the cnf.jkt of a JWT); empty for a bearer token. At most MaxJKTLength bytes.
	JKT string
}

// MaxJKTLength bounds Claims.JKT. A SHA-256 thumbprint is 43 characters in base64url.
const MaxJKTLength = 64

// MaxAudience bounds the number of audience values a token carries.
const MaxAudience = 32

// JTI returns the token id in its text form (base64url, 22 characters).
func (c *Claims) JTI() string {
	return base64.RawURLEncoding.EncodeToString(c.ID[:])
}

// NewID returns a new random token id.
func NewID() ([jtiLen]byte, error) {
	var id [jtiLen]byte
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("token: reading random id: %w", err)
	}
	return id, nil
}

// SealKey is one key of a Keyring.
type SealKey struct {
	// ID is the 4-byte key id, carried in every token the key sealed.
	ID [kidLen]byte
	// Secret is the 32-byte XChaCha20-Poly1305 key; it may be nil for a retired key.
	Secret []byte
	// CreatedAt, ActivatesAt and RetiredAt place the key in its lifecycle (see
	// rescind.ActiveKey): the keyring seals with the key in force and opens tokens of every key
	// not retired. Zero times make a key in force from the start.
	CreatedAt, ActivatesAt, RetiredAt time.Time
}

// NewSealKey generates a random key.
func NewSealKey() (SealKey, error) {
	var k SealKey
	if _, err := rand.Read(k.ID[:]); err != nil {
		return k, fmt.Errorf("token: reading key id: %w", err)
	}
	k.Secret = make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(k.Secret); err != nil {
		return k, fmt.Errorf("token: reading key: %w", err)
	}
	return k, nil
}

// KeyIDString returns the key id in its text form, as stored.
func (k SealKey) KeyIDString() string { return hex.EncodeToString(k.ID[:]) }

// ParseKeyID parses a key id produced by KeyIDString.
func ParseKeyID(s string) ([kidLen]byte, error) {
	var id [kidLen]byte
	if len(s) != 2*kidLen {
		return id, fmt.Errorf("token: key id %q has the wrong length", s)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, fmt.Errorf("token: key id %q: %w", s, err)
	}
	copy(id[:], b)
	return id, nil
}

// Keyring seals tokens with the key in force at its clock's now and opens tokens sealed by any
// key it holds that is not retired, so keys rotate without invalidating live tokens. It is safe
// for concurrent use; set its fields before first use.
type Keyring struct {
	// RetireAfter is how long a key stays accepted after a newer key took over from it (the
	// longest token lifetime, plus a margin); if zero, it stays until retired by an operator.
	RetireAfter time.Duration
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time

	mu   sync.RWMutex
	meta []rescind.Key // the keys' lifecycles, in rescind.SortKeys order
	ids  [][kidLen]byte
	held map[[kidLen]byte]*sealEntry
}

type sealEntry struct {
	aead    cipher.AEAD // nil once retired
	retires time.Time   // when it retires by itself (zero: not scheduled)
}

// NewKeyring returns a keyring holding keys.
func NewKeyring(keys ...SealKey) (*Keyring, error) {
	kr := &Keyring{held: make(map[[kidLen]byte]*sealEntry)}
	for _, k := range keys {
		if err := kr.Add(k); err != nil {
			return nil, err
		}
	}
	return kr, nil
}

func (kr *Keyring) now() time.Time {
	if kr.Now != nil {
		return kr.Now()
	}
	return time.Now()
}

// Add adds k to the keyring or, if the keyring holds a key with its id, updates that key's
// lifecycle (k.Secret is then ignored and may be nil): an activation can only move earlier and a
// retirement is final, so that a stale copy of the stored keys can never undo a retirement.
func (kr *Keyring) Add(k SealKey) error {
	if k.ActivatesAt.IsZero() {
		k.ActivatesAt = k.CreatedAt
	}
	kr.mu.Lock()
	defer kr.mu.Unlock()
	m := rescind.Key{ID: hex.EncodeToString(k.ID[:]), CreatedAt: k.CreatedAt, ActivatesAt: k.ActivatesAt, RetiredAt: k.RetiredAt}
	_, held := kr.held[k.ID]
	var aead cipher.AEAD
	if !held && k.RetiredAt.IsZero() {
		var err error
		if aead, err = chacha20poly1305.NewX(k.Secret); err != nil {
			return fmt.Errorf("token: key %x: %w", k.ID, err)
		}
	}
	if e, ok := kr.held[k.ID]; ok {
		i := slices.Index(kr.ids, k.ID)
		have := &kr.meta[i]
		if m.ActivatesAt.Before(have.ActivatesAt) {
			have.ActivatesAt = m.ActivatesAt
		}
		if have.RetiredAt.IsZero() && !m.RetiredAt.IsZero() {
			have.RetiredAt = m.RetiredAt
			e.aead = nil
		}
	} else {
		kr.held[k.ID] = &sealEntry{aead: aead}
		kr.meta = append(kr.meta, m)
		kr.ids = append(kr.ids, k.ID)
	}
	kr.reorder()
	return nil
}

// reorder sorts the keys and recomputes when each retires by itself. Called with mu held.
func (kr *Keyring) reorder() {
	idx := make([]int, len(kr.meta))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		x, y := kr.meta[a], kr.meta[b]
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID, x.ID)
	})
	meta, ids := make([]rescind.Key, len(idx)), make([][kidLen]byte, len(idx))
	for i, j := range idx {
		meta[i], ids[i] = kr.meta[j], kr.ids[j]
	}
	kr.meta, kr.ids = meta, ids
	for i, id := range kr.ids {
		if kr.RetireAfter > 0 {
			kr.held[id].retires = rescind.KeyRetires(kr.meta, i, kr.RetireAfter)
		}
	}
}

// Has reports whether the keyring knows the key with id kid, retired or not.
func (kr *Keyring) Has(kid [kidLen]byte) bool {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	_, ok := kr.held[kid]
	return ok
}

// Active returns the id of the key that seals now, and false if there is none.
func (kr *Keyring) Active() ([kidLen]byte, bool) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	if i := rescind.ActiveKey(kr.meta, kr.now()); i >= 0 {
		return kr.ids[i], true
	}
	return [kidLen]byte{}, false
}

// Seal returns the text form of an access token carrying c.
func (kr *Keyring) Seal(c *Claims) (string, error) {
	var kid [kidLen]byte
	var aead cipher.AEAD
	kr.mu.RLock()
	if i := rescind.ActiveKey(kr.meta, kr.now()); i >= 0 {
		kid = kr.ids[i]
		aead = kr.held[kid].aead
	}
	kr.mu.RUnlock()
	if aead == nil {
		return "", errors.New("token: keyring has no active key")
	}
	v := byte(formatVersion)
	switch {
	case c.JKT != "":
		v = formatDPoP
	case len(c.Audience) == 0:
		v = formatV1
	}
	return kr.seal(c, kid, aead, v)
}

// seal seals c in format version v.
func (kr *Keyring) seal(c *Claims, kid [kidLen]byte, aead cipher.AEAD, v byte) (string, error) {
	if len(c.Audience) > MaxAudience {
		return "", fmt.Errorf("token: at most %d audience values", MaxAudience)
	}
	if len(c.JKT) > MaxJKTLength {
		return "", fmt.Errorf("token: a DPoP key thumbprint of %d bytes (at most %d)", len(c.JKT), MaxJKTLength)
	}
	n := 64 + len(c.GrantID) + len(c.ClientID) + len(c.Subject) + len(c.Scope) + len(c.JKT)
	for _, a := range c.Audience {
		n += 2 + len(a)
	}
	pt := make([]byte, 0, n)
	pt = appendClaims(pt, c, v)

	raw := make([]byte, headerLen+aead.NonceSize(), headerLen+aead.NonceSize()+len(pt)+aead.Overhead()+crcLen)
	raw[0] = v
	copy(raw[1:headerLen], kid[:])
	nonce := raw[headerLen:]
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("token: reading nonce: %w", err)
	}
	raw = aead.Seal(raw, nonce, pt, raw[:headerLen])
	raw = appendChecksum(raw)

	var sb strings.Builder
	sb.Grow(len(AccessPrefix) + base64.RawURLEncoding.EncodedLen(len(raw)))
	sb.WriteString(AccessPrefix)
	enc := make([]byte, base64.RawURLEncoding.EncodedLen(len(raw)))
	base64.RawURLEncoding.Encode(enc, raw)
	sb.Write(enc)
	return sb.String(), nil
}

// Open authenticates and decodes an access token. It returns ErrMalformed for anything that is
// not a well-formed token (checked before decryption), ErrUnknownKey for a key it does not hold
// ErrRetiredKey for a retired key, and ErrInvalid for a forged or altered token. It does not check expiry or revocation.
func (kr *Keyring) Open(text string) (*Claims, error) {
	raw, kid, err := decode(text)
	if err != nil {
		return nil, err
	}
	kr.mu.RLock()
	e := kr.held[kid]
	var aead cipher.AEAD
	var retires time.Time
	if e != nil {
		aead, retires = e.aead, e.retires
	}
	kr.mu.RUnlock()
	if e == nil {
		return nil, ErrUnknownKey
	}
	if aead == nil || (!retires.IsZero() && !kr.now().Before(retires)) {
		return nil, ErrRetiredKey
	}
	ns := aead.NonceSize()
	if len(raw) < headerLen+ns+aead.Overhead() {
		return nil, ErrMalformed
	}
	pt, err := aead.Open(nil, raw[headerLen:headerLen+ns], raw[headerLen+ns:], raw[:headerLen])
	if err != nil {
		return nil, ErrInvalid
	}
	c, err := parseClaims(pt, raw[0])
	if err != nil {
		return nil, ErrInvalid
	}
	return c, nil
}

// KeyID returns the id of the key that sealed the well-formed token text, without opening it.
func KeyID(text string) ([kidLen]byte, error) {
	_, kid, err := decode(text)
	return kid, err
}

// decode checks the prefix, encoding, length and checksum of text and returns the raw bytes
// without the checksum, and the key id.
func decode(text string) ([]byte, [kidLen]byte, error) {
	var kid [kidLen]byte
	if len(text) > MaxLength || !strings.HasPrefix(text, AccessPrefix) {
		return nil, kid, ErrMalformed
	}
	raw, err := decodeB64(text[len(AccessPrefix):])
	if err != nil || len(raw) < headerLen+crcLen || raw[0] < formatV1 || raw[0] > formatDPoP {
		return nil, kid, ErrMalformed
	}
	body := raw[:len(raw)-crcLen]
	if crc32.ChecksumIEEE(body) != binary.BigEndian.Uint32(raw[len(raw)-crcLen:]) {
		return nil, kid, ErrMalformed
	}
	copy(kid[:], raw[1:headerLen])
	return body, kid, nil
}

// appendChecksum appends the CRC-32 (IEEE) of b to b.
func appendChecksum(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// appendClaims encodes c in format version v: the id, iat (ns) and exp (s), then client id,
// subject, grant id and scope, each prefixed by its length (uvarint); version 2 then has the
// number of audience values (uvarint) and each, length-prefixed; version 3 then has the DPoP key
// thumbprint, length-prefixed and never empty. The version byte is part of the authenticated
// header, so a token cannot be opened as another version (a bound token read as a bearer one).
func appendClaims(b []byte, c *Claims, v byte) []byte {
	b = append(b, c.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.IssuedAt.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expiry.Unix()))
	for _, s := range [...]string{c.ClientID, c.Subject, c.GrantID, c.Scope} {
		b = appendString(b, s)
	}
	if v >= 2 {
		b = binary.AppendUvarint(b, uint64(len(c.Audience)))
		for _, a := range c.Audience {
			b = appendString(b, a)
		}
	}
	if v >= formatDPoP {
		b = appendString(b, c.JKT)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// readUvarint reads a uvarint in its shortest encoding (so each set of claims has exactly one
// encoding) and returns it and its length.
func readUvarint(b []byte) (uint64, int, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || k > 1 && b[k-1] == 0 {
		return 0, 0, false
	}
	return n, k, true
}

// readString reads a length-prefixed string from b and returns it and the rest of b.
func readString(b []byte) (string, []byte, bool) {
	n, k, ok := readUvarint(b)
	if !ok || n > uint64(len(b)-k) {
		return "", nil, false
	}
	return string(b[k : k+int(n)]), b[k+int(n):], true
}

func parseClaims(b []byte, v byte) (*Claims, error) {
	if len(b) < jtiLen+16 {
		return nil, ErrMalformed
	}
	c := &Claims{}
	copy(c.ID[:], b)
	b = b[jtiLen:]
	c.IssuedAt = time.Unix(0, int64(binary.BigEndian.Uint64(b)))
	c.Expiry = time.Unix(int64(binary.BigEndian.Uint64(b[8:])), 0)
	b = b[16:]
	for _, dst := range [...]*string{&c.ClientID, &c.Subject, &c.GrantID, &c.Scope} {
		var ok bool
		if *dst, b, ok = readString(b); !ok {
			return nil, ErrMalformed
		}
	}
	if v >= 2 {
		n, k, ok := readUvarint(b)
		if !ok || n > MaxAudience {
			return nil, ErrMalformed
		}
		b = b[k:]
		for range n {
			a, rest, ok := readString(b)
			if !ok {
				return nil, ErrMalformed
			}
			c.Audience, b = append(c.Audience, a), rest
		}
	}
	if v >= formatDPoP {
		var ok bool
		if c.JKT, b, ok = readString(b); !ok || c.JKT == "" || len(c.JKT) > MaxJKTLength {
			return nil, ErrMalformed
		}
	}
	if len(b) != 0 {
		return nil, ErrMalformed
	}
	return c, nil
}
