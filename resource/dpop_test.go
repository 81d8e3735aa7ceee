package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	m := newMW(t, as, Config{BaseURL: "https://api.example"})
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
		{"proof for another host, sent with that Host", "GET", "https://other.example/photos", "DPoP " + bound, []string{proofFor(t, k, "GET", "https://other.example/photos", bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof for plain http", "GET", apiURL, "DPoP " + bound, []string{proofFor(t, k, "GET", "http://api.example/photos", bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
		{"proof for another port", "GET", apiURL, "DPoP " + bound, []string{proofFor(t, k, "GET", "https://api.example:8443/photos", bound, dpop.ProofOptions{})}, "DPoP", "invalid_dpop_proof", nil},
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
	m := newMW(t, as, Config{RequiredScopes: []string{"admin"}, BaseURL: "https://api.example"})
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
	api := httptest.NewUnstartedServer(nil)
	base := "http://" + api.Listener.Addr().String()
	m := newMW(t, as, Config{DPoPNonces: nonces, BaseURL: base})
	k := newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	h := m.Handler(echoSubject())
	w := call(h, "GET", base+"/photos", "DPoP "+bound, proofFor(t, k, "GET", base+"/photos", bound, dpop.ProofOptions{}))
	nonce := w.Header().Get("DPoP-Nonce")
	if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || nonce == "" {
		t.Fatalf("without a nonce: %d %q nonce %q", w.Code, w.Header().Get("WWW-Authenticate"), nonce)
	}
	w = call(h, "GET", base+"/photos", "DPoP "+bound, proofFor(t, k, "GET", base+"/photos", bound, dpop.ProofOptions{Nonce: nonce}))
	if w.Code != 200 || w.Header().Get("DPoP-Nonce") == "" {
		t.Fatalf("with the nonce: %d %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}

	// The client package's transport, over HTTP: one retry for the nonce, then none.
	api.Config.Handler = h
	api.Start()
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
	m, err := New(context.Background(), Config{Issuer: srv.URL, ClientID: "rs", ClientSecret: "s", BaseURL: "https://api.example"})
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

// TestDPoPOriginIsBaseURLNotHost: the URL a proof must name comes from BaseURL, never from the
// request's Host header, which the sender chooses. A proof the client made for another origin
// (a server it was redirected to, another API it calls with the same token) is refused even
// when the attacker sends it to a real listener with Host set to that origin, nonces or not.
func TestDPoPOriginIsBaseURLNotHost(t *testing.T) {
	for _, withNonces := range []bool{false, true} {
		t.Run(map[bool]string{false: "no nonces", true: "with nonces"}[withNonces], func(t *testing.T) {
			as := newFakeAS(t)
			api := httptest.NewUnstartedServer(nil)
			api.StartTLS()
			defer api.Close()
			cfg := Config{BaseURL: api.URL}
			nonce := ""
			if withNonces {
				cfg.DPoPNonces, _ = dpop.NewNonces([]byte(strings.Repeat("k", 32)), time.Minute)
				nonce = cfg.DPoPNonces.Current(time.Now())
			}
			m := newMW(t, as, cfg)
			api.Config.Handler = m.Handler(echoSubject())
			k := newKey(t)
			bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
			send := func(host, htu string) (int, string) {
				t.Helper()
				req, _ := http.NewRequest("GET", api.URL+"/photos", nil)
				req.Host = host
				req.Header.Set("Authorization", "DPoP "+bound)
				req.Header.Set("DPoP", proofFor(t, k, "GET", htu, bound, dpop.ProofOptions{Nonce: nonce}))
				res, err := api.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				return res.StatusCode, res.Header.Get("WWW-Authenticate")
			}
			apiHost := strings.TrimPrefix(api.URL, "https://")
			if code, chal := send(apiHost, api.URL+"/photos"); code != 200 {
				t.Fatalf("a proof for the API's own URL: %d %q", code, chal)
			}
			for _, evil := range []string{"evil.example", "127.0.0.1:1", strings.Replace(apiHost, "127.0.0.1", "localhost", 1)} {
				code, chal := send(evil, "https://"+evil+"/photos")
				if code != 401 || !strings.HasPrefix(chal, `DPoP error="invalid_dpop_proof"`) {
					t.Errorf("a proof for https://%s/photos, sent with Host %s: %d %q; want 401 invalid_dpop_proof", evil, evil, code, chal)
				}
			}
			// The Host header plays no part: an honest proof is accepted whatever it says.
			if code, chal := send("evil.example", api.URL+"/photos"); code != 200 {
				t.Fatalf("a proof for the API's URL with another Host: %d %q", code, chal)
			}
		})
	}
}

// TestDPoPWithoutBaseURL: a middleware without BaseURL cannot tell which URL a proof must name,
// so it refuses every DPoP-bound token (ErrNoBaseURL), even with a proof made for the very URL
// the request went to, and one made for the origin its Host header names (what an attacker with
// a proof the client made for another server sends); Bearer tokens work as before, and a bound
// one as Bearer is still refused.
func TestDPoPWithoutBaseURL(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{})
	api := httptest.NewServer(m.Handler(echoSubject()))
	defer api.Close()
	k := newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	bearer := as.token(as.claims(2))
	u := api.URL + "/photos"
	for _, tc := range []struct {
		name, host, auth, htu string // htu: the URL of the proof, if any
		code                  int
		chal                  string
		err                   error
	}{
		{"bound token with a proof for this URL", "", "DPoP " + bound, u, 401, `DPoP error="invalid_token"`, ErrNoBaseURL},
		{"bound token with a proof for the Host it names", "evil.example", "DPoP " + bound, "http://evil.example/photos", 401, `DPoP error="invalid_token"`, ErrNoBaseURL},
		{"bound token as Bearer", "", "Bearer " + bound, "", 401, `Bearer error="invalid_token"`, ErrBoundAsBearer},
		{"bearer token", "", "Bearer " + bearer, "", 200, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newReq := func() *http.Request {
				req, _ := http.NewRequest("GET", u, nil)
				if tc.host != "" {
					req.Host = tc.host
				}
				req.Header.Set("Authorization", tc.auth)
				if tc.htu != "" {
					req.Header.Set("DPoP", proofFor(t, k, "GET", tc.htu, bound, dpop.ProofOptions{}))
				}
				return req
			}
			res, err := http.DefaultClient.Do(newReq())
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if chal := res.Header.Get("WWW-Authenticate"); res.StatusCode != tc.code || !strings.HasPrefix(chal, tc.chal) {
				t.Fatalf("%d %q; want %d %s", res.StatusCode, chal, tc.code, tc.chal)
			}
			if tc.err != nil {
				if _, err := m.VerifyRequest(newReq()); !errors.Is(err, tc.err) {
					t.Fatalf("VerifyRequest: %v; want %v", err, tc.err)
				}
			}
		})
	}
}

// TestBaseURLChecked: New refuses a BaseURL that cannot name the URLs proofs are made for.
func TestBaseURLChecked(t *testing.T) {
	as := newFakeAS(t)
	for _, bad := range []string{"api.example", "/api", "ftp://api.example", "https://", "https://user@api.example",
		"https://api.example/?x=1", "https://api.example/#f", "https://api.example/?"} {
		if _, err := New(context.Background(), Config{Issuer: as.URL, BaseURL: bad}); err == nil {
			t.Errorf("BaseURL %q accepted", bad)
		}
	}
	for _, good := range []string{"https://api.example", "https://api.example/", "http://127.0.0.1:9000", "https://public.example/api/"} {
		m, err := New(context.Background(), Config{Issuer: as.URL, BaseURL: good})
		if err != nil {
			t.Errorf("BaseURL %q refused: %v", good, err)
			continue
		}
		m.Close()
	}
}

// TestDPoPRedirectToAnotherOrigin: the scenario of audit 18: an API with an open redirect sends
// the client's DPoPTransport to another server, which would collect the bound token and a proof
// for its own URL and replay them at the API with a forged Host. The transport gives that
// server neither (it follows the redirect without them), and the API refuses such a replay
// anyway (TestDPoPOriginIsBaseURLNotHost).
func TestDPoPRedirectToAnotherOrigin(t *testing.T) {
	as := newFakeAS(t)
	var mu sync.Mutex
	var evilAuth, evilProof []string
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		evilAuth, evilProof = append(evilAuth, r.Header.Get("Authorization")), append(evilProof, r.Header.Get("DPoP"))
		mu.Unlock()
		io.WriteString(w, "thanks")
	}))
	defer evil.Close()
	api := httptest.NewUnstartedServer(nil)
	api.StartTLS()
	defer api.Close()
	m := newMW(t, as, Config{BaseURL: api.URL})
	mux := http.NewServeMux()
	mux.Handle("/photos", m.Handler(echoSubject()))
	mux.HandleFunc("/go", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, evil.URL+"/photos", http.StatusTemporaryRedirect)
	})
	api.Config.Handler = mux
	k := newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	victim := &http.Client{Transport: &client.DPoPTransport{Key: k, Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: bound}),
		Base: api.Client().Transport}}
	for _, u := range []string{api.URL + "/photos", api.URL + "/go"} {
		res, err := victim.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", u, res.StatusCode, body)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(evilAuth) != 1 || evilAuth[0] != "" || evilProof[0] != "" {
		t.Fatalf("the other server received Authorization %q and DPoP %q", evilAuth, evilProof)
	}
}

