package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/rescind/rescind/dpop"
)

// dpopServer is a token endpoint and a resource that require DPoP proofs with a server nonce.
type dpopServer struct {
	*httptest.Server
	v        *dpop.Verifier
	nonces   *dpop.Nonces
	mu       sync.Mutex
	attempts int
	jkt      string
}

func newDPoPServer(t *testing.T) *dpopServer {
	n, _ := dpop.NewNonces([]byte(strings.Repeat("n", 32)), 0)
	s := &dpopServer{v: &dpop.Verifier{Replay: &dpop.MemoryCache{}, Nonces: n}, nonces: n}
	mux := http.NewServeMux()
	check := func(w http.ResponseWriter, r *http.Request, req dpop.Request, status int, challenge bool) *dpop.Proof {
		s.mu.Lock()
		s.attempts++
		s.mu.Unlock()
		req.Method, req.URL, req.RequireNonce = r.Method, s.URL+r.URL.Path, true
		p, err := s.v.Verify(r.Context(), r.Header.Values("DPoP"), req)
		var e *dpop.Error
		if errors.As(err, &e) {
			w.Header().Set("DPoP-Nonce", n.Current(time.Now()))
			if challenge {
				w.Header().Set("WWW-Authenticate", `DPoP error="`+e.Code+`"`)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": e.Code, "error_description": e.Description})
			return nil
		}
		if err != nil {
			t.Error(err)
			return nil
		}
		return p
	}
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if p := check(w, r, dpop.Request{}, http.StatusBadRequest, false); p != nil {
			s.mu.Lock()
			s.jkt = p.JKT
			s.mu.Unlock()
			json.NewEncoder(w).Encode(map[string]any{"access_token": "at-1", "token_type": "DPoP", "expires_in": 60})
		}
	})
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "DPoP ")
		s.mu.Lock()
		jkt := s.jkt
		s.mu.Unlock()
		if !ok || tok != "at-1" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		if p := check(w, r, dpop.Request{AccessToken: tok, JKT: jkt}, http.StatusUnauthorized, true); p != nil {
			b, _ := io.ReadAll(r.Body)
			w.Write(append([]byte("ok:"), b...))
		}
	})
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

// TestDPoP: the client gets a DPoP-bound token after one nonce round trip, and the transport
// presents it to a resource that also wants a nonce, replaying a POST body on the retry.
func TestDPoP(t *testing.T) {
	s := newDPoPServer(t)
	key, err := dpop.GenerateKey(dpop.ES256)
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{ClientID: "app", AuthMethod: AuthNone, TokenURL: s.URL + "/token", DPoP: key}
	tok, err := c.ClientCredentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" || s.attempts != 2 || s.jkt != key.Thumbprint() {
		t.Fatalf("token type %q after %d attempts, bound to %q (key %q)", tok.TokenType, s.attempts, s.jkt, key.Thumbprint())
	}
	if _, err := c.ClientCredentials(context.Background()); err != nil || s.attempts != 3 {
		t.Fatalf("second token request: %v after %d attempts (the nonce should have been kept)", err, s.attempts)
	}
	hc := &http.Client{Transport: &DPoPTransport{Key: key, Source: oauth2.StaticTokenSource(tok)}}
	for i := range 2 {
		resp, err := hc.Post(s.URL+"/api", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok:body" {
			t.Fatalf("call %d: %d %s", i, resp.StatusCode, b)
		}
	}
	// A copy of the token with another key is refused.
	thief, _ := dpop.GenerateKey(dpop.ES256)
	hc = &http.Client{Transport: &DPoPTransport{Key: thief, Source: oauth2.StaticTokenSource(tok)}}
	resp, err := hc.Get(s.URL + "/api")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the token with another key: %d", resp.StatusCode)
	}
}

// recorder is a server that records the Authorization and DPoP headers of what it receives,
// and answers with handle (200 "ok" if nil).
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	auth   []string
	proofs []string
	handle http.HandlerFunc
}

func newRecorder(t *testing.T, tls bool) *recorder {
	rec := &recorder{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.auth = append(rec.auth, r.Header.Get("Authorization"))
		rec.proofs = append(rec.proofs, r.Header.Get("DPoP"))
		handle := rec.handle
		rec.mu.Unlock()
		if handle != nil {
			handle(w, r)
			return
		}
		io.WriteString(w, "ok")
	})
	if tls {
		rec.Server = httptest.NewTLSServer(h)
	} else {
		rec.Server = httptest.NewServer(h)
	}
	t.Cleanup(rec.Close)
	return rec
}

// got returns what the server received: Authorization and DPoP headers, in order.
func (rec *recorder) got() (auth, proofs []string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.auth), slices.Clone(rec.proofs)
}

