package main

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/dpop"
)

// logoutReceiver is the back-channel logout endpoint of every relying party of a test (one path
// per client: /bcl/{client}). It validates each logout token as Back-Channel Logout 1.0 §2.6
// says (signature by the issuer's JWKS, typ, iss, aud, iat, exp, events, sid and sub, no nonce,
// jti not replayed) and answers 200 to a valid one, 400 to an invalid one; while down it answers
// 503 without looking.
type logoutReceiver struct {
	t      *testing.T
	issuer string
	srv    *httptest.Server

	mu      sync.Mutex
	down    bool
	jtis    map[string]bool
	got     []logoutSeen // valid tokens, in arrival order
	invalid []string     // why each invalid one was refused
	refused int          // requests answered 503 while down
}

// logoutSeen is one valid logout token received.
type logoutSeen struct {
	Client, Aud, SID, Sub, JTI string
	At                         time.Time
}

func newLogoutReceiver(t *testing.T, issuer string) *logoutReceiver {
	lr := &logoutReceiver{t: t, issuer: issuer, jtis: map[string]bool{}}
	lr.srv = httptest.NewServer(lr)
	t.Cleanup(lr.srv.Close)
	return lr
}

// uri is the back-channel logout URI of client name.
func (lr *logoutReceiver) uri(name string) string { return lr.srv.URL + "/bcl/" + name }

func (lr *logoutReceiver) setDown(down bool) {
	lr.mu.Lock()
	lr.down = down
	lr.mu.Unlock()
}

func (lr *logoutReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	lr.mu.Lock()
	down := lr.down
	if down {
		lr.refused++
	}
	lr.mu.Unlock()
	if down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	client := strings.TrimPrefix(r.URL.Path, "/bcl/")
	if err := r.ParseForm(); err != nil || r.Method != http.MethodPost ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		lr.refuse(w, fmt.Sprintf("%s: not a form POST", client))
		return
	}
	seen, err := lr.validate(r.PostForm.Get("logout_token"))
	if err != nil {
		lr.refuse(w, client+": "+err.Error())
		return
	}
	seen.Client, seen.At = client, time.Now()
	lr.mu.Lock()
	lr.got = append(lr.got, seen)
	lr.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (lr *logoutReceiver) refuse(w http.ResponseWriter, why string) {
	lr.mu.Lock()
	lr.invalid = append(lr.invalid, why)
	lr.mu.Unlock()
	http.Error(w, why, http.StatusBadRequest)
}

