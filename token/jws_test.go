package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// joseSign signs payload with go-jose, an independent implementation, with typ and kid.
func joseSign(t *testing.T, alg jose.SignatureAlgorithm, key any, payload string, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "k1")
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	text, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// TestJWSInterop: what go-jose signs with each supported algorithm, ParseJWS and Verify accept
// with the key and its algorithm, and nothing else: not another key, not the key under another
// algorithm. What Signer signs, go-jose verifies.
func TestJWSInterop(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	other256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		alg, key string
		priv     any
		pub      crypto.PublicKey
	}{
		{AlgES256, "p256", p256, &p256.PublicKey},
		{AlgES384, "p384", p384, &p384.PublicKey},
		{AlgES512, "p521", p521, &p521.PublicKey},
		{AlgEdDSA, "ed25519", edPriv, edPub},
		{AlgRS256, "rsa", rsaKey, &rsaKey.PublicKey},
		{AlgPS256, "rsa", rsaKey, &rsaKey.PublicKey},
	}
	for _, c := range cases {
		t.Run(c.alg, func(t *testing.T) {
			text := joseSign(t, jose.SignatureAlgorithm(c.alg), c.priv, `{"jti":"x"}`, nil)
			j, err := ParseJWS(text)
			if err != nil {
				t.Fatal(err)
			}
			if j.Alg != c.alg || j.Kid != "k1" || j.Typ != "at+jwt" || string(j.Payload) != `{"jti":"x"}` {
				t.Fatalf("parsed %+v", j)
			}
			if !j.Verify(c.alg, c.pub) {
				t.Fatal("a valid signature refused")
			}
			for _, o := range cases {
				if o.alg != c.alg && j.Verify(o.alg, c.pub) {
					t.Fatalf("verified under %s, not the token's algorithm", o.alg)
				}
				if o.key != c.key && j.Verify(c.alg, o.pub) {
					t.Fatalf("verified with the %s key", o.alg)
				}
			}
			if c.alg == AlgES256 && j.Verify(c.alg, &other256.PublicKey) {
				t.Fatal("verified with another P-256 key")
			}
		})
	}
	for _, alg := range SigningAlgorithms {
		k := testKey(t, "k1", alg, time.Unix(1_900_000_000, 0))
		text, err := NewSigner(0, k).SignWith(alg, AccessClaims{ID: "j"}, TypeAccessToken)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSigned(text, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil {
			t.Fatalf("%s: go-jose cannot parse what Signer signed: %v", alg, err)
		}
		if _, err := jws.Verify(k.Private.Public()); err != nil {
			t.Fatalf("%s: go-jose refuses what Signer signed: %v", alg, err)
		}
		if h := jws.Signatures[0].Protected; h.KeyID != "k1" || h.ExtraHeaders[jose.HeaderType] != TypeAccessToken {
			t.Fatalf("%s: header %+v", alg, h)
		}
	}
}

// TestParseJWSRefuses: each malformed form of a valid token is refused, each differing from it
// in one respect.
func TestParseJWSRefuses(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	valid := joseSign(t, jose.ES256, key, `{"jti":"x"}`, nil)
	if _, err := ParseJWS(valid); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	enc := base64.RawURLEncoding.EncodeToString
	// The last character of a 64-byte signature carries 2 bits and 4 zero bits; set one.
	sig := parts[2]
	last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", sig[len(sig)-1])
	nonCanonical := sig[:len(sig)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
	for name, text := range map[string]string{
		"two parts":          parts[0] + "." + parts[1],
		"four parts":         valid + ".x",
		"empty payload":      parts[0] + ".." + parts[2],
		"empty signature":    parts[0] + "." + parts[1] + ".",
		"padded signature":   valid + "==",
		"standard base64":    parts[0] + "." + parts[1] + "." + "+" + parts[2][1:],
		"trailing bits":      parts[0] + "." + parts[1] + "." + nonCanonical,
		"header not JSON":    enc([]byte(`alg=ES256`)) + "." + parts[1] + "." + parts[2],
		"header without alg": enc([]byte(`{"kid":"k1","typ":"at+jwt"}`)) + "." + parts[1] + "." + parts[2],
		"LF in signature":    parts[0] + "." + parts[1] + "." + sig[:4] + "\n" + sig[4:],
		"CRLF in payload":    parts[0] + "." + parts[1][:3] + "\r\n" + parts[1][3:] + "." + parts[2],
		"trailing LF":        valid + "\n",
		"space in header":    parts[0][:2] + " " + parts[0][2:] + "." + parts[1] + "." + parts[2],
		"crit header":        joseSign(t, jose.ES256, key, `{"jti":"x"}`, map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1}),
	} {
		if j, err := ParseJWS(text); err == nil {
			t.Errorf("%s: parsed %+v", name, j)
		}
	}
	// A signature one bit off, or of another length, parses but does not verify.
	j, _ := ParseJWS(valid)
	j.signature[0] ^= 1
	if j.Verify(AlgES256, &key.PublicKey) {
		t.Fatal("a altered signature verified")
	}
	j, _ = ParseJWS(valid)
	j.signature = append(j.signature, 0)
	if j.Verify(AlgES256, &key.PublicKey) {
		t.Fatal("a 65-byte ES256 signature verified")
	}
	// A payload altered after signing.
	j, _ = ParseJWS(parts[0] + "." + enc([]byte(`{"jti":"y"}`)) + "." + parts[2])
	if j == nil || j.Verify(AlgES256, &key.PublicKey) {
		t.Fatal("an altered payload verified")
	}
}

