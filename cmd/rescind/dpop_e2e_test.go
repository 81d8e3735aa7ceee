package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/rescind/rescind/admin"
	"github.com/rescind/rescind/client"
	"github.com/rescind/rescind/dpop"
	"github.com/rescind/rescind/resource"
)

// dpopReply is a token endpoint answer.
type dpopReply struct {
	status int
	header http.Header
	body   map[string]any
}

func (r dpopReply) code() string { s, _ := r.body["error"].(string); return s }

// tokenWithProofs sends a token request with the given DPoP header values; a client without a
// secret sends its client_id.
func tokenWithProofs(t testing.TB, base, id, secret string, form url.Values, proofs ...string) dpopReply {
	t.Helper()
	if secret == "" {
		form.Set("client_id", id)
	}
	req, _ := http.NewRequest("POST", base+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	}
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := dpopReply{status: res.StatusCode, header: res.Header}
	if err := json.Unmarshal(b, &r.body); err != nil {
		t.Fatalf("token endpoint answered %d with non-JSON %q", res.StatusCode, b)
	}
	return r
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// signES256 signs header and claims as a compact JWS with ES256, whatever they say: proofs no
// client library would make.
func signES256(t testing.TB, header, claims any, key *ecdsa.PrivateKey) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, ok := claims.([]byte)
	if !ok {
		c, _ = json.Marshal(claims)
	}
	input := b64url(h) + "." + b64url(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64url(sig)
}

func publicJWK(k *ecdsa.PublicKey) map[string]any {
	return map[string]any{"kty": "EC", "crv": "P-256", "x": b64url(k.X.FillBytes(make([]byte, 32))), "y": b64url(k.Y.FillBytes(make([]byte, 32)))}
}

// joseProof signs proof claims with go-jose: for algorithms and keys the server must refuse.
func joseProof(t testing.TB, alg jose.SignatureAlgorithm, key any, typ string, embed bool, claims any) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: embed}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	j, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := j.CompactSerialize()
	return out
}

func randomID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return b64url(b)
}