// validate checks a logout token per §2.6.
func (lr *logoutReceiver) validate(text string) (logoutSeen, error) {
	var s logoutSeen
	jws, err := jose.ParseSigned(text, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return s, fmt.Errorf("not a JWS: %v", err)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "logout+jwt" {
		return s, fmt.Errorf("typ %q", typ)
	}
	res, err := http.Get(lr.issuer + "/.well-known/jwks.json")
	if err != nil {
		return s, err
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(res.Body).Decode(&set)
	res.Body.Close()
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		return s, fmt.Errorf("kid %q is not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return s, fmt.Errorf("signature: %v", err)
	}
	var c struct {
		Iss    string                     `json:"iss"`
		Aud    any                        `json:"aud"`
		Iat    int64                      `json:"iat"`
		Exp    int64                      `json:"exp"`
		JTI    string                     `json:"jti"`
		Events map[string]json.RawMessage `json:"events"`
		SID    string                     `json:"sid"`
		Sub    string                     `json:"sub"`
		Nonce  *string                    `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return s, err
	}
	now := time.Now().Unix()
	aud, _ := c.Aud.(string)
	switch {
	case c.Iss != lr.issuer:
		return s, fmt.Errorf("iss %q", c.Iss)
	case aud == "":
		return s, fmt.Errorf("aud %v", c.Aud)
	case c.Iat < now-120 || c.Iat > now+60:
		return s, fmt.Errorf("iat %d, now %d", c.Iat, now)
	case c.Exp < now || c.Exp > now+600:
		return s, fmt.Errorf("exp %d, now %d", c.Exp, now)
	case c.Events == nil || string(c.Events["http://schemas.openid.net/event/backchannel-logout"]) != "{}":
		return s, fmt.Errorf("events %v", c.Events)
	case c.SID == "" || c.Sub == "":
		return s, fmt.Errorf("sid %q sub %q", c.SID, c.Sub)
	case c.Nonce != nil:
		return s, fmt.Errorf("a nonce")
	case c.JTI == "":
		return s, fmt.Errorf("no jti")
	}
	lr.mu.Lock()
	replayed := lr.jtis[c.JTI]
	lr.jtis[c.JTI] = true
	lr.mu.Unlock()
	if replayed {
		return s, fmt.Errorf("jti %s replayed", c.JTI)
	}
	return logoutSeen{Aud: aud, SID: c.SID, Sub: c.Sub, JTI: c.JTI}, nil
}

// received returns the valid logout tokens and the reasons of the refused ones.
func (lr *logoutReceiver) received() ([]logoutSeen, []string) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return slices.Clone(lr.got), slices.Clone(lr.invalid)
}

// waitLogouts waits (30 s at most) until the receiver holds n valid tokens, and fails on any
// invalid one.
func (lr *logoutReceiver) waitLogouts(n int) []logoutSeen {
	lr.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, bad := lr.received()
		if len(bad) > 0 {
			lr.t.Fatalf("invalid logout tokens: %q", bad)
		}
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			lr.t.Fatalf("%d logout tokens received within 30 s; want %d: %+v", len(got), n, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rp is a relying party of the tests: a confidential client with a back-channel logout URI.
type rp struct {
	info     admin.ClientInfo
	redirect string
}

func newRP(t *testing.T, data string, lr *logoutReceiver, name string, extra ...string) rp {
	t.Helper()
	redirect := "http://127.0.0.1:9/cb/" + name
	args := append([]string{"client", "create", "--data-dir", data, "--name", name, "--scope", "openid profile email offline_access",
		"--redirect-uri", redirect, "--post-logout-redirect-uri", "http://127.0.0.1:9/bye/" + name,
		"--backchannel-logout-uri", lr.uri(name), "--backchannel-logout-session-required"}, extra...)
	var c admin.ClientInfo
	if err := json.Unmarshal([]byte(cli(t, nil, args...)), &c); err != nil {
		t.Fatal(err)
	}
	return rp{info: c, redirect: redirect}
}

// oidcSignIn has p sign in to the relying party (the code flow with PKCE and a nonce) with
// golang.org/x/oauth2 and returns the token response, its ID token verified by go-oidc, and the
// nonce sent.
func oidcSignIn(t *testing.T, srv *server, p *person, c rp, username, password string, params ...oauth2.AuthCodeOption) (*oauth2.Token, *oidc.IDToken, string) {
	t.Helper()
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, srv.url)
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: c.info.ClientID, ClientSecret: c.info.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: c.redirect,
		Scopes: []string{oidc.ScopeOpenID, "profile", "email", "offline_access"}}
	verifier := oauth2.GenerateVerifier()
	nonce := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("n-%d", time.Now().UnixNano())))
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}, params...)
	q := p.authorize(srv.url, conf.AuthCodeURL("st", opts...), username, password)
	if q.Get("code") == "" {
		t.Fatalf("no code: %v", q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: c.info.ClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc IDTokenVerifier: %v", err)
	}
	if idt.Nonce != nonce {
		t.Fatalf("nonce %q; want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	return tok, idt, nonce
}

// userinfo calls the userinfo endpoint with the access token.
func userinfo(t *testing.T, srv *server, access string) (int, string, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.url+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, res.Header.Get("WWW-Authenticate"), m
}

// TestOIDCProvider: go-oidc discovers the server and verifies its ID tokens (nonce, at_hash,
// auth_time, sid, amr); userinfo answers by scope and refuses a revoked token; a refresh keeps
// sid; and "sign out everywhere" reaches every relying party of the session with a valid logout
// token (§2.6), once.
func TestOIDCProvider(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	cliInput(t, "alice-password\n", "user", "create", "--data-dir", data, "--username", "alice", "--password-stdin",
		"--name", "Alice Liddell", "--email", "alice@example.com")
	lr := newLogoutReceiver(t, srv.url)
	one, two := newRP(t, data, lr, "one"), newRP(t, data, lr, "two")

	p := newPerson(t)
	before := time.Now().Add(-time.Second)
	tok1, id1, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password")
	tok2, id2, _ := oidcSignIn(t, srv, p, two, "alice", "alice-password")
	var claims struct {
		AuthTime int64    `json:"auth_time"`
		SID      string   `json:"sid"`
		AMR      []string `json:"amr"`
		Name     string   `json:"name"`
	}
	id1.Claims(&claims)
	if claims.SID == "" || id2.Subject != id1.Subject || claims.AuthTime < before.Unix() || claims.AuthTime > time.Now().Unix() ||
		!slices.Equal(claims.AMR, []string{"pwd"}) || claims.Name != "Alice Liddell" {
		t.Fatalf("ID token claims %+v", claims)
	}
	var sid2 struct {
		SID string `json:"sid"`
	}
	id2.Claims(&sid2)
	if sid2.SID != claims.SID {
		t.Fatalf("one browser, one session: sid %q and %q", claims.SID, sid2.SID)
	}
	// The sid is not the cookie, nor its hash.
	u, _ := url.Parse(srv.url)
	for _, c := range p.hc.Jar.Cookies(u) {
		if c.Name == "rescind_session" && (strings.Contains(c.Value, claims.SID) || strings.Contains(claims.SID, c.Value)) {
			t.Fatal("sid is the session cookie")
		}
	}

	// prompt=login: the person authenticates again in the same session: same sid, a later
	// auth_time, and the cookie they had before no longer works.
	var oldCookie string
	for _, c := range p.hc.Jar.Cookies(u) {
		if c.Name == "rescind_session" {
			oldCookie = c.Value
		}
	}
	time.Sleep(1100 * time.Millisecond)
	_, again, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password", oauth2.SetAuthURLParam("prompt", "login"))
	var ac struct {
		AuthTime int64  `json:"auth_time"`
		SID      string `json:"sid"`
	}
	again.Claims(&ac)
	if ac.SID != claims.SID || ac.AuthTime <= claims.AuthTime {
		t.Fatalf("after prompt=login: sid %q auth_time %d; before: %q %d", ac.SID, ac.AuthTime, claims.SID, claims.AuthTime)
	}
	if replay(t, srv, oldCookie) {
		t.Fatal("the cookie from before the re-authentication still works")
	}

	// Userinfo, by scope.
	status, _, info := userinfo(t, srv, tok1.AccessToken)
	if status != 200 || info["sub"] != id1.Subject || info["name"] != "Alice Liddell" || info["email"] != "alice@example.com" ||
		info["email_verified"] != false {
		t.Fatalf("userinfo %d %v", status, info)
	}

	// POST with the token in the form (RFC 6750 §2.2); none at all; a token of no person.
	res, err := http.PostForm(srv.url+"/oauth2/userinfo", url.Values{"access_token": {tok1.AccessToken}})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("userinfo by POST: %v %v", res.StatusCode, err)
	}
	res.Body.Close()
	if status, chal, _ := userinfo(t, srv, ""); status != 401 || !strings.HasPrefix(chal, "Bearer") {
		t.Fatalf("userinfo without a token: %d %q", status, chal)
	}
	if status, chal, _ := userinfo(t, srv, srv.token(one.info.ClientID, one.info.ClientSecret)); status != 403 ||
		!strings.Contains(chal, "insufficient_scope") {
		t.Fatalf("userinfo with a client credentials token: %d %q", status, chal)
	}

	// Refresh: a new ID token, same sid and auth_time, no nonce.
	conf := oauth2.Config{ClientID: one.info.ClientID, ClientSecret: one.info.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	ref, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok1.RefreshToken}).Token()
	if err != nil {
		t.Fatal(err)
	}
	rawRef, _ := ref.Extra("id_token").(string)
	provider, _ := oidc.NewProvider(context.Background(), srv.url)
	idr, err := provider.Verifier(&oidc.Config{ClientID: one.info.ClientID}).Verify(context.Background(), rawRef)
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	var rc struct {
		AuthTime int64  `json:"auth_time"`
		SID      string `json:"sid"`
	}
	idr.Claims(&rc)
	if rc.SID != claims.SID || rc.AuthTime != claims.AuthTime || idr.Nonce != "" || idr.VerifyAccessToken(ref.AccessToken) != nil {
		t.Fatalf("refreshed ID token %+v nonce %q", rc, idr.Nonce)
	}

	// A revoked access token: 401 invalid_token at userinfo, as at introspection.
	srv.revoke(two.info.ClientID, two.info.ClientSecret, tok2.AccessToken)
	if status, chal, _ := userinfo(t, srv, tok2.AccessToken); status != 401 || !strings.Contains(chal, `error="invalid_token"`) {
		t.Fatalf("userinfo with a revoked token: %d %q", status, chal)
	}

	// "Sign out everywhere": one valid logout token per relying party, promptly.
	signedOut := time.Now()
	if res, _ := p.post(srv.url+"/account/sessions/end-all", url.Values{"csrf_token": {p.csrfOf(srv)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", res.StatusCode)
	}
	got := lr.waitLogouts(2)
	auds := []string{got[0].Aud, got[1].Aud}
	slices.Sort(auds)
	want := []string{one.info.ClientID, two.info.ClientID}
	slices.Sort(want)
	if !slices.Equal(auds, want) || got[0].SID != claims.SID || got[1].SID != claims.SID || got[0].Sub != id1.Subject {
		t.Fatalf("logout tokens %+v; want one for each of %v with sid %s", got, want, claims.SID)
	}
	for _, g := range got {
		if g.Aud != map[string]string{"one": one.info.ClientID, "two": two.info.ClientID}[g.Client] {
			t.Fatalf("a logout token for %s reached %s", g.Aud, g.Client)
		}
		if lag := g.At.Sub(signedOut); lag > 5*time.Second {
			t.Fatalf("logout token after %v", lag)
		}
		t.Logf("logout token for %s after %v", g.Client, g.At.Sub(signedOut))
	}
	// Once: nothing more arrives.
	time.Sleep(1500 * time.Millisecond)
	if got, _ := lr.received(); len(got) != 2 {
		t.Fatalf("%d logout tokens; want 2", len(got))
	}
	// The account pages say so.
	_ = io.Discard
}

// TestOIDCDiscovery: the OpenID Provider metadata is complete (OpenID Connect Discovery 1.0 §3).
func TestOIDCDiscovery(t *testing.T) {
	srv := startServer(t, filepath.Join(shortTempDir(t), "d"), nil)
	res, err := http.Get(srv.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var md map[string]any
	json.NewDecoder(res.Body).Decode(&md)
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint",
		"scopes_supported", "response_types_supported", "subject_types_supported", "id_token_signing_alg_values_supported",
		"token_endpoint_auth_methods_supported", "claims_supported", "code_challenge_methods_supported"} {
		if md[k] == nil {
			t.Errorf("%s is missing", k)
		}
	}
	if md["backchannel_logout_supported"] != true || md["backchannel_logout_session_supported"] != true || md["frontchannel_logout_supported"] != false {
		t.Errorf("logout support: %v %v %v", md["backchannel_logout_supported"], md["backchannel_logout_session_supported"], md["frontchannel_logout_supported"])
	}
	if fmt.Sprint(md["response_types_supported"]) != "[code]" || fmt.Sprint(md["subject_types_supported"]) != "[public]" {
		t.Errorf("response types %v, subject types %v", md["response_types_supported"], md["subject_types_supported"])
	}
}

// atHash is at_hash for alg, for the tests' own checks.
func atHash(alg, access string) string {
	var sum []byte
	if alg == "EdDSA" {
		s := sha512.Sum512([]byte(access))
		sum = s[:]
	} else {
		s := sha256.Sum256([]byte(access))
		sum = s[:]
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// TestBackchannelLogoutSurvivesSIGKILL: with the receiver down, a logout (rescind user logout)
// is retried; the server is killed with SIGKILL and started again; once the receiver is back,
// the logout token arrives, once.
func TestBackchannelLogoutSurvivesSIGKILL(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	createUser(t, data, "alice", "alice-password")
	lr := newLogoutReceiver(t, srv.url)
	one := newRP(t, data, lr, "one")
	_, id, _ := oidcSignIn(t, srv, newPerson(t), one, "alice", "alice-password")

	lr.setDown(true)
	cli(t, nil, "user", "logout", "--data-dir", data, "alice")
	waitFor(t, 10*time.Second, "a delivery attempt", func() bool {
		lr.mu.Lock()
		defer lr.mu.Unlock()
		return lr.refused > 0
	})
	srv.kill()
	// The same address, so the same issuer.
	srv = startServerOn(t, strings.TrimPrefix(srv.url, "http://"), data, nil, "--outbox-allow-loopback")
	lr.setDown(false)
	got := lr.waitLogouts(1)
	if got[0].Aud != one.info.ClientID || got[0].Sub != id.Subject {
		t.Fatalf("logout token %+v", got[0])
	}
	time.Sleep(1500 * time.Millisecond)
	if got, _ := lr.received(); len(got) != 1 {
		t.Fatalf("%d logout tokens; want 1", len(got))
	}
}

// TestBackchannelLogoutTwoInstances: two instances on one PostgreSQL database; the person signs
// in through one, the operator signs them out through the other while the receiver is down;
// once it is back, each relying party gets its logout token once (not once per instance).
func TestBackchannelLogoutTwoInstances(t *testing.T) {
	env, _ := clusterEnv(t)
	dir := shortTempDir(t)
	addrA, addrB := freePort(t), freePort(t)
	// One issuer for both, as behind a load balancer.
	issuer := "http://" + addrA
	a := startServerOn(t, addrA, filepath.Join(dir, "a"), env, "--issuer", issuer, "--outbox-allow-loopback")
	b := startServerOn(t, addrB, filepath.Join(dir, "b"), env, "--issuer", issuer, "--outbox-allow-loopback")
	createUser(t, a.dataDir, "alice", "alice-password")
	lr := newLogoutReceiver(t, issuer)
	one, two := newRP(t, a.dataDir, lr, "one"), newRP(t, a.dataDir, lr, "two")
	p := newPerson(t)
	oidcSignIn(t, a, p, one, "alice", "alice-password")
	oidcSignIn(t, a, p, two, "alice", "alice-password")

	lr.setDown(true)
	cli(t, nil, "user", "logout", "--data-dir", b.dataDir, "alice")
	waitFor(t, 10*time.Second, "a delivery attempt", func() bool {
		lr.mu.Lock()
		defer lr.mu.Unlock()
		return lr.refused > 0
	})
	lr.setDown(false)
	got := lr.waitLogouts(2)
	time.Sleep(3 * time.Second) // both instances poll every second: time for a duplicate to show
	if got, _ = lr.received(); len(got) != 2 || got[0].Aud == got[1].Aud {
		t.Fatalf("logout tokens %+v; want one for each relying party", got)
	}
}

// startServerOn is startServer on the address addr (host:port).
func startServerOn(t *testing.T, addr, dataDir string, env []string, args ...string) *server {
	t.Helper()
	s := &server{t: t, url: "http://" + addr, dataDir: dataDir, log: &syncBuffer{}}
	s.cmd = exec.Command(binary, append([]string{"serve", "--addr", addr, "--data-dir", dataDir}, args...)...)
	s.cmd.Env = append(os.Environ(), env...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop() })
	waitFor(t, 30*time.Second, "server ready", func() bool {
		r, err := http.Get(s.url + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
	return s
}

// TestRPInitiatedLogout: the end-session endpoint with a matching id_token_hint ends the
// session at once and sends the browser to the registered post_logout_redirect_uri with state;
// every relying party of the session, the initiating one included, gets a logout token. Without
// a hint the person is asked first; an unregistered URI is refused with a page.
func TestRPInitiatedLogout(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback", "--logout-revokes-grants")
	createUser(t, data, "alice", "alice-password")
	lr := newLogoutReceiver(t, srv.url)
	one, two := newRP(t, data, lr, "one"), newRP(t, data, lr, "two")
	p := newPerson(t)
	tok1, _, _ := oidcSignIn(t, srv, p, one, "alice", "alice-password")
	oidcSignIn(t, srv, p, two, "alice", "alice-password")
	hint, _ := tok1.Extra("id_token").(string)
	endURL := func(q url.Values) string { return srv.url + "/oauth2/logout?" + q.Encode() }

	// Not registered: an error page, nothing ended.
	res, _ := p.get(endURL(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://evil.example/"}}))
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("unregistered post_logout_redirect_uri: %d", res.StatusCode)
	}
	// No hint: the confirmation page; staying signed in changes nothing.
	res, page := p.get(endURL(url.Values{"client_id": {one.info.ClientID}}))
	if res.StatusCode != 200 || !strings.Contains(page, `name="logout_request"`) {
		t.Fatalf("logout without a hint: %d %s", res.StatusCode, page)
	}
	f := formOf(page)
	m := regexp.MustCompile(`name="logout_request" value="([^"]*)"`).FindStringSubmatch(page)
	f.Set("logout_request", strings.ReplaceAll(m[1], "&amp;", "&"))
	f.Set("decision", "stay")
	if res, page = p.post(srv.url+"/oauth2/logout", f); res.StatusCode != 200 || !strings.Contains(page, "still signed in") {
		t.Fatalf("stay: %d %s", res.StatusCode, page)
	}
	if got, _ := lr.received(); len(got) != 0 {
		t.Fatalf("logout tokens sent though the person stayed: %+v", got)
	}

	// The hint of this session: ended at once, back to the app with state.
	bye := "http://127.0.0.1:9/bye/one"
	res, _ = p.get(endURL(url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye}, "state": {"s 1"}}))
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != bye+"?state=s+1" {
		t.Fatalf("logout: %d %q", res.StatusCode, loc)
	}
	got := lr.waitLogouts(2)
	if got[0].Aud == got[1].Aud {
		t.Fatalf("logout tokens %+v; want one for each app", got)
	}
	// --logout-revokes-grants: the grants made in the session are revoked.
	conf := oauth2.Config{ClientID: one.info.ClientID, ClientSecret: one.info.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.url + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader}}
	if _, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok1.RefreshToken}).Token(); err == nil ||
		!strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh after logout with --logout-revokes-grants: %v", err)
	}
	if status, _, _ := userinfo(t, srv, tok1.AccessToken); status != 401 {
		t.Fatalf("userinfo after logout with --logout-revokes-grants: %d", status)
	}
	// The browser is signed out: the hint is stale now, and nothing is left to end.
	if res, page = p.get(endURL(url.Values{"id_token_hint": {hint}})); res.StatusCode != 200 || !strings.Contains(page, "signed out") {
		t.Fatalf("second logout: %d %s", res.StatusCode, page)
	}
}