// TestOwnTokensCheckedBySigningAgain: the signer's tokens are deterministic (the same claims
// give the same text), so it recognises its own by signing again; a token of one of its keys
// with another valid signature (signed with a random nonce, as older releases did, or the
// other ECDSA signature (r, n-s) of the same content) is still verified, and one with an
// altered signature is refused.
func TestOwnTokensCheckedBySigningAgain(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	for _, alg := range SigningAlgorithms {
		t.Run(alg, func(t *testing.T) {
			k := testKey(t, "k1", alg, now)
			s := NewSigner(time.Hour, k)
			a, _ := s.Sign(AccessClaims{ID: "j", Subject: "u"}, TypeAccessToken)
			b, _ := s.Sign(AccessClaims{ID: "j", Subject: "u"}, TypeAccessToken)
			if a != b {
				t.Fatal("the same claims signed twice differ: signatures are not deterministic")
			}
			if _, kid, err := s.VerifyKey(a, TypeAccessToken, now); err != nil || kid != "k1" {
				t.Fatalf("own token: kid %q, %v", kid, err)
			}
			parts := strings.Split(a, ".")
			others := map[string]string{}
			// The same header and payload signed with a random nonce (Ed25519 has none: its
			// signatures are deterministic by design).
			jws, _ := ParseJWS(a)
			switch p := k.Private.(type) {
			case *ecdsa.PrivateKey:
				d := sha256.Sum256([]byte(jws.signed))
				r, ss, _ := ecdsa.Sign(rand.Reader, p, d[:])
				sig := append(r.FillBytes(make([]byte, 32)), ss.FillBytes(make([]byte, 32))...)
				others["random nonce"] = parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
				// (r, n-s): the other valid signature of the same content.
				r2, s2 := new(big.Int).SetBytes(jws.signature[:32]), new(big.Int).SetBytes(jws.signature[32:])
				s2.Sub(elliptic.P256().Params().N, s2)
				others["(r, n-s)"] = parts[0] + "." + parts[1] + "." +
					base64.RawURLEncoding.EncodeToString(append(r2.FillBytes(make([]byte, 32)), s2.FillBytes(make([]byte, 32))...))
			}
			for name, text := range others {
				if text == a {
					t.Fatalf("%s: the same text as the signer's", name)
				}
				if _, _, err := s.VerifyKey(text, TypeAccessToken, now); err != nil {
					t.Fatalf("%s: a valid signature by the key refused: %v", name, err)
				}
			}
			sigBytes := append([]byte(nil), jws.signature...)
			sigBytes[10] ^= 0x01
			if _, _, err := s.VerifyKey(parts[0]+"."+parts[1]+"."+base64.RawURLEncoding.EncodeToString(sigBytes), TypeAccessToken, now); err == nil {
				t.Fatal("an altered signature verified")
			}
		})
	}
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// testKey returns a key of alg created at now; RS256 keys share one RSAKeyBits key generated
// once (generating one costs half a second).
func testKey(t testing.TB, kid, alg string, now time.Time) SigningKey {
	t.Helper()
	if alg == AlgRS256 {
		rsaOnce.Do(func() {
			k, err := NewSigningKey("", AlgRS256, now)
			if err != nil {
				t.Fatal(err)
			}
			rsaKey = k.Private.(*rsa.PrivateKey)
		})
		if rsaKey == nil {
			t.Fatal("no RSA key")
		}
		return SigningKey{ID: kid, Alg: AlgRS256, Private: rsaKey, CreatedAt: now}
	}
	k, err := NewSigningKey(kid, alg, now)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestNewSigningKeyRSA: an RS256 key has RSAKeyBits, survives MarshalPrivate and ParsePrivate,
// and signs what go-jose verifies with its public key under RS256 only.
func TestNewSigningKeyRSA(t *testing.T) {
	k := testKey(t, "r", AlgRS256, time.Unix(1_900_000_000, 0))
	if bits := k.Private.(*rsa.PrivateKey).N.BitLen(); bits != RSAKeyBits {
		t.Fatalf("RSA key of %d bits; want %d", bits, RSAKeyBits)
	}
	der, err := k.MarshalPrivate()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivate(der)
	if err != nil {
		t.Fatal(err)
	}
	k.Private = back
	text, err := NewSigner(0, k).SignWith(AlgRS256, AccessClaims{ID: "j"}, "JWT")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jose.ParseSigned(text, []jose.SignatureAlgorithm{jose.PS256}); err == nil {
		t.Fatal("go-jose parsed an RS256 token as PS256")
	}
	jws, err := jose.ParseSigned(text, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(back.Public()); err != nil {
		t.Fatalf("go-jose refuses the reloaded key's RS256 token: %v", err)
	}
}

// TestSignRefusesWeakRSA: an RSA key below MinRSAKeyBits signs nothing, a key signs only its own
// algorithm.
func TestSignRefusesWeakRSA(t *testing.T) {
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signature(AlgRS256, weak, []byte("x")); err == nil {
		t.Fatal("a 1024-bit RSA key signed")
	}
	strong := testKey(t, "r", AlgRS256, time.Unix(1_900_000_000, 0))
	if _, err := signature(AlgRS256, strong.Private, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := signature(AlgPS256, strong.Private, []byte("x")); err == nil {
		t.Fatal("an RS256 key signed PS256")
	}
	if _, err := signature(AlgES256, strong.Private, []byte("x")); err == nil {
		t.Fatal("an RSA key signed ES256")
	}
}
