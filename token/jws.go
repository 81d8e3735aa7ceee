package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// The compact JWS serialization (RFC 7515 §7.1), written and read directly:
// BASE64URL(header) "." BASE64URL(payload) "." BASE64URL(signature), the signature over the
// first two parts. The algorithm that checks a signature is always the key's own, never the one
// a token names (RFC 8725 §3.1): a token whose alg differs from its key's is refused.

// Algorithms a JWS may be checked with besides AlgES256, AlgEdDSA and AlgRS256 (RFC 7518 §3.1),
// for verifiers of other issuers' tokens (package resource); and AlgRS256, which the Signer also
// signs with.
const (
	AlgES384 = "ES384"
	AlgES512 = "ES512"
	AlgRS256 = "RS256"
	AlgPS256 = "PS256"
)

// jwsHeader is the JOSE header of a JWS (RFC 7515 §4.1) as far as this package reads it.
type jwsHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
	// Crit lists extensions the token says must be understood (RFC 7515 §4.1.11); this package
	// understands none, so a token that has any is refused.
	Crit []string `json:"crit,omitempty"`
	// Tag is this server's tag of an access token of its own (tagParam), kept raw: a token of
	// another issuer may carry a parameter of that name of any type (RFC 7515 §4).
	Tag json.RawMessage `json:"rtg,omitempty"`
}

// JWS is a compact JWS split into its parts and decoded, not yet verified.
type JWS struct {
	// Alg, Kid and Typ are the header's alg, kid and typ.
	Alg, Kid, Typ string
	// Payload is the decoded payload: not to be trusted before Verify.
	Payload []byte
	// signed is BASE64URL(header) "." BASE64URL(payload), what the signature covers.
	signed    string
	signature []byte
	// header is the decoded header, hasTag whether it has the tag parameter (tagParam).
	header []byte
	hasTag bool
}

// payloadB64 returns the payload as encoded in the token.
func (j *JWS) payloadB64() string {
	_, p, _ := strings.Cut(j.signed, ".")
	return p
}

// ParseJWS splits and decodes a compact JWS (RFC 7515 §7.1) without verifying it. Each part must
// be unpadded base64url of the alphabet's 64 characters only, with zero trailing bits, so each
// part has exactly one text form (an ECDSA signature still has two valid values, s and n-s: a
// token has at most two texts whose signature verifies; Signer.Authenticate, which does not check
// signatures, accepts any signature of the right length), and the header must be a JSON object
// without "crit" (no extension is understood, RFC 7515 §4.1.11). The error is ErrBadJWT.
func ParseJWS(text string) (*JWS, error) {
	h, rest, ok := strings.Cut(text, ".")
	if !ok {
		return nil, ErrBadJWT
	}
	p, s, ok := strings.Cut(rest, ".")
	if !ok || strings.IndexByte(s, '.') >= 0 || h == "" || p == "" || s == "" {
		return nil, ErrBadJWT
	}
	var hdr jwsHeader
	hb, err := decodeB64(h)
	if err != nil || json.Unmarshal(hb, &hdr) != nil || hdr.Crit != nil || hdr.Alg == "" {
		return nil, ErrBadJWT
	}
	j := &JWS{Alg: hdr.Alg, Kid: hdr.Kid, Typ: hdr.Typ, signed: text[:len(h)+1+len(p)], header: hb, hasTag: hdr.Tag != nil}
	if j.Payload, err = decodeB64(p); err != nil {
		return nil, ErrBadJWT
	}
	if j.signature, err = decodeB64(s); err != nil {
		return nil, ErrBadJWT
	}
	return j, nil
}