// TestEverySessionEndTellsTheApps: set-password and user delete end the person's sessions, and
// each tells the relying parties signed in with them; the account's sessions page shows it.
func TestEverySessionEndTellsTheApps(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	createUser(t, data, "alice", "alice-password")
	lr := newLogoutReceiver(t, srv.url)
	one := newRP(t, data, lr, "one")

	oidcSignIn(t, srv, newPerson(t), one, "alice", "alice-password")
	cliInput(t, "new-password\n", "user", "set-password", "--data-dir", data, "alice", "--password-stdin")
	lr.waitLogouts(1)

	p := newPerson(t)
	oidcSignIn(t, srv, p, one, "alice", "new-password")
	// The account page lists the app signed out of the earlier session.
	_, page := p.get(srv.url + "/account/sessions")
	if !strings.Contains(page, "one") || !strings.Contains(page, "signed out") {
		t.Fatalf("the sessions page does not show the app signed out: %s", page)
	}
	// A second app, which then stops receiving logout tokens (client update with an empty
	// URI): it is told nothing more.
	two := newRP(t, data, lr, "two")
	oidcSignIn(t, srv, p, two, "alice", "new-password")
	cli(t, nil, "client", "update", "--data-dir", data, two.info.ClientID, "--backchannel-logout-uri", "")
	cli(t, nil, "user", "delete", "--data-dir", data, "alice")
	got := lr.waitLogouts(2)
	if got[0].SID == got[1].SID || got[1].Aud != one.info.ClientID {
		t.Fatalf("logout tokens %+v; want the second for app one, of another session", got)
	}
	time.Sleep(1500 * time.Millisecond)
	if got, _ := lr.received(); len(got) != 2 {
		t.Fatalf("logout tokens %+v; want none for the app without a URI", got)
	}
}

