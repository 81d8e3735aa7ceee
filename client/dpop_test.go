package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
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