// TestDPoPHostileProofs sends malformed and hostile DPoP proofs to the real token endpoint:
// each is refused with the right error code (RFC 9449 §5, §8), never a 5xx, and no token is
// issued; a valid proof still works afterwards.
func TestDPoPHostileProofs(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	var conf, pub admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "conf", "--scope", "read")), &conf)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "pub", "--public",
		"--redirect-uri", "http://127.0.0.1/cb")), &pub)
	tokenURL := srv.url + "/oauth2/token"
	now := time.Now()

	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"jti": randomID(), "htm": "POST", "htu": tokenURL, "iat": now.Unix()}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	header := func(kv ...any) map[string]any {
		h := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": publicJWK(&ecKey.PublicKey)}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(h, kv[i].(string))
			} else {
				h[kv[i].(string)] = kv[i+1]
			}
		}
		return h
	}
	sign := func(h, c any) string { return signES256(t, h, c, ecKey) }
	privJWK := publicJWK(&ecKey.PublicKey)
	privJWK["d"] = b64url(ecKey.D.FillBytes(make([]byte, 32)))
	valid := sign(header(), claims())
	if r := tokenWithProofs(t, srv.url, conf.ClientID, conf.ClientSecret, url.Values{"grant_type": {"client_credentials"}}, valid); r.status != 200 || r.body["token_type"] != "DPoP" {
		t.Fatalf("a valid proof: %d %v", r.status, r.body)
	}
	tamperedSig := sign(header(), claims())
	tamperedSig = tamperedSig[:len(tamperedSig)-6] + "AAAAAA"
	tamperedClaims := func() string {
		p := strings.Split(sign(header(), claims()), ".")
		other, _ := json.Marshal(claims()) // another jti: the signature no longer covers it
		p[1] = b64url(other)
		return strings.Join(p, ".")
	}()
	hs256 := joseProof(t, jose.HS256, []byte(strings.Repeat("s", 32)), "dpop+jwt", false, claims())

	cases := []struct {
		name   string
		public bool     // as the public client (nonce demanded by default)
		proofs []string // DPoP header values
		want   string   // error code
	}{
		{"replayed proof", false, []string{valid}, "invalid_dpop_proof"},
		{"empty header", false, []string{""}, "invalid_dpop_proof"},
		{"two DPoP headers", false, []string{sign(header(), claims()), sign(header(), claims())}, "invalid_dpop_proof"},
		{"not a JWT", false, []string{"hello"}, "invalid_dpop_proof"},
		{"base64 garbage in three parts", false, []string{"!!!.###.$$$"}, "invalid_dpop_proof"},
		{"JWS JSON serialization", false, []string{`{"payload":"e30","signatures":[]}`}, "invalid_dpop_proof"},
		{"oversized (16 KiB)", false, []string{valid + strings.Repeat("A", 16<<10)}, "invalid_dpop_proof"},
		{"alg none", false, []string{b64url([]byte(`{"typ":"dpop+jwt","alg":"none","jwk":{}}`)) + "." + b64url([]byte(`{}`)) + "."}, "invalid_dpop_proof"},
		{"symmetric alg HS256", false, []string{hs256}, "invalid_dpop_proof"},
		{"HS256 named, public key as the secret", false, []string{sign(header("alg", "HS256"), claims())}, "invalid_dpop_proof"},
		{"private key in the jwk header", false, []string{sign(header("jwk", privJWK), claims())}, "invalid_dpop_proof"},
		{"jwk of another key", false, []string{sign(header("jwk", publicJWK(&otherKey.PublicKey)), claims())}, "invalid_dpop_proof"},
		{"no jwk", false, []string{sign(header("jwk", nil), claims())}, "invalid_dpop_proof"},
		{"jwk as a URL (jku)", false, []string{sign(header("jwk", nil, "jku", "https://evil.example/jwks"), claims())}, "invalid_dpop_proof"},
		{"typ JWT", false, []string{sign(header("typ", "JWT"), claims())}, "invalid_dpop_proof"},
		{"no typ", false, []string{sign(header("typ", nil), claims())}, "invalid_dpop_proof"},
		{"typ at+jwt", false, []string{sign(header("typ", "at+jwt"), claims())}, "invalid_dpop_proof"},
		{"unknown crit header", false, []string{sign(header("crit", []string{"exp"}, "exp", 1), claims())}, "invalid_dpop_proof"},
		{"signature altered", false, []string{tamperedSig}, "invalid_dpop_proof"},
		{"claims altered after signing", false, []string{tamperedClaims}, "invalid_dpop_proof"},
		{"ES384 with a P-384 key", false, []string{joseProof(t, jose.ES384, p384, "dpop+jwt", true, claims())}, "invalid_dpop_proof"},
		{"RSA key of 1024 bits", false, []string{joseProof(t, jose.RS256, rsa1024, "dpop+jwt", true, claims())}, "invalid_dpop_proof"},
		{"wrong htm", false, []string{sign(header(), claims("htm", "GET"))}, "invalid_dpop_proof"},
		{"htm in lower case", false, []string{sign(header(), claims("htm", "post"))}, "invalid_dpop_proof"},
		{"no htm", false, []string{sign(header(), claims("htm", nil))}, "invalid_dpop_proof"},
		{"htu of the revocation endpoint", false, []string{sign(header(), claims("htu", srv.url+"/oauth2/revoke"))}, "invalid_dpop_proof"},
		{"htu of another server", false, []string{sign(header(), claims("htu", "https://evil.example/oauth2/token"))}, "invalid_dpop_proof"},
		{"htu over https", false, []string{sign(header(), claims("htu", strings.Replace(tokenURL, "http://", "https://", 1)))}, "invalid_dpop_proof"},
		{"htu not a URI", false, []string{sign(header(), claims("htu", "token endpoint"))}, "invalid_dpop_proof"},
		{"no htu", false, []string{sign(header(), claims("htu", nil))}, "invalid_dpop_proof"},
		{"iat five minutes old", false, []string{sign(header(), claims("iat", now.Add(-5*time.Minute).Unix()))}, "invalid_dpop_proof"},
		{"iat five minutes ahead", false, []string{sign(header(), claims("iat", now.Add(5*time.Minute).Unix()))}, "invalid_dpop_proof"},
		{"iat a string", false, []string{sign(header(), claims("iat", "now"))}, "invalid_dpop_proof"},
		{"no iat", false, []string{sign(header(), claims("iat", nil))}, "invalid_dpop_proof"},
		{"no jti", false, []string{sign(header(), claims("jti", nil))}, "invalid_dpop_proof"},
		{"jti of 10 KiB", false, []string{sign(header(), claims("jti", strings.Repeat("j", 10<<10)))}, "invalid_dpop_proof"},
		{"claims an array", false, []string{sign(header(), []byte(`["jti","htm"]`))}, "invalid_dpop_proof"},
		{"claims not JSON", false, []string{sign(header(), []byte(`jti=1`))}, "invalid_dpop_proof"},
		{"public client, no nonce", true, []string{sign(header(), claims())}, "use_dpop_nonce"},
		{"public client, forged nonce", true, []string{sign(header(), claims("nonce", b64url(make([]byte, 24))))}, "use_dpop_nonce"},
		{"public client, nonce not base64", true, []string{sign(header(), claims("nonce", "<script>"))}, "use_dpop_nonce"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r dpopReply
			if tc.public {
				r = tokenWithProofs(t, srv.url, pub.ClientID, "", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rsc_rt_x"}}, tc.proofs...)
			} else {
				r = tokenWithProofs(t, srv.url, conf.ClientID, conf.ClientSecret, url.Values{"grant_type": {"client_credentials"}}, tc.proofs...)
			}
			if r.status >= 500 || r.status != 400 || r.code() != tc.want {
				t.Fatalf("%d %v; want 400 %s", r.status, r.body, tc.want)
			}
			if _, issued := r.body["access_token"]; issued {
				t.Fatal("a token was issued")
			}
			if tc.want == "use_dpop_nonce" && r.header.Get("DPoP-Nonce") == "" {
				t.Fatal("use_dpop_nonce without a DPoP-Nonce header")
			}
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d hostile proofs", len(cases))
	}
	// A proof beyond the server's header limit (32 KiB) never reaches the handler: 431.
	req, _ := http.NewRequest("POST", tokenURL, strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("DPoP", strings.Repeat("A", 64<<10))
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("a 64 KiB proof: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	// The endpoint still works: a fresh valid proof gets a bound token.
	if r := tokenWithProofs(t, srv.url, conf.ClientID, conf.ClientSecret, url.Values{"grant_type": {"client_credentials"}},
		sign(header(), claims())); r.status != 200 || r.body["token_type"] != "DPoP" {
		t.Fatalf("a valid proof after the hostile ones: %d %v", r.status, r.body)
	}
}

// TestDPoPCLIAndMiddleware: rescind token --dpop-key makes (0600) and reuses a key and gets a
// bound token; introspection shows cnf; the resource middleware accepts the token only with
// proofs of that key (and so refuses a copy presented as Bearer, or with a mismatched ath); revoke
// and introspect take plain client authentication; a client created with --require-dpop gets
// invalid_dpop_proof without a proof and, with one, its token after a nonce retry.
func TestDPoPCLIAndMiddleware(t *testing.T) {
	dir := shortTempDir(t)
	data := filepath.Join(dir, "d")
	srv := startServer(t, data, nil)
	info := newClientFor(t, data)
	keyFile := filepath.Join(dir, "dpop.pem")
	env := []string{"RESCIND_CLIENT_SECRET=" + info.ClientSecret}
	flags := []string{"--issuer", srv.url, "--client-id", info.ClientID}

	out, errOut, err := runCLI(env, append([]string{"token", "--output", "json", "--dpop-key", keyFile}, flags...)...)
	if err != nil || !strings.Contains(errOut, "created the DPoP key") {
		t.Fatalf("token --dpop-key: %v\n%s\n%s", err, out, errOut)
	}
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	var tr map[string]any
	if err := json.Unmarshal([]byte(out), &tr); err != nil || tr["token_type"] != "DPoP" || tr["access_token"] == nil {
		t.Fatalf("token response %s (%v)", out, err)
	}
	pemBytes, _ := os.ReadFile(keyFile)
	key, err := dpop.ParseKey(pemBytes, "")
	if err != nil {
		t.Fatal(err)
	}
	// A second run uses the same key.
	out2, errOut2, err := runCLI(env, append([]string{"token", "--output", "json", "--dpop-key", keyFile, "--verbose"}, flags...)...)
	if err != nil || strings.Contains(errOut2, "created") {
		t.Fatalf("second run: %v %s", err, errOut2)
	}
	if !strings.Contains(errOut2, "> Dpop: ****") || strings.Contains(errOut2, "eyJ0eXAiOiJkcG9w") {
		t.Fatalf("--verbose does not mask the proof:\n%s", errOut2)
	}
	json.Unmarshal([]byte(out2), &tr)
	tok := tr["access_token"].(string)
	in := cli(t, env, append([]string{"introspect", "--output", "json"}, append(flags, tok)...)...)
	if !strings.Contains(in, `"cnf":{"jkt":"`+key.Thumbprint()+`"}`) || !strings.Contains(in, `"token_type":"DPoP"`) {
		t.Fatalf("introspection of the bound token: %s", in)
	}

	// The resource middleware, as a resource server of the real server.
	var rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)
	api := httptest.NewUnstartedServer(nil)
	apiURL := "http://" + api.Listener.Addr().String()
	mw, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, ClientID: rs.ClientID, ClientSecret: rs.ClientSecret,
		BaseURL: apiURL})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	api.Config.Handler = mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := resource.ClaimsFrom(r.Context())
		io.WriteString(w, c.ClientID)
	}))
	api.Start()
	defer api.Close()
	get := func(auth string, proofs ...string) (int, string) {
		req, _ := http.NewRequest("GET", api.URL+"/photos", nil)
		req.Header.Set("Authorization", auth)
		for _, p := range proofs {
			req.Header.Add("DPoP", p)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res.StatusCode, res.Header.Get("WWW-Authenticate")
	}
	hc := &http.Client{Transport: &client.DPoPTransport{Key: key, Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok})}}
	res, err := hc.Get(api.URL + "/photos")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || string(body) != info.ClientID {
		t.Fatalf("with the key: %d %s", res.StatusCode, body)
	}
	other, _ := dpop.GenerateKey(dpop.ES256)
	proof := func(k *dpop.Key, tok string) string {
		p, _ := k.Proof("GET", api.URL+"/photos", dpop.ProofOptions{AccessToken: tok})
		return p
	}
	for name, c := range map[string]struct {
		auth   string
		proofs []string
		want   string
	}{
		"copied token as Bearer":         {"Bearer " + tok, nil, `Bearer error="invalid_token"`},
		"copied token, proof of a thief": {"DPoP " + tok, []string{proof(other, tok)}, `DPoP error="invalid_dpop_proof"`},
		"mismatched ath":                 {"DPoP " + tok, []string{proof(key, tok+"x")}, `DPoP error="invalid_dpop_proof"`},
		"no proof":                       {"DPoP " + tok, nil, `DPoP error="invalid_dpop_proof"`},
	} {
		if code, chal := get(c.auth, c.proofs...); code != 401 || !strings.HasPrefix(chal, c.want) {
			t.Fatalf("%s: %d %q; want 401 %s", name, code, chal, c.want)
		}
	}
	// Revoke with plain client authentication: the middleware refuses the token from then on.
	cli(t, env, append([]string{"revoke"}, append(flags, tok)...)...)
	if in := cli(t, env, append([]string{"introspect", "--output", "json"}, append(flags, tok)...)...); strings.TrimSpace(in) != `{"active":false}` {
		t.Fatalf("after revoke: %s", in)
	}
	mwFresh, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, ClientID: rs.ClientID, ClientSecret: rs.ClientSecret,
		BaseURL: apiURL})
	if err != nil {
		t.Fatal(err)
	}
	defer mwFresh.Close()
	freshReq := httptest.NewRequest("GET", apiURL+"/photos", nil)
	freshReq.Header.Set("Authorization", "DPoP "+tok)
	freshReq.Header.Set("DPoP", proof(key, tok))
	if _, err := mwFresh.VerifyRequest(freshReq); err == nil || !strings.Contains(err.Error(), "not active") {
		t.Fatalf("a revoked bound token with its proof: %v; want refused as not active", err)
	}

	// --require-dpop.
	var strict admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "strict", "--require-dpop")), &strict)
	if !strict.RequireDPoP {
		t.Fatalf("client create --require-dpop: %+v", strict)
	}
	senv := []string{"RESCIND_CLIENT_SECRET=" + strict.ClientSecret}
	_, errOut, err = runCLI(senv, "token", "--issuer", srv.url, "--client-id", strict.ClientID)
	if err == nil || !strings.Contains(errOut, "invalid_dpop_proof") {
		t.Fatalf("strict client without a key: %v %s", err, errOut)
	}
	out, errOut, err = runCLI(senv, "token", "--output", "json", "--issuer", srv.url, "--client-id", strict.ClientID, "--dpop-key", filepath.Join(dir, "strict.pem"), "--dpop-alg", "EdDSA")
	if err != nil || !strings.Contains(out, `"token_type":"DPoP"`) {
		t.Fatalf("strict client with a key (nonce retry): %v %s %s", err, out, errOut)
	}
	// client update lifts the requirement, and sets it again.
	for _, c := range []struct {
		flag     string
		required bool
	}{{"--require-dpop=false", false}, {"--require-dpop", true}} {
		var upd admin.ClientInfo
		json.Unmarshal([]byte(cli(t, nil, "client", "update", "--data-dir", data, strict.ClientID, c.flag)), &upd)
		if upd.RequireDPoP != c.required {
			t.Fatalf("client update %s: require_dpop %v", c.flag, upd.RequireDPoP)
		}
		_, errOut, err = runCLI(senv, "token", "--issuer", srv.url, "--client-id", strict.ClientID)
		if refused := err != nil && strings.Contains(errOut, "invalid_dpop_proof"); refused != c.required {
			t.Fatalf("after client update %s, a token request without a proof: %v %s", c.flag, err, errOut)
		}
	}
}