// TestNodeOIDCInterop: openid-client v6 in OIDC mode signs a person in (authorizationCodeGrant
// with a nonce and ID token validation), reads userinfo (fetchUserInfo, which checks sub) and
// builds the end-session URL (buildEndSessionUrl), which signs the person out of the server and
// sends the logout token to the app.
func TestNodeOIDCInterop(t *testing.T) {
	node := requireNode(t)
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--outbox-allow-loopback")
	cliInput(t, "alice-password\n", "user", "create", "--data-dir", data, "--username", "alice", "--password-stdin",
		"--name", "Alice Liddell", "--email", "alice@example.com")
	lr := newLogoutReceiver(t, srv.url)
	// The server's keys are ES256 (the default --signing-alg) until RS256 keys land: the client
	// registers the algorithm it is given.
	app := newRP(t, data, lr, "node", "--id-token-alg", "ES256")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "oidc.mjs")
	cmd.Dir = nodeProject
	cmd.Env = append(os.Environ(), "ISSUER="+srv.url, "CLIENT_ID="+app.info.ClientID, "CLIENT_SECRET="+app.info.ClientSecret,
		"REDIRECT_URI="+app.redirect, "POST_LOGOUT_REDIRECT_URI=http://127.0.0.1:9/bye/node", "ID_TOKEN_ALG=ES256")
	var stderr syncBuffer
	cmd.Stderr = &stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	dec := json.NewDecoder(stdout)
	next := func() map[string]json.RawMessage {
		t.Helper()
		var m map[string]json.RawMessage
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("openid-client stopped: %v\n%s", err, stderr.String())
		}
		return m
	}
	var authURL string
	json.Unmarshal(next()["authorize"], &authURL)
	p := newPerson(t)
	q := p.authorize(srv.url, authURL, "alice", "alice-password")
	io.WriteString(stdin, app.redirect+"?"+q.Encode()+"\n")
	var r struct {
		Claims struct {
			Sub, Nonce, SID string
			AtHash          string `json:"at_hash"`
			Aud             string `json:"aud"`
			AuthTime        int64  `json:"auth_time"`
		} `json:"claims"`
		Nonce    string         `json:"nonce"`
		Userinfo map[string]any `json:"userinfo"`
		End      string         `json:"end_session"`
	}
	if err := json.Unmarshal(next()["result"], &r); err != nil {
		t.Fatal(err)
	}
	t.Logf("openid-client: claims %+v, userinfo %v", r.Claims, r.Userinfo)
	if r.Claims.Nonce != r.Nonce || r.Claims.Aud != app.info.ClientID || r.Claims.SID == "" || r.Claims.AuthTime == 0 || r.Claims.AtHash == "" ||
		r.Userinfo["sub"] != r.Claims.Sub || r.Userinfo["email"] != "alice@example.com" || r.Userinfo["name"] != "Alice Liddell" {
		t.Fatalf("openid-client result %+v", r)
	}
	if !strings.HasPrefix(r.End, srv.url+"/oauth2/logout?") || !strings.Contains(r.End, "id_token_hint=") {
		t.Fatalf("end-session URL %q", r.End)
	}
	res, _ := p.get(r.End)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || loc != "http://127.0.0.1:9/bye/node?state=bye" {
		t.Fatalf("end session: %d %q", res.StatusCode, loc)
	}
	if got := lr.waitLogouts(1); got[0].Aud != app.info.ClientID || got[0].SID != r.Claims.SID {
		t.Fatalf("logout token %+v", got[0])
	}
}

