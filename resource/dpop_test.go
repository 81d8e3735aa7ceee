package resource

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/client"
	"github.com/rescind/rescind/dpop"
)

const apiURL = "https://api.example/photos"

func newKey(t testing.TB) *dpop.Key {
	t.Helper()
	k, err := dpop.GenerateKey(dpop.ES256)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func proofFor(t testing.TB, k *dpop.Key, method, u, tok string, opt dpop.ProofOptions) string {
	t.Helper()
	opt.AccessToken = tok
	p, err := k.Proof(method, u, opt)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// call sends one request to h and returns the answer.
func call(h http.Handler, method, u, auth string, proofs ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, u, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func echoSubject() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := ClaimsFrom(r.Context())
		w.Write([]byte(c.Subject + " " + c.JKT))
	})
}

// TestDPoPAtTheMiddleware: RFC 9449 §7 at a resource server, for JWT access tokens: a bound
// token works only with the DPoP scheme and a proof of its key for this very request, and every
// refusal is 401 with the DPoP challenge naming the error and the algorithms.
func TestDPoPAtTheMiddleware(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{})
	h := m.Handler(echoSubject())
	k, other := newKey(t), newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	bearer := as.token(as.claims(2))
	as.mu.Lock()
	as.revoked[3] = true
	as.mu.Unlock()
	revoked := as.token(with(as.claims(3), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	p := func(tok string, opt dpop.ProofOptions) string { return proofFor(t, k, "GET", apiURL, tok, opt) }
	replayed := p(bound, dpop.ProofOptions{})
	if w := call(h, "GET", apiURL, "DPoP "+bound, replayed); w.Code != 200 || w.Body.String() != "alice "+k.Thumbprint() {
		t.Fatalf("valid DPoP request: %d %q %q", w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
	}
	cases := []struct {
		name   string
		method string
		url    string
		auth   string
		proofs []string
		scheme string // of the challenge
		code   string // "" for accepted
		err    error
	}{
		{"DPoP scheme in lower case", "GET", apiURL, "dpop " + bound, []string{p(bound, dpop.ProofOptions{})}, "", "", nil},
		{"query string ignored by htu", "GET", apiURL + "?page=2", "DPoP " + bound, []string{p(bound, dpop.ProofOptions{})}, "", "", nil},
		{"bearer token as Bearer", "GET", apiURL, "Bearer " + bearer, nil, "", "", nil},
		{"bound token as Bearer", "GET", apiURL, "Bearer " + bound, nil, "Bearer", "invalid_token", ErrBoundAsBearer},
		{"bound token as Bearer with a valid proof", "GET", apiURL, "Bearer " + bound, []string{p(bound, dpop.ProofOptions{})}, "Bearer", "invalid_token", ErrBoundAsBearer},
		{"bearer token with the DPoP scheme", "GET", apiURL, "DPoP " + bearer, []string{p(bearer, dpop.ProofOptions{})}, "DPoP", "invalid_token", ErrNotBound},
		{"no proof", "GET", apiURL, "DPoP " + bound, nil, "DPoP", "invalid_dpop_proof", nil},
		{"two proofs", "GET", apiURL, "DPoP " + bound, []string{p(bound, dpop.ProofOptions{}), p(bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"replayed proof", "GET", apiURL, "DPoP " + bound, []string{replayed}, "DPoP", "invalid_dpop_proof", nil},
		{"proof without ath", "GET", apiURL, "DPoP " + bound, []string{proofFor(t, k, "GET", apiURL, "", dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"ath of another token", "GET", apiURL, "DPoP " + bound, []string{p(bearer, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof by another key", "GET", apiURL, "DPoP " + bound, []string{proofFor(t, other, "GET", apiURL, bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof for another method", "DELETE", apiURL, "DPoP " + bound, []string{p(bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof for another path", "GET", "https://api.example/admin", "DPoP " + bound, []string{p(bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof for another host", "GET", "https://other.example/photos", "DPoP " + bound, []string{p(bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof for plain http", "GET", "http://api.example/photos", "DPoP " + bound, []string{p(bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof of ten minutes ago", "GET", apiURL, "DPoP " + bound, []string{p(bound, dpop.ProofOptions{Now: time.Now().Add(-10 * time.Minute)})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof that is not a JWT", "GET", apiURL, "DPoP " + bound, []string{"not.a.jwt"}, "DPoP", "invalid_dpop_proof", nil},
		{"oversized proof", "GET", apiURL, "DPoP " + bound, []string{strings.Repeat("A", dpop.MaxProofBytes+1)}, "DPoP", "invalid_dpop_proof", nil},
		{"revoked bound token with a valid proof", "GET", apiURL, "DPoP " + revoked, []string{p(revoked, dpop.ProofOptions{})}, "DPoP", "invalid_token", ErrRevoked},
		{"forged token with a valid proof", "GET", apiURL, "DPoP " + bound[:len(bound)-4] + "AAAA", []string{p(bound[:len(bound)-4]+"AAAA", dpop.ProofOptions{})}, "DPoP", "invalid_token", nil},
		{"unknown scheme", "GET", apiURL, "MAC " + bound, []string{p(bound, dpop.ProofOptions{})}, "", "", ErrNoToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := call(h, tc.method, tc.url, tc.auth, tc.proofs...)
			chal := w.Result().Header.Values("WWW-Authenticate")
			if tc.code == "" && tc.err == nil {
				if w.Code != 200 {
					t.Fatalf("refused: %d %q", w.Code, chal)
				}
				return
			}
			if w.Code != 401 || len(chal) == 0 {
				t.Fatalf("%d %q; want 401 with a challenge", w.Code, chal)
			}
			if tc.code != "" && (!strings.HasPrefix(chal[0], tc.scheme+" ") || !strings.Contains(chal[0], `error="`+tc.code+`"`)) {
				t.Fatalf("challenge %q; want %s error=%q", chal, tc.scheme, tc.code)
			}
			if !strings.Contains(strings.Join(chal, ", "), `algs="ES256 EdDSA RS256 PS256"`) {
				t.Fatalf("challenge %q does not name the algorithms", chal)
			}
			r := httptest.NewRequest(tc.method, tc.url, nil)
			r.Header.Set("Authorization", tc.auth)
			if tc.err != nil {
				for _, p := range tc.proofs {
					r.Header.Add("DPoP", p)
				}
				if _, err := m.VerifyRequest(r); !errors.Is(err, tc.err) {
					t.Fatalf("VerifyRequest: %v; want %v", err, tc.err)
				}
			}
		})
	}
	if len(cases) < 20 {
		t.Fatalf("only %d cases", len(cases))
	}
}

// TestDPoPInsufficientScope: a bound token without the scope gets 403 in the DPoP scheme.
func TestDPoPInsufficientScope(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{RequiredScopes: []string{"admin"}})
	k := newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	w := call(m.Handler(echoSubject()), "GET", apiURL, "DPoP "+bound, proofFor(t, k, "GET", apiURL, bound, dpop.ProofOptions{}))
	if chal := w.Header().Get("WWW-Authenticate"); w.Code != 403 || !strings.HasPrefix(chal, "DPoP ") || !strings.Contains(chal, `error="insufficient_scope"`) {
		t.Fatalf("%d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

// TestDPoPNonceAtTheMiddleware: with DPoPNonces the middleware demands a current nonce (§9):
// 401 use_dpop_nonce with a DPoP-Nonce header, which the client package's transport retries
// with, and the nonce is kept for later requests.
func TestDPoPNonceAtTheMiddleware(t *testing.T) {
	as := newFakeAS(t)
	nonces, _ := dpop.NewNonces([]byte(strings.Repeat("n", 32)), time.Minute)
	m := newMW(t, as, Config{DPoPNonces: nonces})
	k := newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	h := m.Handler(echoSubject())
	w := call(h, "GET", apiURL, "DPoP "+bound, proofFor(t, k, "GET", apiURL, bound, dpop.ProofOptions{}))
	nonce := w.Header().Get("DPoP-Nonce")
	if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("without a nonce: %d %q nonce %q", w.Code, w.Header().Get("WWW-Authenticate"), nonce)
	}
	w = call(h, "GET", apiURL, "DPoP "+bound, proofFor(t, k, "GET", apiURL, bound, dpop.ProofOptions{Nonce: nonce}))
	if w.Code != 200 || w.Header().Get("DPoP-Nonce") == "" {
		t.Fatalf("with the nonce: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	// The client package's transport, over HTTP: one retry for the nonce, then none.
	api := httptest.NewServer(h)
	defer api.Close()
	var sent int
	counting := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent++
		return http.DefaultTransport.RoundTrip(r)
	})
	hc := &http.Client{Transport: &client.DPoPTransport{Key: k, Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: bound}), Base: counting}}
	for i := range 2 {
		res, err := hc.Get(api.URL + "/photos")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(string(body), "alice ") {
			t.Fatalf("request %d through DPoPTransport: %d %s", i, res.StatusCode, body)
		}
	}
	if sent != 3 {
		t.Fatalf("%d requests sent for 2 calls; want 3 (one retry for the nonce)", sent)
	}
}

// TestDPoPBaseURL: behind a proxy, htu is the public URL, which BaseURL names.
func TestDPoPBaseURL(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{BaseURL: "https://public.example/api/"})
	k := newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	h := m.Handler(echoSubject())
	if w := call(h, "GET", "http://10.0.0.5:8080/photos", "DPoP "+bound,
		proofFor(t, k, "GET", "https://public.example/api/photos", bound, dpop.ProofOptions{})); w.Code != 200 {
		t.Fatalf("proof for the public URL: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := call(h, "GET", "http://10.0.0.5:8080/photos", "DPoP "+bound,
		proofFor(t, k, "GET", "http://10.0.0.5:8080/photos", bound, dpop.ProofOptions{})); w.Code != 401 {
		t.Fatalf("proof for the internal URL: %d", w.Code)
	}
}

// TestDPoPIntrospectedToken: an opaque token is bound when introspection says cnf (RFC 9449
// §6.2): a copy presented as Bearer is refused, and so is one with another key's proof.
func TestDPoPIntrospectedToken(t *testing.T) {
	k := newKey(t)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "introspection_endpoint": srv.URL + "/introspect"})
		case "/introspect":
			r.ParseForm()
			if r.PostForm.Get("token") != "rsc_at_opaque" {
				json.NewEncoder(w).Encode(map[string]any{"active": false})
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"active": true, "sub": "bob", "client_id": "app", "scope": "read",
				"token_type": "DPoP", "exp": time.Now().Add(time.Hour).Unix(), "aud": srv.URL, "cnf": map[string]string{"jkt": k.Thumbprint()}})
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	m, err := New(context.Background(), Config{Issuer: srv.URL, ClientID: "rs", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	h := m.Handler(echoSubject())
	tok := "rsc_at_opaque"
	if w := call(h, "GET", apiURL, "DPoP "+tok, proofFor(t, k, "GET", apiURL, tok, dpop.ProofOptions{})); w.Code != 200 || w.Body.String() != "bob "+k.Thumbprint() {
		t.Fatalf("bound opaque token with its proof: %d %q %q", w.Code, w.Body, w.Header().Get("WWW-Authenticate"))
	}
	if w := call(h, "GET", apiURL, "Bearer "+tok); w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("bound opaque token as Bearer: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
	if w := call(h, "GET", apiURL, "DPoP "+tok, proofFor(t, newKey(t), "GET", apiURL, tok, dpop.ProofOptions{})); w.Code != 401 ||
		!strings.Contains(w.Header().Get("WWW-Authenticate"), "invalid_dpop_proof") {
		t.Fatalf("bound opaque token with another key's proof: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}
