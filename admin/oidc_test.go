package admin

import (
	"strings"
	"testing"

	"github.com/rescind/rescind"
)

func TestValidBackchannelURI(t *testing.T) {
	for _, tc := range []struct {
		uri      string
		loopback bool
		ok       bool
	}{
		{"", false, true},
		{"https://rp.example/bcl", false, true},
		{"https://rp.example/bcl?x=1", false, true},
		{"http://rp.example/bcl", false, false},       // plain http off loopback
		{"http://rp.example/bcl", true, false},        // even with the development flag
		{"http://127.0.0.1:9/bcl", false, false},      // loopback needs the flag
		{"http://127.0.0.1:9/bcl", true, true},        // with it
		{"https://[::1]:9/bcl", true, true},           // IPv6 loopback
		{"https://localhost/bcl", false, false},       // a loopback name too
		{"https://rp.example/bcl#frag", false, false}, // fragment (§2.2)
		{"https://user@rp.example/bcl", false, false},
		{"/relative", false, false},
		{"ftp://rp.example/bcl", false, false},
	} {
		err := validBackchannelURI(tc.uri, tc.loopback)
		if (err == nil) != tc.ok {
			t.Errorf("validBackchannelURI(%q, loopback %v) = %v; want ok %v", tc.uri, tc.loopback, err, tc.ok)
		}
	}
}

func TestApplyOIDC(t *testing.T) {
	var c rescind.Client
	err := applyOIDC(&c, OIDC{IDTokenAlg: "ES256", PostLogoutRedirectURIs: []string{"https://rp.example/bye"},
		PostLogoutRedirectURI: "https://rp.example/bye2", BackchannelLogoutURI: "https://rp.example/bcl", BackchannelLogoutSessionRequired: true}, false)
	if err != nil || c.IDTokenAlg != "ES256" || strings.Join(c.PostLogoutRedirectURIs, " ") != "https://rp.example/bye https://rp.example/bye2" ||
		c.BackchannelLogoutURI != "https://rp.example/bcl" || !c.BackchannelLogoutSessionRequired {
		t.Fatalf("applyOIDC = %+v, %v", c, err)
	}
	for name, o := range map[string]OIDC{
		"alg none":             {IDTokenAlg: "none"},
		"alg HS256":            {IDTokenAlg: "HS256"},
		"post-logout fragment": {PostLogoutRedirectURIs: []string{"https://rp.example/bye#x"}},
		"backchannel http":     {BackchannelLogoutURI: "http://rp.example/bcl"},
	} {
		before := c
		if err := applyOIDC(&c, o, false); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if c.IDTokenAlg != before.IDTokenAlg || c.BackchannelLogoutURI != before.BackchannelLogoutURI {
			t.Errorf("%s: a refused change was applied", name)
		}
	}
}