// proofClaims returns the claims of a DPoP proof, unverified.
func proofClaims(t *testing.T, proof string) map[string]any {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", proof)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestDPoPTransportOrigins: the transport sends the token and a proof only to the origins it is
// for (Origins, or the first request's): a request elsewhere is an error and sends nothing; a
// redirect elsewhere (a 307 keeps the method and body) is followed without them; a redirect
// within the origin is signed for its new URL; nonces are taken only from those origins.
func TestDPoPTransportOrigins(t *testing.T) {
	key, _ := dpop.GenerateKey(dpop.ES256)
	src := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "bound-token"})
	for _, tc := range []struct {
		name    string
		origins func(api, evil *recorder) []string
	}{
		{"Origins set", func(api, _ *recorder) []string { return []string{strings.ToUpper(api.URL) + "/"} }},
		{"pinned to the first request", func(*recorder, *recorder) []string { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, evil := newRecorder(t, true), newRecorder(t, true)
			evil.handle = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("DPoP-Nonce", "evils-nonce") // must not be taken
				b, _ := io.ReadAll(r.Body)
				io.WriteString(w, "evil got "+r.Method+" "+string(b))
			}
			api.handle = func(w http.ResponseWriter, r *http.Request) {
				switch r.URL.Path {
				case "/away":
					http.Redirect(w, r, evil.URL+"/collect", http.StatusTemporaryRedirect)
				case "/moved":
					http.Redirect(w, r, "/photos", http.StatusFound)
				default:
					io.WriteString(w, "api "+r.URL.Path)
				}
			}
			tr := &DPoPTransport{Key: key, Source: src, Origins: tc.origins(api, evil), Base: api.Client().Transport}
			hc := &http.Client{Transport: tr}
			do := func(method, u, body string) (string, error) {
				t.Helper()
				req, _ := http.NewRequest(method, u, strings.NewReader(body))
				res, err := hc.Do(req)
				if err != nil {
					return "", err
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return string(b), nil
			}
			if body, err := do("GET", api.URL+"/photos", ""); err != nil || body != "api /photos" {
				t.Fatalf("to the API: %q %v", body, err)
			}
			if body, err := do("GET", api.URL+"/moved", ""); err != nil || body != "api /photos" {
				t.Fatalf("a redirect within the API: %q %v", body, err)
			}
			if body, err := do("POST", api.URL+"/away", "secret=1"); err != nil || body != "evil got POST secret=1" {
				t.Fatalf("a redirect to another origin: %q %v", body, err)
			}
			if _, err := do("GET", evil.URL+"/collect", ""); err == nil || !strings.Contains(err.Error(), "not among the origins") {
				t.Fatalf("a request to another origin: %v; want an error", err)
			}
			if body, err := do("GET", api.URL+"/photos", ""); err != nil || body != "api /photos" {
				t.Fatalf("to the API again: %q %v", body, err)
			}

			auth, proofs := evil.got()
			if len(auth) != 1 || auth[0] != "" || proofs[0] != "" {
				t.Fatalf("the other origin received Authorization %q and DPoP %q; want one request with neither", auth, proofs)
			}
			auth, proofs = api.got()
			wantHTU := []string{"/photos", "/moved", "/photos", "/away", "/photos"}
			if len(auth) != len(wantHTU) {
				t.Fatalf("the API received %d requests; want %d", len(auth), len(wantHTU))
			}
			for i, p := range proofs {
				c := proofClaims(t, p)
				if auth[i] != "DPoP bound-token" || c["htu"] != api.URL+wantHTU[i] {
					t.Errorf("request %d to the API: Authorization %q, htu %v; want DPoP bound-token, %s", i, auth[i], c["htu"], api.URL+wantHTU[i])
				}
				if _, ok := c["nonce"]; ok {
					t.Errorf("request %d to the API carries a nonce (%v) another origin sent", i, c["nonce"])
				}
			}
		})
	}
}

// TestDPoPTransportBadOrigins: an entry of Origins that is not scheme://host[:port] is an error.
func TestDPoPTransportBadOrigins(t *testing.T) {
	key, _ := dpop.GenerateKey(dpop.ES256)
	api := newRecorder(t, false)
	for _, o := range []string{"api.example", "https://api.example/v1", "ftp://api.example", "https://user@api.example", "https://api.example?x"} {
		tr := &DPoPTransport{Key: key, Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"}), Origins: []string{o}}
		req, _ := http.NewRequest("GET", api.URL, nil)
		if res, err := tr.RoundTrip(req); err == nil {
			res.Body.Close()
			t.Errorf("Origins %q accepted", o)
		}
	}
	if auth, _ := api.got(); len(auth) != 0 {
		t.Fatalf("requests sent: %q", auth)
	}
}

// TestOriginOf: origins compare after normalization (case, default ports, IPv6).
func TestOriginOf(t *testing.T) {
	for in, want := range map[string]string{
		"HTTPS://API.example/x":    "https://api.example",
		"https://api.example:443/": "https://api.example",
		"http://api.example:80":    "http://api.example",
		"http://api.example:8080":  "http://api.example:8080",
		"https://[::1]:8443/a":     "https://[::1]:8443",
		"https://[::1]/":           "https://[::1]",
	} {
		u, _ := url.Parse(in)
		if got, err := originOf(u); err != nil || got != want {
			t.Errorf("originOf(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}
