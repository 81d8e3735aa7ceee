package oauth

import (
	"context"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/token"
)

// IDSigner signs the JWTs OpenID Connect gives relying parties: ID tokens (OpenID Connect Core
// 1.0 §2) and logout tokens (Back-Channel Logout 1.0 §2.4). It is the one seam between them and
// the keys: each relying party asks for an algorithm (id_token_signed_response_alg, RS256 by
// default), and the signer says which it used, since at_hash depends on it (§3.1.3.6).
type IDSigner interface {
	// SignFor signs the claims claims(alg) makes with a key of algorithm alg if there is one in
	// force, else with the key in force, under header typ; it returns the compact JWS.
	SignFor(alg, typ string, claims func(alg string) any) (string, error)
	// Algorithms lists the algorithms ID tokens can be signed with now (discovery's
	// id_token_signing_alg_values_supported).
	Algorithms() []string
	// Ready reports whether SignFor(alg, ...) can sign now: false while the first key of alg's
	// chain waits to be published everywhere before it signs (a chain made after first start).
	Ready(alg string) bool
}

// keySigner is the IDSigner of a Server given a Signer but no IDSigner (tests): the Signer's key
// in force signs, whatever algorithm the client asked for. cmd/rescind gives an AlgSigner, which
// honours each client's algorithm.
type keySigner struct {
	s   *token.Signer
	now func() time.Time
}

// activeAlg returns the algorithm of the key in force.
func (k keySigner) activeAlg() (string, error) {
	kid, ok := k.s.Active()
	if !ok {
		return "", errors.New("oauth: no signing key in force")
	}
	for _, j := range k.s.JWKS(k.now()).Keys {
		if j.KeyID == kid {
			return j.Algorithm, nil
		}
	}
	return "", errors.New("oauth: the signing key in force is not published")
}

func (k keySigner) SignFor(_, typ string, claims func(alg string) any) (string, error) {
	// The key in force may change between choosing the claims and signing (a rotation to
	// another algorithm): the algorithm is read back from the header and the token made again.
	for range 3 {
		alg, err := k.activeAlg()
		if err != nil {
			return "", err
		}
		text, err := k.s.Sign(claims(alg), typ)
		if err != nil {
			return "", err
		}
		if got, _ := jwtAlg(text); got == alg {
			return text, nil
		}
	}
	return "", errors.New("oauth: the signing key kept changing")
}

func (k keySigner) Ready(string) bool {
	_, ok := k.s.Active()
	return ok
}

func (k keySigner) Algorithms() []string {
	var out []string
	for _, j := range k.s.JWKS(k.now()).Keys {
		if !slices.Contains(out, j.Algorithm) {
			out = append(out, j.Algorithm)
		}
	}
	if alg, err := k.activeAlg(); err == nil && !slices.Contains(out, alg) {
		out = append(out, alg)
	}
	slices.Sort(out)
	return out
}

// jwtAlg returns the alg of a compact JWS's header, unverified.
func jwtAlg(text string) (string, error) {
	head, _, ok := strings.Cut(text, ".")
	if !ok {
		return "", token.ErrBadJWT
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return "", token.ErrBadJWT
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return "", token.ErrBadJWT
	}
	return h.Alg, nil
}

// halfHash is at_hash (OpenID Connect Core 1.0 §3.1.3.6): the base64url left half of the hash
// of the access token, with the hash of the ID token's algorithm: SHA-256 for RS256 and ES256,
// SHA-512 for EdDSA (Ed25519's hash, as other providers and openid-client use).
func halfHash(alg, accessToken string) (string, error) {
	var h crypto.Hash
	switch alg {
	case rescind.AlgRS256, rescind.AlgES256, "PS256":
		h = crypto.SHA256
	case "ES384", "RS384", "PS384":
		h = crypto.SHA384
	case rescind.AlgEdDSA, "ES512", "RS512", "PS512":
		h = crypto.SHA512
	default:
		return "", fmt.Errorf("oauth: no at_hash for algorithm %q", alg)
	}
	d := h.New()
	d.Write([]byte(accessToken))
	sum := d.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}

// AlgSigner is the IDSigner over signing keys of several algorithms (keys.Manager.SignWith;
// every chain's first key is made at first start): each relying party's tokens are signed
// with its own id_token_signed_response_alg, RS256 by default, as OpenID Connect requires.
type AlgSigner struct {
	// Sign signs claims with a key of algorithm alg, under header typ. Required.
	Sign func(ctx context.Context, alg string, claims any, typ string) (string, error)
	// Algs are the algorithms Sign supports (discovery's id_token_signing_alg_values_supported).
	Algs []string
	// CanSign reports whether Sign can sign with alg now (IDSigner.Ready); nil means always.
	CanSign func(alg string) bool
}

// Ready implements IDSigner.
func (a AlgSigner) Ready(alg string) bool { return a.CanSign == nil || a.CanSign(alg) }

// SignFor implements IDSigner.
func (a AlgSigner) SignFor(alg, typ string, claims func(alg string) any) (string, error) {
	return a.Sign(context.Background(), alg, claims(alg), typ)
}

// Algorithms implements IDSigner.
func (a AlgSigner) Algorithms() []string { return a.Algs }
