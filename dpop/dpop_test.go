package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const tokenURL = "https://as.example/oauth2/token"

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rawES256 signs header and claims as a compact JWS with ES256, whatever they say: it builds
// proofs that a correct client library would refuse to make.
func rawES256(t *testing.T, header, claims any, key *ecdsa.PrivateKey) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, ok := claims.([]byte)
	if !ok {
		c, _ = json.Marshal(claims)
	}
	input := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

func ecJWK(k *ecdsa.PublicKey) map[string]any {
	return map[string]any{"kty": "EC", "crv": "P-256", "x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	nonces, _ := NewNonces([]byte(strings.Repeat("k", 32)), time.Minute)
	otherNonces, _ := NewNonces([]byte(strings.Repeat("o", 32)), time.Minute)
	newVerifier := func() *Verifier {
		return &Verifier{Replay: &MemoryCache{Now: clock}, Nonces: nonces, Now: clock}
	}
	key, _ := GenerateKey(ES256)
	ecPriv := key.priv.(*ecdsa.PrivateKey)
	other, _ := GenerateKey(ES256)
	claims := func() map[string]any {
		return map[string]any{"jti": "j-" + b64(big.NewInt(now.UnixNano()).Bytes()) + randID(), "htm": "POST", "htu": tokenURL, "iat": now.Unix()}
	}
	header := func() map[string]any {
		return map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(&ecPriv.PublicKey)}
	}
	with := func(m map[string]any, k string, v any) map[string]any {
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	proof := func(opt ProofOptions) string {
		if opt.Now.IsZero() {
			opt.Now = now
		}
		p, err := key.Proof("POST", tokenURL, opt)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	rsaSmall, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	signWith := func(alg jose.SignatureAlgorithm, k any, typ string, embed bool) string {
		opts := &jose.SignerOptions{EmbedJWK: embed}
		if typ != "" {
			opts = opts.WithType(jose.ContentType(typ))
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, opts)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(claims())
		j, err := s.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := j.CompactSerialize()
		return out
	}
	valid := proof(ProofOptions{})
	privJWK := ecJWK(&ecPriv.PublicKey)
	privJWK["d"] = b64(ecPriv.D.FillBytes(make([]byte, 32)))
	tok := "rsc_at_the-access-token"

	cases := []struct {
		name   string
		header []string
		req    Request
		want   string // "" = accepted; else the error code
	}{
		{"valid", []string{valid}, Request{}, ""},
		{"valid with a nonce", []string{proof(ProofOptions{Nonce: nonces.Current(now)})}, Request{RequireNonce: true}, ""},
		{"valid with ath and jkt", []string{proof(ProofOptions{AccessToken: tok})}, Request{AccessToken: tok, JKT: key.Thumbprint()}, ""},
		{"htu query and fragment ignored", []string{rawES256(t, header(), with(claims(), "htu", tokenURL+"?x=1#f"), ecPriv)}, Request{}, ""},
		{"htu normalised (case, default port)", []string{rawES256(t, header(), with(claims(), "htu", "HTTPS://AS.example:443/oauth2/token"), ecPriv)}, Request{}, ""},
		{"no DPoP header", nil, Request{}, CodeInvalidProof},
		{"two DPoP headers", []string{valid, valid}, Request{}, CodeInvalidProof},
		{"empty", []string{""}, Request{}, CodeInvalidProof},
		{"oversized", []string{valid + strings.Repeat("A", MaxProofBytes)}, Request{}, CodeInvalidProof},
		{"not a JWT", []string{"not-a-jwt"}, Request{}, CodeInvalidProof},
		{"JWS JSON serialization", []string{`{"payload":"e30","signatures":[]}`}, Request{}, CodeInvalidProof},
		{"alg none", []string{b64([]byte(`{"typ":"dpop+jwt","alg":"none"}`)) + "." + b64([]byte(`{}`)) + "."}, Request{}, CodeInvalidProof},
		{"symmetric alg HS256", []string{signWith(jose.HS256, []byte(strings.Repeat("s", 32)), "dpop+jwt", false)}, Request{}, CodeInvalidProof},
		{"no typ", []string{signWith(jose.ES256, ecPriv, "", true)}, Request{}, CodeInvalidProof},
		{"typ JWT", []string{signWith(jose.ES256, ecPriv, "JWT", true)}, Request{}, CodeInvalidProof},
		{"typ at+jwt", []string{rawES256(t, with(header(), "typ", "at+jwt"), claims(), ecPriv)}, Request{}, CodeInvalidProof},
		{"no jwk", []string{signWith(jose.ES256, ecPriv, "dpop+jwt", false)}, Request{}, CodeInvalidProof},
		{"private key in jwk", []string{rawES256(t, with(header(), "jwk", privJWK), claims(), ecPriv)}, Request{}, CodeInvalidProof},
		{"jwk of another key", []string{rawES256(t, with(header(), "jwk", ecJWK(&other.priv.(*ecdsa.PrivateKey).PublicKey)), claims(), ecPriv)}, Request{}, CodeInvalidProof},
		{"ES384 key", []string{signWith(jose.ES384, p384, "dpop+jwt", true)}, Request{}, CodeInvalidProof},
		{"RSA key of 1024 bits", []string{signWith(jose.RS256, rsaSmall, "dpop+jwt", true)}, Request{}, CodeInvalidProof},
		{"unknown crit header", []string{rawES256(t, with(with(header(), "crit", []string{"x"}), "x", 1), claims(), ecPriv)}, Request{}, CodeInvalidProof},
		{"claims not an object", []string{rawES256(t, header(), []byte(`["jti"]`), ecPriv)}, Request{}, CodeInvalidProof},
		{"wrong htm", []string{rawES256(t, header(), with(claims(), "htm", "GET"), ecPriv)}, Request{}, CodeInvalidProof},
		{"htm in lower case", []string{rawES256(t, header(), with(claims(), "htm", "post"), ecPriv)}, Request{}, CodeInvalidProof},
		{"no htm", []string{rawES256(t, header(), with(claims(), "htm", nil), ecPriv)}, Request{}, CodeInvalidProof},
		{"htu of another host", []string{rawES256(t, header(), with(claims(), "htu", "https://evil.example/oauth2/token"), ecPriv)}, Request{}, CodeInvalidProof},
		{"htu of another path", []string{rawES256(t, header(), with(claims(), "htu", "https://as.example/oauth2/revoke"), ecPriv)}, Request{}, CodeInvalidProof},
		{"htu over http", []string{rawES256(t, header(), with(claims(), "htu", "http://as.example/oauth2/token"), ecPriv)}, Request{}, CodeInvalidProof},
		{"htu with another port", []string{rawES256(t, header(), with(claims(), "htu", "https://as.example:8443/oauth2/token"), ecPriv)}, Request{}, CodeInvalidProof},
		{"htu not a URI", []string{rawES256(t, header(), with(claims(), "htu", "not a uri"), ecPriv)}, Request{}, CodeInvalidProof},
		{"no htu", []string{rawES256(t, header(), with(claims(), "htu", nil), ecPriv)}, Request{}, CodeInvalidProof},
		{"iat too old", []string{proof(ProofOptions{Now: now.Add(-2 * time.Minute)})}, Request{}, CodeInvalidProof},
		{"iat in the future", []string{proof(ProofOptions{Now: now.Add(2 * time.Minute)})}, Request{}, CodeInvalidProof},
		{"no iat", []string{rawES256(t, header(), with(claims(), "iat", nil), ecPriv)}, Request{}, CodeInvalidProof},
		{"iat a string", []string{rawES256(t, header(), with(claims(), "iat", "now"), ecPriv)}, Request{}, CodeInvalidProof},
		{"no jti", []string{rawES256(t, header(), with(claims(), "jti", nil), ecPriv)}, Request{}, CodeInvalidProof},
		{"jti too long", []string{rawES256(t, header(), with(claims(), "jti", strings.Repeat("j", 300)), ecPriv)}, Request{}, CodeInvalidProof},
		{"no ath with a token", []string{proof(ProofOptions{})}, Request{AccessToken: tok}, CodeInvalidProof},
		{"ath of another token", []string{proof(ProofOptions{AccessToken: "rsc_at_other"})}, Request{AccessToken: tok}, CodeInvalidProof},
		{"key not the token's", []string{proof(ProofOptions{AccessToken: tok})}, Request{AccessToken: tok, JKT: other.Thumbprint()}, CodeInvalidProof},
		{"nonce required, none sent", []string{proof(ProofOptions{})}, Request{RequireNonce: true}, CodeUseNonce},
		{"nonce forged", []string{proof(ProofOptions{Nonce: b64(make([]byte, 24))})}, Request{RequireNonce: true}, CodeUseNonce},
		// The current period's epoch with a wrong MAC: only the HMAC comparison refuses it.
		{"nonce of the current period, forged", []string{proof(ProofOptions{Nonce: forgeNonce(t, nonces.Current(now))})}, Request{RequireNonce: true}, CodeUseNonce},
		{"nonce of the previous period, forged", []string{proof(ProofOptions{Nonce: forgeNonce(t, nonces.Current(now.Add(-time.Minute)))})}, Request{RequireNonce: true}, CodeUseNonce},
		{"nonce of another key", []string{proof(ProofOptions{Nonce: otherNonces.Current(now)})}, Request{RequireNonce: true}, CodeUseNonce},
		{"nonce of the previous period", []string{proof(ProofOptions{Nonce: nonces.Current(now.Add(-time.Minute))})}, Request{RequireNonce: true}, ""},
		{"nonce of two periods ago", []string{proof(ProofOptions{Nonce: nonces.Current(now.Add(-2 * time.Minute))})}, Request{RequireNonce: true}, CodeUseNonce},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := tc.req
			req.Method, req.URL = "POST", tokenURL
			p, err := newVerifier().Verify(context.Background(), tc.header, req)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if p.JKT != key.Thumbprint() {
					t.Fatalf("jkt %q, want the key's %q", p.JKT, key.Thumbprint())
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Code != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			t.Log(e.Description)
		})
	}
	if len(cases) < 40 {
		t.Fatalf("only %d cases", len(cases))
	}
}

func TestReplay(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	v := &Verifier{Replay: &MemoryCache{Now: clock}, Now: clock}
	key, _ := GenerateKey(EdDSA)
	p, _ := key.Proof("POST", tokenURL, ProofOptions{Now: now})
	req := Request{Method: "POST", URL: tokenURL}
	if _, err := v.Verify(context.Background(), []string{p}, req); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if _, err := v.Verify(context.Background(), []string{p}, req); !errors.As(err, &e) || e.Code != CodeInvalidProof {
		t.Fatalf("replayed proof: %v", err)
	}
	// A proof refused for another reason does not use up its jti.
	p2, _ := key.Proof("POST", tokenURL, ProofOptions{Now: now})
	if _, err := v.Verify(context.Background(), []string{p2}, Request{Method: "GET", URL: tokenURL}); err == nil {
		t.Fatal("wrong method accepted")
	}
	if _, err := v.Verify(context.Background(), []string{p2}, req); err != nil {
		t.Fatalf("after a refusal for its method: %v", err)
	}
	// Past the window the cache may forget it: the proof is refused for its iat anyway.
	now = now.Add(2 * time.Minute)
	if _, err := v.Verify(context.Background(), []string{p}, req); !errors.As(err, &e) || !strings.Contains(e.Description, "iat") {
		t.Fatalf("old proof: %v", err)
	}
}

func TestMemoryCacheFull(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := &MemoryCache{MaxEntries: 2, Now: func() time.Time { return now }}
	for i := range 2 {
		if ok, err := c.Add(context.Background(), [32]byte{byte(i)}, now.Add(time.Minute)); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if _, err := c.Add(context.Background(), [32]byte{9}, now.Add(time.Minute)); !errors.Is(err, ErrCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if ok, err := c.Add(context.Background(), [32]byte{9}, now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("after expiry: %v %v", ok, err)
	}
}

func TestKeysRoundTrip(t *testing.T) {
	for _, alg := range SupportedAlgorithms {
		k, err := GenerateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		pemBytes, err := k.MarshalPEM()
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseKey(pemBytes, alg)
		if err != nil || back.Thumbprint() != k.Thumbprint() {
			t.Fatalf("%s: %v", alg, err)
		}
		v := &Verifier{Replay: &MemoryCache{}}
		p, _ := back.Proof("GET", "https://api.example/r?q=1", ProofOptions{AccessToken: "t"})
		if _, err := v.Verify(context.Background(), []string{p}, Request{Method: "GET", URL: "https://api.example/r", AccessToken: "t", JKT: k.Thumbprint()}); err != nil {
			t.Fatalf("%s proof: %v", alg, err)
		}
	}
}

// TestThumbprintRFC7638 checks the thumbprint against the example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	var k jose.JSONWebKey
	if err := json.Unmarshal([]byte(`{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`), &k); err != nil {
		t.Fatal(err)
	}
	if got, _ := Thumbprint(&k); got != "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" {
		t.Fatalf("thumbprint %q", got)
	}
}

func randID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return b64(b)
}

// TestNormalizeHTU: RFC 3986 §6.2.2 normalization, which decodes only unreserved characters: a
// reserved one stays encoded, so /a%2Fb is not /a/b (a router may tell them apart).
func TestNormalizeHTU(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://AS.example:443/x?y=1#z":          "https://as.example/x",
		"http://as.example:80":                    "http://as.example/",
		"https://[::1]:8443/x":                    "https://[::1]:8443/x",
		"https://as.example/files/a%2Fb":          "https://as.example/files/a%2Fb",
		"https://as.example/files/a%2fb":          "https://as.example/files/a%2Fb",
		"https://as.example/files/a/b":            "https://as.example/files/a/b",
		"https://as.example/%7Euser/%41%2d%5F%2E": "https://as.example/~user/A-_.",
		"https://as.example/caf%c3%a9":            "https://as.example/caf%C3%A9",
		"https://as.example/a%3Bb%3d":             "https://as.example/a%3Bb%3D",
		"https://as.example/a;b=":                 "https://as.example/a;b=",
		"https://as.example/a/./b/../c":           "https://as.example/a/c",
		"https://as.example/a/%2E%2E/c":           "https://as.example/c",
		"https://as.example/a/%2e/c":              "https://as.example/a/c",
		"https://as.example/..":                   "https://as.example/",
		"https://as.example/a/b/":                 "https://as.example/a/b/",
		"https://as.example//a":                   "https://as.example//a",
		"https://as.example/a%252Fb":              "https://as.example/a%252Fb",
	} {
		if got, err := normalizeHTU(in); err != nil || got != want {
			t.Errorf("normalizeHTU(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"https://as.example/a%zz", "https://as.example/a%2", "ftp://as.example/", "https:///x", "https://u@as.example/",
		"http://:", "http://%25", "https://[fe80::1%25eth0]/", "https://a!b.example/"} {
		if got, err := normalizeHTU(bad); err == nil {
			t.Errorf("normalizeHTU(%q) = %q; want an error", bad, got)
		}
	}
}

// TestHTUEncodedSlash: a proof for /files/a/b is refused for a request to /files/a%2Fb and the
// other way round; an unreserved character may be encoded on one side only.
func TestHTUEncodedSlash(t *testing.T) {
	k, err := GenerateKey(ES256)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Replay: &MemoryCache{}}
	for _, tc := range []struct {
		htu, url string
		ok       bool
	}{
		{"https://api.example/files/a/b", "https://api.example/files/a%2Fb", false},
		{"https://api.example/files/a%2Fb", "https://api.example/files/a/b", false},
		{"https://api.example/files/a%2Fb", "https://api.example/files/a%2fb", true},
		{"https://api.example/files/%7Ea", "https://api.example/files/~a", true},
		{"https://api.example/files/a%3Fb", "https://api.example/files/a?b", false},
	} {
		p, err := k.Proof("GET", tc.htu, ProofOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(context.Background(), []string{p}, Request{Method: "GET", URL: tc.url})
		if (err == nil) != tc.ok {
			t.Errorf("proof for %s at %s: %v; want accepted %v", tc.htu, tc.url, err, tc.ok)
		}
	}
}

// forgeNonce returns nonce with its MAC changed: the same period, a MAC no key made.
func forgeNonce(t *testing.T, nonce string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		t.Fatalf("nonce %q: %v", nonce, err)
	}
	b[len(b)-1] ^= 1
	return b64(b)
}