// TestDPoPReplayAcrossRestart: a proof accepted just before a restart (clean, or a kill -9) is
// refused after it (SQLite: the replay log in the data dir).
func TestDPoPReplayAcrossRestart(t *testing.T) {
	dir := shortTempDir(t)
	data := filepath.Join(dir, "d")
	addr := freePort(t)
	srv := startServer(t, data, nil, "--issuer", "http://"+addr)
	info := newClientFor(t, data)
	key, _ := dpop.GenerateKey(dpop.ES256)
	cc := url.Values{"grant_type": {"client_credentials"}}
	for _, crash := range []bool{false, true} {
		p, _ := key.Proof("POST", "http://"+addr+"/oauth2/token", dpop.ProofOptions{})
		if r := tokenWithProofs(t, srv.url, info.ClientID, info.ClientSecret, cc, p); r.status != 200 {
			t.Fatalf("first use: %d %v", r.status, r.body)
		}
		if crash {
			srv.kill()
		} else {
			srv.stop()
		}
		srv = startServer(t, data, nil, "--issuer", "http://"+addr)
		if r := tokenWithProofs(t, srv.url, info.ClientID, info.ClientSecret, cc, p); r.status != 400 || r.code() != "invalid_dpop_proof" {
			t.Fatalf("crash %v: the proof replayed after the restart: %d %v", crash, r.status, r.body)
		}
		fresh, _ := key.Proof("POST", "http://"+addr+"/oauth2/token", dpop.ProofOptions{})
		if r := tokenWithProofs(t, srv.url, info.ClientID, info.ClientSecret, cc, fresh); r.status != 200 {
			t.Fatalf("crash %v: a new proof after the restart: %d %v", crash, r.status, r.body)
		}
	}
}