// TestIntrospectedNotAccessToken: the middleware accepts an introspected token only if the
// answer says it is an access token: token_type Bearer or DPoP (in any case) or none, and
// token_use (Hydra) access_token or none. A refresh token, which a server may answer active to
// its own client, is refused (audit 18 finding 3); a Rescind refresh token or code is refused
// without asking.
func TestIntrospectedNotAccessToken(t *testing.T) {
	answers := map[string]map[string]any{
		"tok-bearer":        {"token_type": "Bearer"},
		"tok-lower":         {"token_type": "bearer"},
		"tok-no-type":       {},
		"tok-refresh":       {"token_type": "refresh_token"},
		"tok-hydra-refresh": {"token_type": "Bearer", "token_use": "refresh_token"},
		"tok-hydra-access":  {"token_type": "Bearer", "token_use": "access_token"},
		"tok-mac":           {"token_type": "mac"},
		"rsc_rt_AAAA":       {"token_type": "Bearer"}, // a server that would say so is not asked
		"rsc_ac_AAAA":       {"token_type": "Bearer"},
	}
	var mu sync.Mutex
	asked := map[string]int{}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "introspection_endpoint": srv.URL + "/introspect"})
		case "/introspect":
			r.ParseForm()
			tok := r.PostForm.Get("token")
			mu.Lock()
			asked[tok]++
			mu.Unlock()
			a, ok := answers[tok]
			if !ok || r.PostForm.Get("token_type_hint") != "access_token" {
				json.NewEncoder(w).Encode(map[string]any{"active": false})
				return
			}
			out := map[string]any{"active": true, "sub": "bob", "client_id": "app", "scope": "read", "exp": time.Now().Add(time.Hour).Unix()}
			for k, v := range a {
				out[k] = v
			}
			json.NewEncoder(w).Encode(out)
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
	for tok, accept := range map[string]bool{"tok-bearer": true, "tok-lower": true, "tok-no-type": true, "tok-hydra-access": true,
		"tok-refresh": false, "tok-hydra-refresh": false, "tok-mac": false, "rsc_rt_AAAA": false, "rsc_ac_AAAA": false} {
		w := call(h, "GET", apiURL, "Bearer "+tok)
		if accept && w.Code != 200 {
			t.Errorf("%s: %d %q; want 200", tok, w.Code, w.Header().Get("WWW-Authenticate"))
		}
		if !accept {
			if w.Code != 401 || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("%s: %d %q; want 401 invalid_token", tok, w.Code, w.Header().Get("WWW-Authenticate"))
			}
			if _, err := m.Verify(context.Background(), tok); !errors.Is(err, errNotAccessToken) {
				t.Errorf("%s: Verify: %v; want errNotAccessToken", tok, err)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if asked["rsc_rt_AAAA"]+asked["rsc_ac_AAAA"] != 0 || asked["tok-refresh"] == 0 {
		t.Fatalf("introspection requests: %v; a Rescind refresh token or code must not be sent", asked)
	}
}

// TestUnknownConfirmation: a token whose cnf binds it by anything but exactly a DPoP key (jkt) is
// refused, as Bearer and with a proof, for JWTs and introspected tokens alike: another RFC 9068
// issuer's mTLS-bound token (x5t#S256, RFC 8705) was accepted as a bearer token, since every cnf
// without jkt counted as no binding (audit 18 finding 4). No cnf, or a null one, is a bearer token.
func TestUnknownConfirmation(t *testing.T) {
	k := newKey(t)
	jkt := k.Thumbprint()
	cases := []struct {
		name  string
		extra map[string]any // claims added to a valid token's
		ok    bool           // accepted as Bearer
	}{
		{"no cnf", nil, true},
		{"cnf null", map[string]any{"cnf": nil}, true},
		{"x5t#S256 (mTLS)", map[string]any{"cnf": map[string]any{"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}, false},
		{"jwk (RFC 7800)", map[string]any{"cnf": map[string]any{"jwk": map[string]any{"kty": "EC"}}}, false},
		{"jkt and x5t#S256", map[string]any{"cnf": map[string]any{"jkt": jkt, "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}}, false},
		{"JKT in upper case", map[string]any{"cnf": map[string]any{"JKT": jkt}}, false},
		{"CNF in upper case", map[string]any{"CNF": map[string]any{"x5t#S256": "x"}}, false},
		{"empty cnf", map[string]any{"cnf": map[string]any{}}, false},
		{"empty jkt", map[string]any{"cnf": map[string]any{"jkt": ""}}, false},
		{"jkt a number", map[string]any{"cnf": map[string]any{"jkt": 5}}, false},
		{"cnf a string", map[string]any{"cnf": jkt}, false},
	}
	t.Run("JWT", func(t *testing.T) {
		as := newFakeAS(t)
		m := newMW(t, as, Config{BaseURL: "https://api.example"})
		h := m.Handler(echoSubject())
		for i, tc := range cases {
			claims := as.claims(int64(i + 1))
			for k, v := range tc.extra {
				if v == nil {
					claims[k] = nil // a JSON null, not an absent member
				} else {
					claims[k] = v
				}
			}
			tok := as.token(claims)
			checkConfirmation(t, h, m, k, tc.name, tok, tc.ok)
		}
	})
	t.Run("introspection", func(t *testing.T) {
		answers := map[string]map[string]any{}
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case "/.well-known/oauth-authorization-server":
				json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "introspection_endpoint": srv.URL + "/introspect"})
			case "/introspect":
				r.ParseForm()
				out := map[string]any{"active": true, "sub": "bob", "client_id": "app", "exp": time.Now().Add(time.Hour).Unix()}
				for k, v := range answers[r.PostForm.Get("token")] {
					out[k] = v
				}
				json.NewEncoder(w).Encode(out)
			}
		}))
		defer srv.Close()
		m, err := New(context.Background(), Config{Issuer: srv.URL, ClientID: "rs", ClientSecret: "s", BaseURL: "https://api.example"})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		h := m.Handler(echoSubject())
		for i, tc := range cases {
			tok := fmt.Sprintf("opaque-%d", i)
			answers[tok] = tc.extra
			checkConfirmation(t, h, m, k, tc.name, tok, tc.ok)
		}
	})
}

// checkConfirmation presents tok as Bearer, and with the DPoP scheme and a proof of k: a token
// with an unknown confirmation is refused both ways with errConfirmation; one without is
// accepted as Bearer only.
func checkConfirmation(t *testing.T, h http.Handler, m *Middleware, k *dpop.Key, name, tok string, ok bool) {
	t.Helper()
	w := call(h, "GET", apiURL, "Bearer "+tok)
	if ok != (w.Code == 200) {
		t.Errorf("%s, as Bearer: %d %q", name, w.Code, w.Header().Get("WWW-Authenticate"))
	}
	w = call(h, "GET", apiURL, "DPoP "+tok, proofFor(t, k, "GET", apiURL, tok, dpop.ProofOptions{}))
	if w.Code != 401 {
		t.Errorf("%s, with a proof: %d", name, w.Code)
	}
	if !ok {
		r := httptest.NewRequest("GET", apiURL, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		// The client package refuses a cnf or jkt of the wrong JSON type before the middleware
		// sees it; any other refusal must be the middleware's.
		_, err := m.VerifyRequest(r)
		if malformed := err != nil && strings.Contains(err.Error(), "introspection response is not valid"); !malformed && !errors.Is(err, errConfirmation) {
			t.Errorf("%s: VerifyRequest: %v; want errConfirmation", name, err)
		}
	}
}

// TestDPoPEncodedSlash: a proof for /files/a/b is refused at /files/a%2Fb, which Go's ServeMux
// routes as one segment to another handler (audit 18 finding 5), and a proof for the encoded path
// is accepted there only.
func TestDPoPEncodedSlash(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{BaseURL: "https://api.example"})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /files/{dir}/{name}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "read "+r.PathValue("dir")+"/"+r.PathValue("name"))
	})
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "other handler: "+r.PathValue("name")) })
	h := m.Handler(mux)
	k := newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	for _, tc := range []struct {
		htu, url string
		code     int
		body     string
	}{
		{"https://api.example/files/a/b", "https://api.example/files/a/b", 200, "read a/b"},
		{"https://api.example/files/a/b", "https://api.example/files/a%2Fb", 401, ""},
		{"https://api.example/files/a%2Fb", "https://api.example/files/a%2Fb", 200, "other handler: a/b"},
		{"https://api.example/files/a%2Fb", "https://api.example/files/a/b", 401, ""},
	} {
		w := call(h, "GET", tc.url, "DPoP "+bound, proofFor(t, k, "GET", tc.htu, bound, dpop.ProofOptions{}))
		if w.Code != tc.code || (tc.body != "" && w.Body.String() != tc.body) {
			t.Errorf("proof for %s at %s: %d %q; want %d %q", tc.htu, tc.url, w.Code, w.Body.String(), tc.code, tc.body)
		}
	}
}

