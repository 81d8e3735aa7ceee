package token

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A JWT access token of this signer's carries, besides its signature, a tag: a MAC of its alg,
// kid, typ and payload under a key derived from the private key that signed it, in the protected
// header parameter "rtg" (private to Rescind; other verifiers ignore it, RFC 7515 §4). Any
// instance holding the signing key can so recognise the token it issued with an HMAC instead of
// a signature: Authenticate, which the revocation endpoint uses. The tag authenticates the
// header and the claims, not the signature: a text with the token's exact header and payload
// and any signature of the right length passes Authenticate, so only a caller for whom that is
// the same token may use it. Revocation by a client that authenticated itself is such a caller
// (it can revoke only tokens issued to it, and only one whose header and claims it holds);
// revocation by a public client, introspection and every verifier of signatures are not, and
// check the signature (VerifyKey).

// tagParam is the header parameter carrying the tag.
const tagParam = "rtg"

// tagLen is the tag's length in bytes: a 128-bit MAC.
const tagLen = 16

// tagInfo separates the tag key from every other use of the signing key.
const tagInfo = "rescind access token tag v1"

// deriveTagKey returns the tag key of a signing key: HKDF-SHA256 (RFC 5869) of its PKCS #8
// encoding. It is nil if the key cannot be encoded (a key without its private half).
func deriveTagKey(k SigningKey) []byte {
	if k.Private == nil {
		return nil
	}
	der, err := k.MarshalPrivate()
	if err != nil {
		return nil
	}
	key, err := hkdf.Key(sha256.New, der, nil, tagInfo, sha256.Size)
	if err != nil {
		return nil
	}
	return key
}

// computeTag returns the base64url tag of a token of alg, kid and typ whose encoded payload is
// payloadB64, under key.
func computeTag(key []byte, alg, kid, typ, payloadB64 string) string {
	m := hmac.New(sha256.New, key)
	for _, s := range []string{alg, kid, typ} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	m.Write([]byte(payloadB64))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(m.Sum(sum[:0])[:tagLen])
}

// tagHeader returns the JSON header h, with the tag of a token of payloadB64 under tagKey if
// tagKey is not nil: the one encoding of it that Authenticate accepts.
func tagHeader(h jwsHeader, tagKey []byte, payloadB64 string) ([]byte, error) {
	h.Tag = nil
	if tagKey != nil {
		h.Tag = json.RawMessage(strconv.Quote(computeTag(tagKey, h.Alg, h.Kid, h.Typ, payloadB64)))
	}
	b, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("token: encoding header: %w", err)
	}
	return b, nil
}

// signatureLen returns the length of a signature of k's: the only length a token of its may carry.
func signatureLen(k SigningKey) int {
	if k.Private == nil {
		return -1
	}
	switch k.Alg {
	case AlgES256, AlgEdDSA:
		return 64
	case AlgRS256:
		if r, ok := k.Private.Public().(interface{ Size() int }); ok {
			return r.Size()
		}
	}
	return -1
}

// Authenticate checks that text is a token of this signer's, with header typ, signed by a key
// that is not retired, and returns its payload and that key's kid, as VerifyKey does; but a token
// that carries its tag is recognised by it, at the cost of an HMAC rather than a signature (see
// tagParam): its header must be, byte for byte, the one this signer writes for its payload (alg,
// kid, typ and the tag, nothing else), its signature is not checked, only its length. A token
// without a tag (signed before tags were) or with another header is checked by VerifyKey. Errors
// are VerifyKey's.
func (s *Signer) Authenticate(text, typ string, now time.Time) (payload []byte, kid string, err error) {
	if len(text) > MaxLength*2 || !LooksLikeJWT(text) {
		return nil, "", ErrBadJWT
	}
	if payload, kid, ok := s.authenticateOwnForm(text, typ, now); ok {
		return payload, kid, nil
	}
	if payload, kid, ok := s.authenticateByHeader(text, typ, now); ok {
		return payload, kid, nil
	}
	return s.VerifyKey(text, typ, now)
}