// TestDPoPCluster: two instances on one PostgreSQL database share the replay cache (a proof
// used at A is refused at B, however fast) and the nonces (B accepts A's), and each opens the
// other's bound tokens.
func TestDPoPCluster(t *testing.T) {
	env, _ := clusterEnv(t)
	dir := shortTempDir(t)
	issuer := "http://auth.localhost:8180"
	a := startServer(t, filepath.Join(dir, "a"), env, "--issuer", issuer, "--dpop-nonce", "always")
	b := startServer(t, filepath.Join(dir, "b"), env, "--issuer", issuer, "--dpop-nonce", "always")
	var cl admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", a.dataDir, "--name", "c")), &cl)
	key, _ := dpop.GenerateKey(dpop.ES256)
	cc := func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }
	proof := func(nonce string) string {
		p, _ := key.Proof("POST", issuer+"/oauth2/token", dpop.ProofOptions{Nonce: nonce})
		return p
	}
	r := tokenWithProofs(t, a.url, cl.ClientID, cl.ClientSecret, cc(), proof(""))
	nonce := r.header.Get("DPoP-Nonce")
	if r.code() != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("no nonce: %d %v", r.status, r.body)
	}
	for round := range 5 {
		p := proof(nonce) // A's nonce, used at B first, then replayed at A
		if r := tokenWithProofs(t, b.url, cl.ClientID, cl.ClientSecret, cc(), p); r.status != 200 {
			t.Fatalf("round %d: A's nonce at B: %d %v", round, r.status, r.body)
		}
		if r := tokenWithProofs(t, a.url, cl.ClientID, cl.ClientSecret, cc(), p); r.status != 400 || r.code() != "invalid_dpop_proof" {
			t.Fatalf("round %d: a proof used at B was accepted at A: %d %v", round, r.status, r.body)
		}
	}
	tok := tokenWithProofs(t, a.url, cl.ClientID, cl.ClientSecret, cc(), proof(nonce)).body["access_token"].(string)
	code, body := b.post("/oauth2/introspect", cl.ClientID, cl.ClientSecret, url.Values{"token": {tok}})
	if code != 200 || !strings.Contains(string(body), `"cnf":{"jkt":"`+key.Thumbprint()+`"}`) {
		t.Fatalf("B's introspection of A's bound token: %d %s", code, body)
	}
}

