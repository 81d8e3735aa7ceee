package oauth

import (
	"net/http/httptest"
	"testing"
)

// TestNetworkKey: limits on what a party may create count an IPv4 address, or an IPv6 /64.
func TestNetworkKey(t *testing.T) {
	for remote, want := range map[string]string{
		"192.0.2.7:1234":             "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:443":      "2001:db8:1:3::/64",
		"[::ffff:192.0.2.7]:80":      "192.0.2.7", // the IPv4 address it maps
		"[fe80::1%eth0]:80":          "fe80::/64",
		"not an address":             "not an address",
		"[2001:db8::1]:1":            "2001:db8::/64",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if got := networkKey(r); got != want {
			t.Errorf("networkKey(%q) = %q, want %q", remote, got, want)
		}
	}
}
