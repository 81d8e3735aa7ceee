package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
)

// TestBruteForceLimits: failed client authentications from one address are limited (429, RFC
// 6749 JSON, Retry-After) after the burst; a secret verified before still passes; another
// address is not limited by this one's failures; failed logins are limited the same way.
func TestBruteForceLimits(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--auth-failure-burst", "3", "--auth-failure-per-minute", "1")
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "b")), &c)
	srv.token(c.ClientID, c.ClientSecret) // verified once: cached
	form := url.Values{"grant_type": {"client_credentials"}}
	for i := range 3 {
		if code, _ := srv.post("/oauth2/token", c.ClientID, "wrong", form); code != 401 {
			t.Fatalf("failure %d: %d, want 401", i, code)
		}
	}
	req, _ := http.NewRequest("POST", srv.url+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, "wrong")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var e map[string]string
	json.NewDecoder(res.Body).Decode(&e)
	res.Body.Close()
	if res.StatusCode != 429 || res.Header.Get("Retry-After") == "" || e["error"] != "slow_down" {
		t.Fatalf("after the burst: %d Retry-After %q %v", res.StatusCode, res.Header.Get("Retry-After"), e)
	}
	if code, body := srv.post("/oauth2/token", c.ClientID, c.ClientSecret, form); code != 200 {
		t.Fatalf("the legitimate, already verified secret was locked out: %d %s", code, body)
	}
	// Another source address (127.0.0.2) is not limited.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext}}
	req, _ = http.NewRequest("POST", srv.url+"/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, "wrong-from-elsewhere")
	if res, err := other.Do(req); err != nil {
		t.Fatal(err)
	} else if res.Body.Close(); res.StatusCode != 401 {
		t.Fatalf("another address: %d, want 401 (checked, not limited)", res.StatusCode)
	}
	// Logins.
	createUser(t, data, "alice", "alice-password")
	p := newPerson(t)
	for i := 0; i < 4; i++ {
		_, page := p.get(srv.url + "/login")
		f := formOf(page)
		f.Set("username", "alice")
		f.Set("password", "nope")
		res, _ := p.post(srv.url+"/login", f)
		want := 401
		if i == 3 {
			want = 429
		}
		if res.StatusCode != want {
			t.Fatalf("login failure %d: %d, want %d", i, res.StatusCode, want)
		}
	}
}

// TestSecurityHeaders checks the headers of pages and JSON responses.
func TestSecurityHeaders(t *testing.T) {
	srv := startServer(t, filepath.Join(shortTempDir(t), "d"), nil)
	for path, want := range map[string][]string{
		"/login": {"Content-Security-Policy", "X-Frame-Options"},
		"/.well-known/oauth-authorization-server": nil,
	} {
		res, err := http.Get(srv.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		h := res.Header
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Fatalf("%s: %v", path, h)
		}
		for _, k := range want {
			if h.Get(k) == "" {
				t.Fatalf("%s lacks %s", path, k)
			}
		}
		if path == "/login" && (!strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") || h.Get("Cache-Control") != "no-store") {
			t.Fatalf("page headers: %v", h)
		}
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return
}

// TestTLSAndPlainHTTPIssuer: --tls-cert/--tls-key serve HTTPS with an https issuer; a plain-HTTP
// issuer off loopback is refused unless --insecure-http.
func TestTLSAndPlainHTTPIssuer(t *testing.T) {
	dir := shortTempDir(t)
	cert, key := selfSigned(t, dir)
	addr := freePort(t)
	cmd := exec.Command(binary, "serve", "--addr", addr, "--data-dir", filepath.Join(dir, "d"), "--tls-cert", cert, "--tls-key", key)
	cmd.Env = os.Environ()
	var log syncBuffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	var md map[string]any
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if res, err := hc.Get("https://" + addr + "/.well-known/oauth-authorization-server"); err == nil {
			json.NewDecoder(res.Body).Decode(&md)
			res.Body.Close()
			break
		}
	}
	if md["issuer"] != "https://"+addr {
		t.Fatalf("issuer over TLS = %v\n%s", md["issuer"], log.String())
	}
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil && res.StatusCode == 200 {
		t.Fatal("plain HTTP answered on the TLS port")
	}

	_, errOut, err := runCLI(nil, "serve", "--addr", freePort(t), "--data-dir", filepath.Join(dir, "e"), "--issuer", "http://auth.example.com")
	if err == nil || !strings.Contains(errOut, "--insecure-http") {
		t.Fatalf("plain-HTTP public issuer: %v %s", err, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := freePort(t)
	ok := exec.CommandContext(ctx, binary, "serve", "--addr", a, "--data-dir", filepath.Join(dir, "f"), "--issuer", "http://auth.example.com", "--insecure-http")
	if err := ok.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { ok.Process.Kill(); ok.Wait() }()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get("http://" + a + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("--insecure-http did not start")
		}
	}
}