// TestExampleResourceServerDPoP: examples/resource-server accepts DPoP-bound and Bearer tokens as
// it is; with DPOP_NONCE=1 it demands its nonce, which DPoPTransport retries with; a copy of the
// bound token, as Bearer, is refused; after its revocation the bound token is refused too.
func TestExampleResourceServerDPoP(t *testing.T) {
	srv, app, rs := jwtSetup(t)
	bin := filepath.Join(t.TempDir(), "resource-server")
	if out, err := exec.Command("go", "build", "-o", bin, "../../examples/resource-server").CombinedOutput(); err != nil {
		t.Fatalf("building the example: %v\n%s", err, out)
	}
	addr := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "RESCIND_ISSUER="+srv.url, "RESCIND_CLIENT_ID="+rs.ClientID,
		"RESCIND_CLIENT_SECRET="+rs.ClientSecret, "ADDR="+addr, "AUDIENCE=https://api.example", "DPOP_NONCE=1")
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	key, _ := dpop.GenerateKey(dpop.ES256)
	c := &client.Client{Issuer: srv.url, ClientID: app.ClientID, ClientSecret: app.ClientSecret, DPoP: key}
	bound, err := c.Token(context.Background(), url.Values{"grant_type": {"client_credentials"}, "resource": {"https://api.example"}})
	if err != nil || bound.TokenType != "DPoP" {
		t.Fatalf("bound token: %v %+v", err, bound)
	}
	bearer := jwtToken(t, srv, app)
	photos := "http://" + addr + "/photos"
	hc := &http.Client{Transport: &client.DPoPTransport{Key: key, Source: oauth2.StaticTokenSource(bound)}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := hc.Get(photos)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example never accepted the bound token: %v %v\n%s", res, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	noNonce, _ := key.Proof("GET", photos, dpop.ProofOptions{AccessToken: bound.AccessToken})
	if res := getWith(t, photos, "DPoP "+bound.AccessToken, noNonce); res.StatusCode != 401 || res.Header.Get("DPoP-Nonce") == "" ||
		!strings.Contains(res.Header.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) {
		t.Fatalf("a proof without the example's nonce: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	if res := getWith(t, photos, "Bearer "+bearer); res.StatusCode != 200 {
		t.Fatalf("a bearer token: %d", res.StatusCode)
	}
	if res := getWith(t, photos, "Bearer "+bound.AccessToken); res.StatusCode != 401 {
		t.Fatalf("a copy of the bound token as Bearer: %d", res.StatusCode)
	}
	srv.revoke(app.ClientID, app.ClientSecret, bound.AccessToken)
	for {
		res, err := hc.Get(photos)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 401 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the example still accepts the revoked bound token\n%s", log.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dpopCodeFlow signs alice in for client (secret "" for a public client) and redeems the code
// with a proof of key, retrying once for a nonce; it returns the token response.
func dpopCodeFlow(t *testing.T, srv *server, c admin.ClientInfo, key *dpop.Key) dpopReply {
	t.Helper()
	cfg := oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, RedirectURL: "http://127.0.0.1:9/cb", Scopes: []string{"read"},
		Endpoint: oauth2.Endpoint{AuthURL: srv.url + "/oauth2/authorize", TokenURL: srv.url + "/oauth2/token"}}
	verifier := oauth2.GenerateVerifier()
	q := newPerson(t).authorize(srv.url, cfg.AuthCodeURL("xyz", oauth2.S256ChallengeOption(verifier)), "alice", "alice-password")
	return dpopTokenRequest(t, srv, c, key, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
		"code_verifier": {verifier}, "redirect_uri": {"http://127.0.0.1:9/cb"}})
}

// dpopTokenRequest sends form to the token endpoint with a proof of key, retrying once with the
// nonce the server asks for.
func dpopTokenRequest(t *testing.T, srv *server, c admin.ClientInfo, key *dpop.Key, form url.Values) dpopReply {
	t.Helper()
	var r dpopReply
	for i := 0; i < 2; i++ {
		p, _ := key.Proof("POST", srv.url+"/oauth2/token", dpop.ProofOptions{Nonce: r.header.Get("DPoP-Nonce")})
		f := url.Values{}
		for k, v := range form {
			f[k] = v
		}
		if r = tokenWithProofs(t, srv.url, c.ClientID, c.ClientSecret, f, p); r.code() != "use_dpop_nonce" {
			break
		}
	}
	return r
}

// TestDPoPRefreshTokenIsNoAccessToken: a confidential --require-dpop client whose API runs the
// middleware with the client's own credentials (as the README's setup allows). Its access
// tokens are bound, its refresh tokens are not (RFC 9449 §5); the refresh token presented as an
// access token, Bearer or DPoP, is refused (audit 18 finding 3: it was accepted as a Bearer
// token for its 30 days), and introspection asked about it as an access token says inactive.
func TestDPoPRefreshTokenIsNoAccessToken(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "web", "--require-dpop",
		"--grant-types", "authorization_code,refresh_token", "--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "read")), &c)
	key, _ := dpop.GenerateKey(dpop.ES256)
	r := dpopCodeFlow(t, srv, c, key)
	if r.status != 200 || r.body["token_type"] != "DPoP" {
		t.Fatalf("code redemption: %d %v", r.status, r.body)
	}
	at, rt := r.body["access_token"].(string), r.body["refresh_token"].(string)

	api := httptest.NewUnstartedServer(nil)
	base := "http://" + api.Listener.Addr().String()
	mw, err := resource.New(context.Background(), resource.Config{Issuer: srv.url, ClientID: c.ClientID, ClientSecret: c.ClientSecret, BaseURL: base})
	if err != nil {
		t.Fatal(err)
	}
	defer mw.Close()
	api.Config.Handler = mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "photos") }))
	api.Start()
	defer api.Close()
	proof := func(tok string) string {
		p, _ := key.Proof("GET", base+"/photos", dpop.ProofOptions{AccessToken: tok})
		return p
	}
	for _, tc := range []struct {
		name, auth string
		proofs     []string
		want       int
	}{
		{"the access token with its proof", "DPoP " + at, []string{proof(at)}, 200},
		{"the access token as Bearer", "Bearer " + at, nil, 401},
		{"the refresh token as Bearer", "Bearer " + rt, nil, 401},
		{"the refresh token with a proof", "DPoP " + rt, []string{proof(rt)}, 401},
	} {
		if res := getWith(t, base+"/photos", tc.auth, tc.proofs...); res.StatusCode != tc.want {
			t.Errorf("%s: %d %q; want %d", tc.name, res.StatusCode, res.Header.Get("WWW-Authenticate"), tc.want)
		}
	}
	code, body := srv.post("/oauth2/introspect", c.ClientID, c.ClientSecret, url.Values{"token": {rt}, "token_type_hint": {"access_token"}})
	if code != 200 || string(body) != `{"active":false}` {
		t.Fatalf("the refresh token introspected as an access token: %d %s", code, body)
	}
	code, body = srv.post("/oauth2/introspect", c.ClientID, c.ClientSecret, url.Values{"token": {rt}})
	if code != 200 || !strings.Contains(string(body), `"token_type":"refresh_token"`) {
		t.Fatalf("the refresh token introspected without a hint, by its client: %d %s", code, body)
	}
}

