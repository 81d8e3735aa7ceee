package safehttp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// TestCheck classifies addresses given as data; nothing is dialled.
func TestCheck(t *testing.T) {
	public := []string{"8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001:82a::200e",
		"::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0",
		"192.167.255.255", "192.169.0.0", "11.0.0.1", "126.255.255.255", "128.0.0.1"}
	refused := []string{"0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "100.64.0.1", "100.100.100.200", "127.0.0.1", "127.255.255.254",
		"169.254.169.254", "169.254.0.1", "172.16.0.1", "172.31.255.255", "192.0.0.170", "192.0.2.1", "192.88.99.1", "192.168.1.1",
		"198.18.0.1", "198.19.255.255", "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
		"::", "::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a00:1", "64:ff9b::7f00:1",
		"64:ff9b:1::1", "2002:a00:1::1", "2002:7f00:1::", "2001::1", "2001:db8::1", "fc00::1", "fd00:ec2::254", "fe80::1",
		"fe80::1%eth0", "fec0::1", "ff02::1", "100::1"}
	for _, s := range public {
		if err := (Policy{}).Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
	for _, s := range refused {
		if err := (Policy{}).Check(netip.MustParseAddr(s)); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s allowed", s)
		}
	}
	dev := Policy{AllowLoopback: true}
	for _, s := range []string{"127.0.0.1", "127.0.0.2", "::1", "::ffff:127.0.0.1"} {
		if err := dev.Check(netip.MustParseAddr(s)); err != nil {
			t.Errorf("with AllowLoopback, %s refused: %v", s, err)
		}
	}
	for _, s := range []string{"10.0.0.1", "169.254.169.254", "192.168.0.1", "fd00::1", "fe80::1", "0.0.0.0", "::"} {
		if err := dev.Check(netip.MustParseAddr(s)); err == nil {
			t.Errorf("with AllowLoopback, %s allowed", s)
		}
	}
}

func TestCheckURL(t *testing.T) {
	for _, tc := range []struct {
		url       string
		allowHTTP bool
		ok        bool
	}{
		{"https://rp.example/logout", false, true},
		{"http://rp.example/logout", false, false},
		{"http://rp.example/logout", true, true},
		{"ftp://rp.example/x", true, false},
		{"https://user:pw@rp.example/", false, false},
		{"https://rp.example/#frag", false, false},
		{"https:opaque", false, false},
		{"/relative", false, false},
		{"https://10.0.0.1/", false, false},
		{"https://[::1]/", false, false},
		{"https://[fd00::1]:8443/", false, false},
		{"https://169.254.169.254/latest/meta-data/", false, false},
		{"https://8.8.8.8/", false, true},
	} {
		_, err := (Policy{}).CheckURL(tc.url, tc.allowHTTP)
		if (err == nil) != tc.ok {
			t.Errorf("CheckURL(%q, %v) = %v, want ok=%v", tc.url, tc.allowHTTP, err, tc.ok)
		}
	}
}

// TestClientRefusesLoopback: without the development flag, every spelling of this machine is
// refused when dialled (the connection is never made); with it, the same server answers.
func TestClientRefusesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	spellings := []string{"127.0.0.1", "127.0.0.2", "localhost", "[::1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0.0.0.0", "[::]"}
	strict := NewClient(Options{AllowHTTP: true})
	for _, host := range spellings {
		_, _, err := Get(context.Background(), strict, "http://"+host+":"+port+"/", "", 1<<10)
		if !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("http://%s:%s: %v, want ErrForbiddenAddress", host, port, err)
		}
	}
	dev := NewClient(Options{Policy: Policy{AllowLoopback: true}, AllowHTTP: true})
	resp, b, err := Get(context.Background(), dev, srv.URL, "", 1<<10)
	if err != nil || resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("with AllowLoopback: %v %v %q", resp, err, b)
	}
}

// TestRedirects: a redirect to a private address is refused before it is dialled, and the number
// of redirects is bounded.
func TestRedirects(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/private":
			http.Redirect(w, r, "http://10.0.0.1/", http.StatusFound)
		case "/metadata":
			http.Redirect(w, r, "http://[::ffff:169.254.169.254]/latest/", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, srv.URL+"/loop", http.StatusFound)
		case "/big":
			w.Write([]byte(strings.Repeat("x", 2048)))
		}
	}))
	defer srv.Close()
	c := NewClient(Options{Policy: Policy{AllowLoopback: true}, AllowHTTP: true, MaxRedirects: 3})
	for _, p := range []string{"/private", "/metadata"} {
		if _, _, err := Get(context.Background(), c, srv.URL+p, "", 1<<10); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s: %v, want ErrForbiddenAddress", p, err)
		}
	}
	if _, _, err := Get(context.Background(), c, srv.URL+"/loop", "", 1<<10); err == nil || !strings.Contains(err.Error(), "redirects") {
		t.Errorf("redirect loop: %v", err)
	}
	if _, _, err := Get(context.Background(), c, srv.URL+"/big", "", 1<<10); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized body: %v", err)
	}
}

// TestHostForms: inet_aton's address forms are refused before any dial, names never; one
// loopback rule for configuration and delivery (audit 19, finding 8).
func TestHostForms(t *testing.T) {
	for _, c := range []struct {
		host              string
		numeric, loopback bool
	}{
		{"127.1", true, false},
		{"0x7f.0.0.1", true, false},
		{"0177.0.0.1", true, false},
		{"2130706433", true, false},
		{"0X7F000001", true, false},
		{"1.2.3.4.nip.io", false, false},
		{"receiver.example", false, false},
		{"0x.example", false, false},
		{"127.0.0.1", true, true}, // all numbers, but a standard address: CheckURL parses it first
		{"localhost", false, true},
		{"localhost.", false, true},
		{"LOCALHOST", false, true},
		{"a.localhost", false, true},
		{"localhost.example", false, false},
		{"::1", false, true},
		{"::ffff:127.0.0.1", false, true},
	} {
		if got := NumericHost(c.host); got != c.numeric {
			t.Errorf("NumericHost(%q) = %v; want %v", c.host, got, c.numeric)
		}
		if got := IsLoopbackHost(c.host); got != c.loopback {
			t.Errorf("IsLoopbackHost(%q) = %v; want %v", c.host, got, c.loopback)
		}
	}
	for _, raw := range []string{"https://127.1/", "https://0x7f.0.0.1/", "https://2130706433/"} {
		if _, err := (Policy{AllowLoopback: true}).CheckURL(raw, true); err == nil || !strings.Contains(err.Error(), "non-standard form") {
			t.Errorf("CheckURL(%q) = %v; want a refusal of the form", raw, err)
		}
	}
	if _, err := (Policy{AllowLoopback: true}).CheckURL("https://127.0.0.1/", true); err != nil {
		t.Errorf("CheckURL(loopback, allowed) = %v", err)
	}
}
