package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Algorithms this package creates and accepts proofs with (RFC 9449 §4.2: asymmetric only).
const (
	ES256 = "ES256"
	EdDSA = "EdDSA"
	RS256 = "RS256"
	PS256 = "PS256"
)

// SupportedAlgorithms lists the algorithms a Verifier accepts by default, for the
// dpop_signing_alg_values_supported metadata (RFC 9449 §5.1).
var SupportedAlgorithms = []string{ES256, EdDSA, RS256, PS256}

// Key is a client's DPoP key pair.
type Key struct {
	priv crypto.Signer
	alg  string
	pub  jose.JSONWebKey
	jkt  string
}

// GenerateKey creates a key for alg (ES256 if empty).
func GenerateKey(alg string) (*Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case "", ES256:
		alg = ES256
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case RS256, PS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("dpop: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("dpop: generating key: %w", err)
	}
	return NewKey(priv, alg)
}

// NewKey wraps a private key (ECDSA P-256, Ed25519 or RSA of at least 2048 bits) for alg.
func NewKey(priv crypto.Signer, alg string) (*Key, error) {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if alg != ES256 || k.Curve != elliptic.P256() {
			return nil, errors.New("dpop: an ECDSA key must be P-256 and used with ES256")
		}
	case ed25519.PrivateKey:
		if alg != EdDSA {
			return nil, errors.New("dpop: an Ed25519 key is used with EdDSA")
		}
	case *rsa.PrivateKey:
		if (alg != RS256 && alg != PS256) || k.N.BitLen() < 2048 {
			return nil, errors.New("dpop: an RSA key must have at least 2048 bits and be used with RS256 or PS256")
		}
	default:
		return nil, fmt.Errorf("dpop: unsupported key type %T", priv)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: alg}
	jkt, err := Thumbprint(&pub)
	if err != nil {
		return nil, err
	}
	return &Key{priv: priv, alg: alg, pub: pub, jkt: jkt}, nil
}

// ParseKey reads a key written by MarshalPEM (a PKCS #8 "PRIVATE KEY" block). alg may be empty
// for ECDSA (ES256) and Ed25519 (EdDSA) keys; RSA keys default to PS256.
func ParseKey(pemBytes []byte, alg string) (*Key, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, errors.New("dpop: the key file holds no PEM PRIVATE KEY block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("dpop: parsing key: %w", err)
	}
	signer, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("dpop: unsupported key type %T", k)
	}
	if alg == "" {
		switch signer.(type) {
		case *ecdsa.PrivateKey:
			alg = ES256
		case ed25519.PrivateKey:
			alg = EdDSA
		case *rsa.PrivateKey:
			alg = PS256
		}
	}
	return NewKey(signer, alg)
}

// MarshalPEM returns the private key as a PKCS #8 PEM block.
func (k *Key) MarshalPEM() ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		return nil, fmt.Errorf("dpop: encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// Algorithm returns the key's JWS algorithm.
func (k *Key) Algorithm() string { return k.alg }

// Thumbprint returns the key's JWK SHA-256 thumbprint (RFC 7638), base64url: the jkt that binds
// tokens to it (RFC 9449 §6.1).
func (k *Key) Thumbprint() string { return k.jkt }

// PublicJWK returns the public key as a JWK.
func (k *Key) PublicJWK() jose.JSONWebKey { return k.pub }

// ProofOptions are the optional parts of a proof.
type ProofOptions struct {
	// Nonce is the server's DPoP-Nonce, if it sent one (§8, §9).
	Nonce string
	// AccessToken, when the proof goes to a resource server with a DPoP-bound token, is hashed
	// into the ath claim (§4.2).
	AccessToken string
	// Now is the proof's iat. If zero, time.Now().
	Now time.Time
}

// proofClaims are the claims of a DPoP proof (RFC 9449 §4.2).
type proofClaims struct {
	JTI   string `json:"jti"`
	HTM   string `json:"htm"`
	HTU   string `json:"htu"`
	IAT   int64  `json:"iat"`
	Nonce string `json:"nonce,omitempty"`
	ATH   string `json:"ath,omitempty"`
}

// Proof returns a DPoP proof for a request with this method to uri (its query and fragment are
// left out of htu, §4.2).
func (k *Key) Proof(method, uri string, opt ProofOptions) (string, error) {
	htu, err := normalizeHTU(uri)
	if err != nil {
		return "", err
	}
	now := opt.Now
	if now.IsZero() {
		now = time.Now()
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	c := proofClaims{JTI: base64.RawURLEncoding.EncodeToString(jti[:]), HTM: method, HTU: htu, IAT: now.Unix(), Nonce: opt.Nonce}
	if opt.AccessToken != "" {
		c.ATH = TokenHash(opt.AccessToken)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.alg), Key: k.priv},
		(&jose.SignerOptions{EmbedJWK: true}).WithType(Type))
	if err != nil {
		return "", fmt.Errorf("dpop: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("dpop: signing proof: %w", err)
	}
	return jws.CompactSerialize()
}

// Type is the typ header of a DPoP proof.
const Type = "dpop+jwt"

// TokenHash returns the ath of an access token: base64url(SHA-256(token)) (§4.2).
func TokenHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Thumbprint returns the base64url JWK SHA-256 thumbprint (RFC 7638) of a public key.
func Thumbprint(k *jose.JSONWebKey) (string, error) {
	b, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("dpop: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}