// TestDPoPHostHeaderAtTheMiddleware: a real bound token from the real server; the attacker holds
// a proof the client made for another origin (http://evil.example/photos, a server it also
// calls) and sends it to the API with Host: evil.example. Refused with BaseURL (the proof names
// another URL) and without (no bound token is accepted then); it was accepted without BaseURL
// (audit 18 finding 1).
func TestDPoPHostHeaderAtTheMiddleware(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	info := newClientFor(t, data)
	key, _ := dpop.GenerateKey(dpop.ES256)
	r := dpopTokenRequest(t, srv, info, key, url.Values{"grant_type": {"client_credentials"}})
	tok, _ := r.body["access_token"].(string)
	if r.body["token_type"] != "DPoP" {
		t.Fatalf("%v", r.body)
	}
	var rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "api", "--resource-server")), &rs)
	for _, withBase := range []bool{true, false} {
		api := httptest.NewUnstartedServer(nil)
		cfg := resource.Config{Issuer: srv.url, ClientID: rs.ClientID, ClientSecret: rs.ClientSecret}
		if withBase {
			cfg.BaseURL = "http://" + api.Listener.Addr().String()
		}
		mw, err := resource.New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		api.Config.Handler = mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "photos") }))
		api.Start()
		evilProof, _ := key.Proof("GET", "http://evil.example/photos", dpop.ProofOptions{AccessToken: tok})
		req, _ := http.NewRequest("GET", api.URL+"/photos", nil)
		req.Host = "evil.example"
		req.Header.Set("Authorization", "DPoP "+tok)
		req.Header.Set("DPoP", evilProof)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		want := `DPoP error="invalid_dpop_proof"`
		if !withBase {
			want = `DPoP error="invalid_token"`
		}
		if res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), want) {
			t.Errorf("BaseURL set %v: a proof for http://evil.example/photos with Host evil.example: %d %q; want 401 %s",
				withBase, res.StatusCode, res.Header.Get("WWW-Authenticate"), want)
		}
		api.Close()
		mw.Close()
	}
}

