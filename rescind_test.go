package rescind

import (
	"fmt"
	"testing"
)

func TestParseScope(t *testing.T) {
	allowed := []string{"read", "write", "admin"}
	cases := []struct {
		req, want string
		ok        bool
	}{
		{"", "[read write admin]", true},
		{"read", "[read]", true},
		{"write  read write", "[write read]", true},
		{"read delete", "", false},
		{`re"ad`, "", false},
		{"   ", "", false},
		{"read\tx", "", false},
	}
	for _, c := range cases {
		got, err := ParseScope(c.req, allowed)
		if (err == nil) != c.ok || (c.ok && fmt.Sprint(got) != c.want) {
			t.Errorf("ParseScope(%q) = %v, %v; want %s, ok %v", c.req, got, err, c.want, c.ok)
		}
	}
	if got, _ := ParseScope("", allowed); &got[0] == &allowed[0] {
		t.Error("ParseScope returned the caller's slice")
	}
}

// TestMayReceiveSessions: an ended session goes to no event subscriber, whoever it is, while
// a token record of the same shape goes to its own client and to resource servers.
func TestMayReceiveSessions(t *testing.T) {
	subscribers := map[string]Client{
		"resource server for every audience": {ID: "rs", ResourceServer: true},
		"resource server for the issuer":     {ID: "rs2", ResourceServer: true, Resources: []string{"https://as.example"}},
		"a client named like the record":     {ID: ""},
		"an ordinary client":                 {ID: "app"},
	}
	for name, sub := range subscribers {
		session := Revocation{Kind: RevokeSession, Key: "s1", Subject: "u1"}
		if MayReceive(sub, session, "https://as.example") {
			t.Errorf("%s receives an ended session", name)
		}
		token := Revocation{Kind: RevokeToken, Key: "s1", Subject: "u1", ClientID: "app"}
		if want := sub.ID == "app" || sub.ResourceServer; MayReceive(sub, token, "https://as.example") != want {
			t.Errorf("%s: a token record received %v, want %v", name, !want, want)
		}
	}
}

// TestSkipsConsent: only a confidential or first-party client skips consent for scopes already
// granted.
func TestSkipsConsent(t *testing.T) {
	for _, tc := range []struct {
		c    Client
		want bool
	}{{Client{}, true}, {Client{FirstParty: true}, true}, {Client{Public: true}, false}, {Client{Public: true, FirstParty: true}, true}} {
		if got := tc.c.SkipsConsent(); got != tc.want {
			t.Errorf("%+v: SkipsConsent %v, want %v", tc.c, got, tc.want)
		}
	}
}
