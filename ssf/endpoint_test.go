package ssf

import (
	"strings"
	"testing"
)

// TestPushEndpointPolicy: a push endpoint must be an absolute https URL on a public address;
// loopback (over http or https) only with AllowLoopbackPush, and nothing else non-public ever.
// The addresses are data: nothing is dialled.
func TestPushEndpointPolicy(t *testing.T) {
	for _, c := range []struct {
		url      string
		loopback bool // AllowLoopbackPush
		refusal  string
	}{
		{"https://receiver.example/events", false, ""},
		{"https://93.184.216.34/events", false, ""}, // a public address, as data
		{"http://receiver.example/events", false, "https"},
		{"http://receiver.example/events", true, "https"}, // the flag is for loopback only
		{"https://10.1.2.3/events", false, "not public"},
		{"https://10.1.2.3/events", true, "not public"},
		{"https://192.168.0.10/events", true, "not public"},
		{"https://172.16.5.5/events", true, "not public"},
		{"https://169.254.169.254/latest/meta-data", true, "not public"},
		{"https://[fe80::1]/events", true, "not public"},
		{"https://[fc00::1]/events", true, "not public"},
		{"https://[::ffff:10.0.0.1]/events", true, "not public"},
		{"https://127.0.0.1/events", false, "loopback"},
		{"http://127.0.0.1:8080/events", false, "loopback"},
		{"https://localhost/events", false, "loopback"},
		{"https://[::1]/events", false, "loopback"},
		{"http://127.0.0.1:8080/events", true, ""},
		{"https://127.0.0.1:8443/events", true, ""},
		{"http://localhost:8080/events", true, ""},
		{"https://user:pw@receiver.example/events", false, "user info"},
		{"https://receiver.example/events#frag", false, "fragment"},
		{"/events", false, "absolute"},
		{"", false, "required"},
		{"ftp://receiver.example/events", false, "https"},
		{"https://receiver.example/" + strings.Repeat("a", 3000), false, "longer"},
		// Addresses in inet_aton's forms: refused whatever the flag, never left to the dial
		// (audit 19, finding 8).
		{"https://127.1/events", true, "non-standard form"},
		{"https://0x7f.0.0.1/events", true, "non-standard form"},
		{"https://0177.0.0.1/events", true, "non-standard form"},
		{"https://2130706433/events", true, "non-standard form"},
		{"https://10.1/events", false, "non-standard form"},
		{"https://0x5db8d822/events", false, "non-standard form"},
		{"https://1.2.3.4.nip.io/events", false, ""}, // a name whose labels are not all numbers
		// One loopback rule, the deliverer's too: a final dot, any case, names under .localhost.
		{"https://localhost./events", false, "loopback"},
		{"https://LOCALHOST/events", false, "loopback"},
		{"https://a.localhost/events", false, "loopback"},
		{"http://localhost./events", true, ""},
		{"http://a.localhost/events", true, ""},
	} {
		tr := &Transmitter{cfg: Config{AllowLoopbackPush: c.loopback}}
		err := tr.checkPushEndpoint(c.url)
		switch {
		case c.refusal == "" && err != nil:
			t.Errorf("%q (loopback %v): refused: %v", c.url, c.loopback, err)
		case c.refusal != "" && (err == nil || !strings.Contains(err.Error(), c.refusal)):
			t.Errorf("%q (loopback %v): %v; want a refusal saying %q", c.url, c.loopback, err, c.refusal)
		}
	}
}

// TestSubjects: the RFC 9493 formats and complex subjects are accepted, with the keys that
// find them; malformed ones are refused with the rule they break.
func TestSubjects(t *testing.T) {
	for _, c := range []struct {
		json    string
		keys    int
		refusal string
	}{
		{`{"format":"iss_sub","iss":"https://as.example","sub":"u1"}`, 1, ""},
		{`{"format":"email","email":"Alice@Example.com"}`, 1, ""},
		{`{"format":"opaque","id":"x"}`, 1, ""},
		{`{"format":"account","uri":"acct:a@example.com"}`, 1, ""},
		{`{"format":"phone_number","phone_number":"+12065550100"}`, 1, ""},
		{`{"format":"did","url":"did:example:123"}`, 1, ""},
		{`{"format":"uri","uri":"https://example.com/u"}`, 1, ""},
		{`{"format":"aliases","identifiers":[{"format":"opaque","id":"a"},{"format":"email","email":"a@example.com"}]}`, 2, ""},
		{`{"user":{"format":"iss_sub","iss":"https://as.example","sub":"u1"},"session":{"format":"opaque","id":"s"}}`, 2, ""},
		{`{"format":"iss_sub","iss":"https://as.example"}`, 0, `"sub"`},
		{`{"format":"email","email":""}`, 0, `"email"`},
		{`{"format":"nope","id":"x"}`, 0, "unsupported subject format"},
		{`{"format":"aliases","identifiers":[{"format":"aliases","identifiers":[]}]}`, 0, "nested"},
		{`{"hacker":{"format":"opaque","id":"x"}}`, 0, "unknown member"},
		{`{}`, 0, "at least one member"},
		{`"alice"`, 0, "JSON object"},
		{`null`, 0, "required"},
		{`{"format":"opaque","id":"` + strings.Repeat("x", 5000) + `"}`, 0, "larger"},
	} {
		canon, keys, err := subjectKeys([]byte(c.json))
		switch {
		case c.refusal == "" && (err != nil || len(keys) != c.keys || len(canon) == 0):
			t.Errorf("%s: %d keys, %v; want %d keys", c.json, len(keys), err, c.keys)
		case c.refusal != "" && (err == nil || !strings.Contains(err.Error(), c.refusal)):
			t.Errorf("%s: %v; want a refusal saying %s", c.json, err, c.refusal)
		}
	}
	// Member order and email case do not make another subject.
	a, ka, _ := subjectKeys([]byte(`{"session":{"id":"s","format":"opaque"},"user":{"format":"email","email":"A@x.org"}}`))
	b, kb, _ := subjectKeys([]byte(`{"user":{"email":"A@x.org","format":"email"},"session":{"format":"opaque","id":"s"}}`))
	_, kc, _ := subjectKeys([]byte(`{"format":"email","email":"a@X.org"}`))
	if subjectID(a) != subjectID(b) || strings.Join(ka, ",") != strings.Join(kb, ",") || !contains(ka, kc[0]) {
		t.Errorf("canonical forms differ: %s %s; keys %q %q %q", a, b, ka, kb, kc)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