// TestUserinfoDPoP: a DPoP-bound access token (RFC 9449) is accepted at userinfo in the DPoP
// scheme with a proof of its key (and the token's hash), refused as a Bearer token and with a
// proof of another key.
func TestUserinfoDPoP(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "web", "--require-dpop",
		"--grant-types", "authorization_code,refresh_token", "--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "openid read")), &c)
	key, _ := dpop.GenerateKey(dpop.ES256)
	cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1:9/cb", Scopes: []string{"openid"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token"}}
	verifier := oauth2.GenerateVerifier()
	q := newPerson(t).authorize(srv.url, cfg.AuthCodeURL("xyz", oauth2.S256ChallengeOption(verifier)), "alice", "alice-password")
	r := dpopTokenRequest(t, srv, c, key, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {"http://127.0.0.1:9/cb"}})
	access, _ := r.body["access_token"].(string)
	if r.status != 200 || r.body["token_type"] != "DPoP" || r.body["id_token"] == nil {
		t.Fatalf("token response %d %v", r.status, r.body)
	}
	call := func(scheme string, k *dpop.Key) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.url+"/oauth2/userinfo", nil)
		req.Header.Set("Authorization", scheme+" "+access)
		if k != nil {
			p, _ := k.Proof("GET", srv.url+"/oauth2/userinfo", dpop.ProofOptions{AccessToken: access})
			req.Header.Set("DPoP", p)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode, res.Header.Get("WWW-Authenticate")
	}
	if status, chal := call("DPoP", key); status != 200 {
		t.Fatalf("userinfo with the token's key: %d %q", status, chal)
	}
	if status, chal := call("Bearer", nil); status != 401 || !strings.Contains(chal, "invalid_token") {
		t.Fatalf("the bound token as Bearer: %d %q", status, chal)
	}
	thief, _ := dpop.GenerateKey(dpop.ES256)
	if status, chal := call("DPoP", thief); status != 401 || !strings.Contains(chal, "invalid_dpop_proof") {
		t.Fatalf("a proof of another key: %d %q", status, chal)
	}
}
