package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// provider is a fake authorization server whose behaviour each test sets.
type provider struct {
	*httptest.Server
	mu       sync.Mutex
	requests []*http.Request
	forms    []url.Values
	// metadata is served at the RFC 8414 location unless oidcOnly; issuer overrides its issuer.
	oidcOnly bool
	issuer   string
	methods  []string
	// handle answers the token, revocation and introspection endpoints.
	handle func(w http.ResponseWriter, r *http.Request, form url.Values)
}

func newProvider(t *testing.T) *provider {
	p := &provider{}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *provider) serve(w http.ResponseWriter, r *http.Request) {
	md := func() {
		iss := p.issuer
		if iss == "" {
			iss = p.URL
		}
		m := map[string]any{"issuer": iss, "token_endpoint": p.URL + "/token", "revocation_endpoint": p.URL + "/revoke",
			"introspection_endpoint": p.URL + "/introspect"}
		if p.methods != nil {
			m["token_endpoint_auth_methods_supported"] = p.methods
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m)
	}
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		if p.oidcOnly {
			http.NotFound(w, r)
			return
		}
		md()
	case "/.well-known/openid-configuration":
		md()
	default:
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		p.mu.Lock()
		p.requests = append(p.requests, r)
		p.forms = append(p.forms, form)
		p.mu.Unlock()
		p.handle(w, r, form)
	}
}

func (p *provider) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.requests)
}

func TestDiscoverFallsBackToOpenIDConfiguration(t *testing.T) {
	p := newProvider(t)
	p.oidcOnly = true
	md, err := Discover(context.Background(), p.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if md.RevocationEndpoint != p.URL+"/revoke" || !strings.HasSuffix(md.URL, "/.well-known/openid-configuration") {
		t.Fatalf("metadata = %+v", md)
	}
}

func TestDiscoverIssuerMismatch(t *testing.T) {
	p := newProvider(t)
	p.issuer = "https://evil.example"
	_, err := Discover(context.Background(), p.URL, nil)
	if !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("err = %v, want ErrIssuerMismatch", err)
	}
	c := &Client{Issuer: p.URL, ClientID: "c", ClientSecret: "s"}
	p.handle = func(w http.ResponseWriter, r *http.Request, form url.Values) {
		t.Error("request sent after a mismatch")
	}
	if err := c.Revoke(context.Background(), "tok", ""); !errors.Is(err, ErrIssuerMismatch) {
		t.Fatalf("Revoke err = %v", err)
	}
}

func TestDiscoverPathIssuer(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path)
		http.NotFound(w, r)
	}))
	defer srv.Close()
	Discover(context.Background(), srv.URL+"/tenant/a", nil)
	want := []string{"/.well-known/oauth-authorization-server/tenant/a", "/tenant/a/.well-known/openid-configuration"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("tried %v, want %v (RFC 8414 §3.1 insertion, then OIDC appending)", got, want)
	}
}

// TestBasicEncoding checks the exact bytes of the Basic header for a secret that needs
// RFC 6749 §2.3.1 form-encoding.
func TestBasicEncoding(t *testing.T) {
	const id, secret = "my client", "a:b%c+d e\u00e9"
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("my+client:a%3Ab%25c%2Bd+e%C3%A9"))
	p := newProvider(t)
	p.handle = func(w http.ResponseWriter, r *http.Request, form url.Values) {
		if got := r.Header.Get("Authorization"); got != want {
			w.WriteHeader(401)
			fmt.Fprintf(w, `{"error":"invalid_client","error_description":"got %s"}`, got)
			return
		}
		if form.Get("token") != "tok" || form.Get("token_type_hint") != "access_token" || form.Has("client_secret") {
			w.WriteHeader(400)
			return
		}
	}
	c := &Client{Issuer: p.URL, ClientID: id, ClientSecret: secret}
	if err := c.Revoke(context.Background(), "tok", "access_token"); err != nil {
		t.Fatal(err)
	}
}