// Verify reports whether the JWS is signed by key with alg, the algorithm the key is for (the
// caller's knowledge, such as the JWK's "alg", never the token's header alone): it is false if
// alg is not the header's alg, or not one of AlgES256, AlgES384, AlgES512, AlgEdDSA, AlgRS256
// and AlgPS256 with a key of its type and curve.
func (j *JWS) Verify(alg string, key crypto.PublicKey) bool {
	if alg != j.Alg {
		return false
	}
	switch alg {
	case AlgES256:
		d := sha256.Sum256([]byte(j.signed))
		return verifyECDSA(key, elliptic.P256(), d[:], j.signature)
	case AlgES384:
		d := sha512.Sum384([]byte(j.signed))
		return verifyECDSA(key, elliptic.P384(), d[:], j.signature)
	case AlgES512:
		d := sha512.Sum512([]byte(j.signed))
		return verifyECDSA(key, elliptic.P521(), d[:], j.signature)
	case AlgEdDSA:
		k, ok := key.(ed25519.PublicKey)
		return ok && len(k) == ed25519.PublicKeySize && len(j.signature) == ed25519.SignatureSize &&
			ed25519.Verify(k, []byte(j.signed), j.signature)
	case AlgRS256, AlgPS256:
		k, ok := key.(*rsa.PublicKey)
		if !ok {
			return false
		}
		digest := sha256.Sum256([]byte(j.signed))
		if alg == AlgRS256 {
			return rsa.VerifyPKCS1v15(k, crypto.SHA256, digest[:], j.signature) == nil
		}
		return rsa.VerifyPSS(k, crypto.SHA256, digest[:], j.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	}
	return false
}

// verifyECDSA checks a JWS ECDSA signature, R||S each as long as the curve's order (RFC 7518
// §3.4), over digest, with key, which must be on curve.
func verifyECDSA(key crypto.PublicKey, curve elliptic.Curve, digest, sig []byte) bool {
	k, ok := key.(*ecdsa.PublicKey)
	if !ok || k.Curve != curve {
		return false
	}
	n := (curve.Params().BitSize + 7) / 8
	if len(sig) != 2*n {
		return false
	}
	r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
	return ecdsa.Verify(k, digest, r, s)
}

// signJWS returns the compact JWS of payload signed by key with alg, with kid and typ in its
// header and, if tagKey is not nil, the tag of the token under it (see tagParam).
func signJWS(alg, kid, typ string, key crypto.Signer, tagKey, payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	h := jwsHeader{Alg: alg, Kid: kid, Typ: typ}
	hdr, err := tagHeader(h, tagKey, enc.EncodeToString(payload))
	if err != nil {
		return "", fmt.Errorf("token: encoding header: %w", err)
	}
	n := enc.EncodedLen(len(hdr)) + 1 + enc.EncodedLen(len(payload))
	sigLen := 64
	if k, ok := key.(*rsa.PrivateKey); ok {
		sigLen = k.Size()
	}
	buf := make([]byte, n, n+1+enc.EncodedLen(sigLen))
	enc.Encode(buf, hdr)
	buf[enc.EncodedLen(len(hdr))] = '.'
	enc.Encode(buf[enc.EncodedLen(len(hdr))+1:], payload)
	sig, err := signature(alg, key, buf)
	if err != nil {
		return "", err
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// signature returns the JWS signature of signed by key with alg. It is deterministic: ES256
// signatures follow RFC 6979 (the nonce derived from the key and the message), and Ed25519's
// and RSASSA-PKCS1-v1_5's are by design. So the signer checks an ES256 or EdDSA token of its own
// by signing it again and comparing (Signer.VerifyKey), at the cost of a signature rather than
// the three times dearer verification; nothing it computes that way is ever sent anywhere. (An
// RS256 signature costs some 16 verifications: RS256 tokens are verified.)
func signature(alg string, key crypto.Signer, signed []byte) ([]byte, error) {
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		if alg != AlgES256 || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("token: key cannot sign %s", alg)
		}
		digest := sha256.Sum256(signed)
		der, err := k.Sign(nil, digest[:], crypto.SHA256) // nil: deterministic (RFC 6979)
		if err != nil {
			return nil, fmt.Errorf("token: signing: %w", err)
		}
		var r, s []byte
		in := cryptobyte.String(der)
		var seq cryptobyte.String
		if !in.ReadASN1(&seq, asn1.SEQUENCE) || !seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) ||
			len(bytes.TrimLeft(r, "\x00")) > 32 || len(bytes.TrimLeft(s, "\x00")) > 32 {
			return nil, errors.New("token: signing: malformed ECDSA signature")
		}
		sig := make([]byte, 64) // R||S, each left-padded to 32 bytes (RFC 7518 §3.4)
		r, s = bytes.TrimLeft(r, "\x00"), bytes.TrimLeft(s, "\x00")
		copy(sig[32-len(r):32], r)
		copy(sig[64-len(s):], s)
		return sig, nil
	case ed25519.PrivateKey:
		if alg != AlgEdDSA {
			return nil, fmt.Errorf("token: key cannot sign %s", alg)
		}
		return ed25519.Sign(k, signed), nil
	case *rsa.PrivateKey:
		if alg != AlgRS256 || k.N.BitLen() < MinRSAKeyBits {
			return nil, fmt.Errorf("token: key cannot sign %s", alg)
		}
		digest := sha256.Sum256(signed)
		sig, err := rsa.SignPKCS1v15(nil, k, crypto.SHA256, digest[:]) // RFC 7518 §3.3
		if err != nil {
			return nil, fmt.Errorf("token: signing: %w", err)
		}
		return sig, nil
	}
	return nil, errors.New("token: unsupported signing key")
}