// TestVerifyRefusesBoundTokens: Verify, which sees the token alone, refuses a DPoP-bound token
// (it returned its claims, so a caller that used Verify accepted a copied token without the key);
// VerifyRequest accepts it with a proof.
func TestVerifyRefusesBoundTokens(t *testing.T) {
	as := newFakeAS(t)
	m := newMW(t, as, Config{BaseURL: "https://api.example"})
	k := newKey(t)
	bound := as.token(with(as.claims(1), "cnf", map[string]any{"jkt": k.Thumbprint()}))
	if c, err := m.Verify(context.Background(), bound); !errors.Is(err, ErrBoundAsBearer) {
		t.Fatalf("Verify of a bound token: %+v, %v; want ErrBoundAsBearer", c, err)
	}
	if c, err := m.Verify(context.Background(), as.token(as.claims(2))); err != nil || c.JKT != "" {
		t.Fatalf("Verify of a bearer token: %+v, %v", c, err)
	}
	r := httptest.NewRequest("GET", apiURL, nil)
	r.Header.Set("Authorization", "DPoP "+bound)
	r.Header.Set("DPoP", proofFor(t, k, "GET", apiURL, bound, dpop.ProofOptions{}))
	if c, err := m.VerifyRequest(r); err != nil || c.JKT != k.Thumbprint() {
		t.Fatalf("VerifyRequest of the bound token with its proof: %+v, %v", c, err)
	}
}