func TestClientSecretPostPickedFromMetadata(t *testing.T) {
	p := newProvider(t)
	p.methods = []string{AuthPost}
	p.handle = func(w http.ResponseWriter, r *http.Request, form url.Values) {
		if r.Header.Get("Authorization") != "" || form.Get("client_id") != "c" || form.Get("client_secret") != "s e" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"invalid_client"}`)
			return
		}
		io.WriteString(w, `{"active":true,"scope":"read","aud":["a","b"],"custom":{"x":1}}`)
	}
	c := &Client{Issuer: p.URL, ClientID: "c", ClientSecret: "s e"}
	in, err := c.Introspect(context.Background(), "tok", "")
	if err != nil {
		t.Fatal(err)
	}
	if !in.Active || in.Scope != "read" || len(in.Aud) != 2 || string(in.Extra["custom"]) != `{"x":1}` || in.Extra["scope"] != nil {
		t.Fatalf("introspection = %+v", in)
	}
}

func TestRetry503WithRetryAfter(t *testing.T) {
	p := newProvider(t)
	var n int
	p.handle = func(w http.ResponseWriter, r *http.Request, form url.Values) {
		n++
		if n <= 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(503)
			return
		}
	}
	c := &Client{RevocationURL: p.URL + "/revoke", ClientID: "c", ClientSecret: "s"}
	if err := c.Revoke(context.Background(), "tok", ""); err != nil {
		t.Fatal(err)
	}
	if p.count() != 3 {
		t.Fatalf("%d requests, want 3", p.count())
	}
	// Past the limit, the 503 is returned.
	n = -10
	c.MaxRetries = 2
	var e *Error
	if err := c.Revoke(context.Background(), "tok", ""); !errors.As(err, &e) || e.StatusCode != 503 {
		t.Fatalf("err = %v, want a 503 *Error", err)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{"": -1, "2": 2 * time.Second, "x": -1,
		now.Add(3 * time.Second).Format(http.TimeFormat): 3 * time.Second} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestErrorResponse(t *testing.T) {
	p := newProvider(t)
	p.handle = func(w http.ResponseWriter, r *http.Request, form url.Values) {
		w.WriteHeader(400)
		io.WriteString(w, `{"error":"unauthorized_client","error_description":"not yours","error_uri":"https://doc.example/e"}`)
	}
	c := &Client{Issuer: p.URL, ClientID: "c", ClientSecret: "s"}
	err := c.Revoke(context.Background(), "tok", "")
	var e *Error
	if !errors.As(err, &e) || e.Code != "unauthorized_client" || e.Description != "not yours" || e.URI != "https://doc.example/e" || e.StatusCode != 400 {
		t.Fatalf("err = %#v", err)
	}
	if !strings.Contains(err.Error(), "unauthorized_client: not yours (HTTP 400)") {
		t.Fatalf("Error() = %q", err.Error())
	}
}

func TestPublicClientSendsClientID(t *testing.T) {
	p := newProvider(t)
	p.handle = func(w http.ResponseWriter, r *http.Request, form url.Values) {
		if r.Header.Get("Authorization") != "" || form.Get("client_id") != "pub" || form.Has("client_secret") {
			w.WriteHeader(401)
		}
	}
	if err := (&Client{Issuer: p.URL, ClientID: "pub"}).Revoke(context.Background(), "tok", ""); err != nil {
		t.Fatal(err)
	}
}

func TestTokenAndRevokeToken(t *testing.T) {
	p := newProvider(t)
	p.handle = func(w http.ResponseWriter, r *http.Request, form url.Values) {
		if r.URL.Path == "/token" {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"access_token":"at","token_type":"Bearer","expires_in":"60","refresh_token":"rt","scope":"read"}`)
		}
	}
	c := &Client{Issuer: p.URL, ClientID: "c", ClientSecret: "s"}
	tok, err := c.ClientCredentials(context.Background(), "read")
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "at" || tok.RefreshToken != "rt" || tok.Extra("scope") != "read" || time.Until(tok.Expiry) < 50*time.Second {
		t.Fatalf("token = %+v", tok)
	}
	if err := c.RevokeToken(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	got := []string{}
	for _, f := range p.forms[1:] {
		got = append(got, f.Get("token")+"/"+f.Get("token_type_hint"))
	}
	if fmt.Sprint(got) != "[rt/refresh_token at/access_token]" {
		t.Fatalf("revocations %v; want the refresh token first, then the access token", got)
	}
	if err := c.RevokeToken(context.Background(), &oauth2.Token{}); err == nil {
		t.Fatal("RevokeToken of an empty token succeeded")
	}
}