// authenticateByHeader is Authenticate's check of the tag of a token whose header it decodes:
// ok if the header is, byte for byte, the one this signer writes for the token's payload (alg,
// kid, typ and the tag, nothing else) with a key that verifies at now, and the signature has
// that key's length.
func (s *Signer) authenticateByHeader(text, typ string, now time.Time) (payload []byte, kid string, ok bool) {
	jws, err := ParseJWS(text)
	if err != nil || !jws.hasTag || jws.Typ != typ {
		return nil, "", false
	}
	k, ok := s.verifier(jws.Kid, now)
	if !ok || k.Alg != jws.Alg || k.tagKey == nil || len(jws.signature) != signatureLen(k) {
		return nil, "", false
	}
	want, err := tagHeader(jwsHeader{Alg: k.Alg, Kid: k.ID, Typ: typ}, k.tagKey, jws.payloadB64())
	if err != nil || subtle.ConstantTimeCompare(want, jws.header) != 1 {
		return nil, "", false
	}
	return jws.Payload, jws.Kid, true
}

// authenticateOwnForm is Authenticate for a token in the one form this signer writes, checked
// without decoding JSON (issue 20: the revocation endpoint's cost per JWT): its header must be,
// byte for byte, {"alg":A,"kid":K,"typ":typ,"rtg":tag} as tagHeader writes it, for a key K that
// verifies at now, with a tag from that key's pool of keyed HMACs. ok is false for anything else,
// and the caller then takes Authenticate's general path, whose answer for such a token is the
// same: whatever ok reports, it accepts only what that path accepts (TestOwnFormAsGeneralPath).
func (s *Signer) authenticateOwnForm(text, typ string, now time.Time) (payload []byte, kid string, ok bool) {
	h, rest, _ := strings.Cut(text, ".")
	p, sig, found := strings.Cut(rest, ".")
	if !found || h == "" || p == "" || sig == "" {
		return nil, "", false
	}
	header, err := decodeB64(h)
	if err != nil {
		return nil, "", false
	}
	const kidAt, typAt = `","kid":"`, `","typ":"`
	_, afterKid, found := strings.Cut(string(header), kidAt)
	if !found {
		return nil, "", false
	}
	kid, _, found = strings.Cut(afterKid, typAt)
	if !found {
		return nil, "", false
	}
	k, ok := s.verifier(kid, now)
	if !ok || k.tags == nil || !plainJSON(k.Alg) || !plainJSON(k.ID) || !plainJSON(typ) || k.ID == "" || typ == "" {
		return nil, "", false
	}
	want := make([]byte, 0, len(header))
	want = append(want, `{"alg":"`...)
	want = append(want, k.Alg...)
	want = append(want, kidAt...)
	want = append(want, k.ID...)
	want = append(want, typAt...)
	want = append(want, typ...)
	want = append(want, `","`+tagParam+`":"`...)
	want = k.tags.appendTag(want, k.Alg, k.ID, typ, p)
	want = append(want, `"}`...)
	if subtle.ConstantTimeCompare(want, header) != 1 {
		return nil, "", false
	}
	if signature, err := decodeB64(sig); err != nil || len(signature) != signatureLen(k) {
		return nil, "", false
	}
	if payload, err = decodeB64(p); err != nil {
		return nil, "", false
	}
	return payload, k.ID, true
}

// plainJSON reports whether encoding/json writes s, as a string, verbatim between its quotes:
// printable ASCII but for the quote, the backslash and <, > and & (escaped as HTML-safe).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// tagger computes the tags of one signing key, with keyed HMACs taken from a pool: keying an
// HMAC costs more than the tag of a token.
type tagger struct {
	macs sync.Pool
}

func newTagger(key []byte) *tagger {
	t := &tagger{}
	t.macs.New = func() any { return hmac.New(sha256.New, key) }
	return t
}

// appendTag appends computeTag(key, alg, kid, typ, payloadB64) for the tagger's key to dst.
func (t *tagger) appendTag(dst []byte, alg, kid, typ, payloadB64 string) []byte {
	m := t.macs.Get().(hash.Hash)
	m.Reset()
	for _, s := range []string{alg, kid, typ} {
		io.WriteString(m, s)
		m.Write([]byte{0})
	}
	io.WriteString(m, payloadB64)
	var sum [sha256.Size]byte
	tag := m.Sum(sum[:0])[:tagLen]
	t.macs.Put(m)
	return base64.RawURLEncoding.AppendEncode(dst, tag)
}
