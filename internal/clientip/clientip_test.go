package clientip

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// Addresses here are data: nothing is dialled.
func TestClientAddr(t *testing.T) {
	r, err := Parse("10.0.0.0/8, 192.168.1.5, 2001:db8::/32")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		peer string
		xff  []string
		fwd  []string
		want string
	}{
		{"untrusted peer, no header", "203.0.113.9:4000", nil, nil, "203.0.113.9"},
		{"untrusted peer cannot set X-Forwarded-For", "203.0.113.9:4000", []string{"198.51.100.1"}, nil, "203.0.113.9"},
		{"untrusted peer cannot set Forwarded", "203.0.113.9:4000", nil, []string{"for=198.51.100.1"}, "203.0.113.9"},
		{"trusted peer, no header", "10.1.2.3:4000", nil, nil, "10.1.2.3"},
		{"trusted peer sets X-Forwarded-For", "10.1.2.3:4000", []string{"198.51.100.1"}, nil, "198.51.100.1"},
		{"rightmost untrusted hop wins over forged ones", "10.1.2.3:4000", []string{"1.1.1.1, 198.51.100.1"}, nil, "198.51.100.1"},
		{"trusted hops are skipped", "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9, 192.168.1.5"}, nil, "198.51.100.1"},
		{"several header lines are one list", "10.1.2.3:4000", []string{"1.1.1.1", "198.51.100.1, 10.0.0.7"}, nil, "198.51.100.1"},
		{"a single trusted address is not a range", "192.168.1.6:4000", []string{"198.51.100.1"}, nil, "192.168.1.6"},
		{"every hop trusted: the leftmost", "10.1.2.3:4000", []string{"10.0.0.1, 10.0.0.2"}, nil, "10.0.0.1"},
		{"hop with a port", "10.1.2.3:4000", []string{"198.51.100.1:5555"}, nil, "198.51.100.1"},
		{"IPv6 hop in brackets with port", "10.1.2.3:4000", []string{"[2001:db9::1]:443"}, nil, "2001:db9::1"},
		{"garbage hop: the last trusted address", "10.1.2.3:4000", []string{"198.51.100.1, not-an-ip"}, nil, "10.1.2.3"},
		{"unknown keeps the proxy", "10.1.2.3:4000", []string{"unknown"}, nil, "10.1.2.3"},
		{"empty header", "10.1.2.3:4000", []string{""}, nil, "10.1.2.3"},
		{"IPv4-mapped peer is trusted", "[::ffff:10.1.2.3]:4000", []string{"198.51.100.1"}, nil, "198.51.100.1"},
		{"trusted IPv6 peer", "[2001:db8::5]:4000", []string{"2001:db9::7"}, nil, "2001:db9::7"},
		{"Forwarded for=", "10.1.2.3:4000", nil, []string{"for=198.51.100.1;proto=https;by=10.1.2.3"}, "198.51.100.1"},
		{"Forwarded quoted IPv6 with port", "10.1.2.3:4000", nil, []string{`for="[2001:db9::17]:4711"`}, "2001:db9::17"},
		{"Forwarded rightmost untrusted", "10.1.2.3:4000", nil, []string{"for=1.1.1.1, for=198.51.100.1", "for=10.0.0.9"}, "198.51.100.1"},
		{"Forwarded quoted comma does not split", "10.1.2.3:4000", nil, []string{`for="1.1.1.1,2.2.2.2"`}, "10.1.2.3"},
		{"Forwarded obfuscated", "10.1.2.3:4000", nil, []string{"for=_hidden"}, "10.1.2.3"},
		{"Forwarded without for", "10.1.2.3:4000", nil, []string{"proto=https"}, "10.1.2.3"},
		{"X-Forwarded-For is preferred over Forwarded", "10.1.2.3:4000", []string{"198.51.100.1"}, []string{"for=6.6.6.6"}, "198.51.100.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range tc.fwd {
				req.Header.Add("Forwarded", v)
			}
			if got := r.ClientAddr(req); got != tc.want {
				t.Fatalf("ClientAddr = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNoTrustedProxies(t *testing.T) {
	var r *Resolver
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := r.ClientAddr(req); got != "127.0.0.1" {
		t.Fatalf("nil resolver: %q", got)
	}
	empty, _ := Parse("")
	if got := empty.ClientAddr(req); got != "127.0.0.1" {
		t.Fatalf("empty list: %q", got)
	}
}

func TestParse(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.0/8,nope", "1.2.3"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	r, err := Parse("::ffff:10.0.0.0/104")
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "10.2.3.4:1"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := r.ClientAddr(req); got != "198.51.100.1" {
		t.Fatalf("IPv4-mapped range: %q", got)
	}
}

func TestMiddleware(t *testing.T) {
	r, _ := Parse("127.0.0.0/8")
	var seen string
	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { seen = req.RemoteAddr }))
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "127.0.0.1:5000"
	req.Header.Set("X-Forwarded-For", "198.51.100.1")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen != "198.51.100.1:0" {
		t.Fatalf("RemoteAddr downstream = %q", seen)
	}
	if req.RemoteAddr != "127.0.0.1:5000" {
		t.Fatal("the caller's request was modified")
	}
	req.Header.Del("X-Forwarded-For")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen != "127.0.0.1:5000" {
		t.Fatalf("without a header RemoteAddr = %q", seen)
	}
}

func TestForwardedFor(t *testing.T) {
	got := ForwardedFor(`for=192.0.2.43, for="[2001:db8:cafe::17]";proto=http, by=203.0.113.43, For="_gazonk"`)
	want := []string{"192.0.2.43", "[2001:db8:cafe::17]", "", "_gazonk"}
	if !slices.Equal(got, want) {
		t.Fatalf("ForwardedFor = %q, want %q", got, want)
	}
}

// FuzzClientAddr: any header from a trusted peer resolves, without panicking, to the peer or an
// address that is in the headers.
func FuzzClientAddr(f *testing.F) {
	f.Add("198.51.100.1, 10.0.0.1", `for="[2001:db8::1]:80";by=x`)
	f.Add("", `for="\"`)
	f.Add("[::1]:9,unknown", "for=,for")
	r, _ := Parse("10.0.0.0/8")
	f.Fuzz(func(t *testing.T, xff, fwd string) {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = "10.0.0.1:1"
		if xff != "" {
			req.Header["X-Forwarded-For"] = []string{xff}
		}
		req.Header["Forwarded"] = []string{fwd}
		got := r.ClientAddr(req)
		if got == "" {
			t.Fatal("empty address")
		}
		ForwardedFor(fwd)
	})
}

// TestNetwork: the key of rate limits: an IPv4 address alone, an IPv6 address's /64, whatever
// form the address comes in. Addresses here are data: nothing is dialled.
func TestNetwork(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"192.0.2.7:4000", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:4000", "192.0.2.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2::abcd]:443", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not-an-address", "not-an-address"},
		{"@", "@"},
	} {
		if got := Network(tc.in); got != tc.want {
			t.Errorf("Network(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