// TestDPoPRevokingACopiedPublicRefreshToken: what SECURITY.md states. A copy of a public
// client's bound refresh token is useless for refreshing without the key (refused, and left to
// its holder), but revocation takes the client_id and the token alone (RFC 7009; RFC 9449
// defines no proof there, and openid-client and oauth4webapi send none), so whoever holds a copy
// can end the grant: the holder then signs in again. The revocation is honoured, as every
// revocation is.
func TestDPoPRevokingACopiedPublicRefreshToken(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil)
	createUser(t, data, "alice", "alice-password")
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "spa", "--public",
		"--redirect-uri", "http://127.0.0.1:9/cb", "--scope", "read")), &c)
	key, _ := dpop.GenerateKey(dpop.ES256)
	r := dpopCodeFlow(t, srv, c, key)
	rt, _ := r.body["refresh_token"].(string)
	if r.status != 200 || rt == "" {
		t.Fatalf("code: %d %v", r.status, r.body)
	}
	thief, _ := dpop.GenerateKey(dpop.ES256)
	if r := dpopTokenRequest(t, srv, c, thief, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); r.code() != "invalid_grant" {
		t.Fatalf("the copy refreshed with the thief's key: %d %v", r.status, r.body)
	}
	res, err := http.PostForm(srv.url+"/oauth2/revoke", url.Values{"client_id": {c.ClientID}, "token": {rt}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("revocation with the copy: %d", res.StatusCode)
	}
	if r := dpopTokenRequest(t, srv, c, key, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}); r.code() != "invalid_grant" {
		t.Fatalf("the holder refreshed after the revocation: %d %v", r.status, r.body)
	}
}

// TestDPoPKeyAlgorithm: --dpop-alg is honoured for an existing key file, not only when one is
// created: an RSA key created for RS256 was used as PS256 on later runs whatever --dpop-alg
// said. Without --dpop-alg an existing key gets its type's algorithm, and an RSA key, which has
// two, is an error naming the flag; an algorithm that does not fit the key is an error.
func TestDPoPKeyAlgorithm(t *testing.T) {
	dir := t.TempDir()
	rsaFile, ecFile, edFile := filepath.Join(dir, "rsa.pem"), filepath.Join(dir, "ec.pem"), filepath.Join(dir, "ed.pem")
	var out strings.Builder
	for _, c := range []struct{ file, alg string }{{rsaFile, dpop.RS256}, {ecFile, dpop.ES256}, {edFile, dpop.EdDSA}} {
		k, err := loadOrCreateDPoPKey(&out, c.file, c.alg, c.alg != dpop.ES256)
		if err != nil || k.Algorithm() != c.alg {
			t.Fatalf("creating a %s key: %v %v", c.alg, k, err)
		}
	}
	if !strings.Contains(out.String(), "give --dpop-alg RS256 with it every time") {
		t.Fatalf("creating an RSA key does not say to repeat --dpop-alg: %q", out.String())
	}
	for _, c := range []struct {
		name, file, alg string
		algSet          bool
		want            string // the algorithm, or "" for an error
		errHas          string
	}{
		{"RSA key, RS256", rsaFile, dpop.RS256, true, dpop.RS256, ""},
		{"RSA key, PS256", rsaFile, dpop.PS256, true, dpop.PS256, ""},
		{"RSA key, no --dpop-alg", rsaFile, dpop.ES256, false, "", "--dpop-alg"},
		{"RSA key, ES256", rsaFile, dpop.ES256, true, "", "used with RS256 or PS256"},
		{"P-256 key, no --dpop-alg", ecFile, dpop.ES256, false, dpop.ES256, ""},
		{"P-256 key, EdDSA", ecFile, dpop.EdDSA, true, "", "used with ES256"},
		{"Ed25519 key, no --dpop-alg", edFile, dpop.ES256, false, dpop.EdDSA, ""},
	} {
		k, err := loadOrCreateDPoPKey(io.Discard, c.file, c.alg, c.algSet)
		switch {
		case c.want != "" && (err != nil || k.Algorithm() != c.want):
			t.Errorf("%s: %v %v; want %s", c.name, k, err, c.want)
		case c.want == "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%s: %v; want an error about %s", c.name, err, c.errHas)
		}
	}
}
