package redirect

import (
	"errors"
	"strings"
	"testing"
)

// TestValidate: each rule, accepted and refused. A refusal must name its rule (want is a
// fragment of the message), so a developer knows what to change.
func TestValidate(t *testing.T) {
	cases := []struct {
		name, uri string
		insecure  bool
		want      string // "" for accepted
	}{
		// https
		{"https", "https://app.example/cb", false, ""},
		{"https with port, query and path", "https://app.example:8443/oauth/cb?tenant=a", false, ""},
		{"https without host", "https:///cb", false, "needs a host"},
		{"https with port only", "https://:443/cb", false, "needs a host"},
		{"https opaque", "https:app.example/cb", false, "needs a host"},
		{"backslash before @", "https://good.example\\@evil.example/cb", false, "backslash"},
		// http: loopback only
		{"http on 127.0.0.1", "http://127.0.0.1/cb", false, ""},
		{"http on 127.0.0.1 with port", "http://127.0.0.1:8080/cb", false, ""},
		{"http on [::1]", "http://[::1]:51234/cb", false, ""},
		{"http on localhost", "http://localhost:3000/callback", false, ""},
		{"http on another host", "http://evil.example/cb", false, "only on loopback"},
		{"http on a private address", "http://192.168.1.10/cb", false, "only on loopback"},
		{"http on 127.0.0.2", "http://127.0.0.2/cb", false, "only on loopback"},
		{"http on 127.0.0.1 in octal-looking form", "http://127.000.000.001/cb", false, "only on loopback"},
		{"http on a localhost lookalike", "http://localhost.evil.example/cb", false, "only on loopback"},
		{"http elsewhere with allow_insecure_redirect", "http://dev.internal:8080/cb", true, ""},
		{"http without host", "http:///cb", false, "needs a host"},
		// private-use schemes (RFC 8252 §7.1)
		{"private-use reverse-domain", "com.example.app:/oauth2redirect", false, ""},
		{"private-use with authority", "com.example.app://callback", false, ""},
		{"private-use without a dot", "myapp:/cb", false, "reverse-domain"},
		{"private-use without a dot, insecure allowed", "myapp://cb", true, "reverse-domain"},
		// schemes a browser runs or reads
		{"javascript", "javascript:alert(1)//", false, "javascript: scheme"},
		{"javascript with insecure allowed", "javascript:alert(1)//", true, "javascript: scheme"},
		{"JavaScript mixed case", "JaVaScRiPt:alert(1)", false, "javascript: scheme"},
		{"data", "data:text/html,<script>alert(1)</script>", false, "data: scheme"},
		{"file", "file:///etc/passwd", false, "file: scheme"},
		{"vbscript", "vbscript:msgbox(1)", false, "vbscript: scheme"},
		// fragments, wildcards, user info, shape
		{"fragment", "https://app.example/cb#frag", false, "fragment"},
		{"empty fragment", "https://app.example/cb#", false, "fragment"},
		{"wildcard host", "https://*.example.com/cb", false, "wildcard"},
		{"wildcard path", "https://app.example/*", false, "wildcard"},
		{"user info", "https://user:pass@app.example/cb", false, "user information"},
		{"user info hiding the host", "https://app.example@evil.example/cb", false, "user information"},
		{"relative", "/cb", false, "absolute URI"},
		{"no scheme", "app.example/cb", false, "absolute URI"},
		{"space", "https://app.example/c b", false, "printable ASCII"},
		{"non-ASCII", "https://app.exämple/cb", false, "printable ASCII"},
		{"control character", "https://app.example/cb\r\nX: y", false, "printable ASCII"},
		{"empty", "", false, "empty"},
		{"too long", "https://app.example/" + strings.Repeat("a", MaxLength), false, "at most"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.uri, tc.insecure)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate(%q) = %v; want accepted", tc.uri, err)
				}
				return
			}
			var re *Error
			if !errors.As(err, &re) || re.URI != tc.uri {
				t.Fatalf("Validate(%q) = %v; want a *redirect.Error for it", tc.uri, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate(%q) = %q; want the rule %q named", tc.uri, err, tc.want)
			}
		})
	}
}

func TestValidateAll(t *testing.T) {
	if err := ValidateAll([]string{"https://a.example/cb", "http://127.0.0.1/cb"}, false); err != nil {
		t.Fatal(err)
	}
	if err := ValidateAll([]string{"https://a.example/cb", "https://a.example/cb"}, false); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate: %v", err)
	}
	if err := ValidateAll([]string{"https://a.example/cb", "http://evil.example/cb"}, false); err == nil {
		t.Fatal("a bad URI among good ones accepted")
	}
}

// TestMatch: exact matching, except that a loopback http URI may come with any port (RFC 8252
// §7.3); every other difference is refused.
func TestMatch(t *testing.T) {
	reg := []string{"http://127.0.0.1/cb", "http://[::1]:8080/native?x=1", "http://localhost/app", "https://app.example/cb",
		"com.example.app:/cb"}
	cases := []struct {
		requested, want string // want "" for no match
	}{
		{"https://app.example/cb", "https://app.example/cb"},
		{"com.example.app:/cb", "com.example.app:/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1/cb"},
		{"http://127.0.0.1:51234/cb", "http://127.0.0.1/cb"},
		{"http://[::1]:61000/native?x=1", "http://[::1]:8080/native?x=1"},
		{"http://[::1]/native?x=1", "http://[::1]:8080/native?x=1"},
		{"http://localhost:3000/app", "http://localhost/app"},
		// only the port may differ
		{"http://127.0.0.1:51234/cb/", ""},
		{"http://127.0.0.1:51234/other", ""},
		{"http://127.0.0.1:51234/cb?extra=1", ""},
		{"http://127.0.0.1:51234/cb#frag", ""},
		{"http://user@127.0.0.1:51234/cb", ""},
		{"http://localhost:51234/cb", ""},   // another host than registered
		{"http://[::1]:61000/native", ""},   // query dropped
		{"https://127.0.0.1:51234/cb", ""},  // scheme changed
		{"https://app.example:8443/cb", ""}, // not loopback: exact only
		{"https://app.example/cb?x", ""},
		{"https://APP.example/cb", ""},
		{"com.example.app:/cb/x", ""},
		{"", ""},
	}
	for _, tc := range cases {
		got, ok := Match(reg, tc.requested)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Match(%q) = %q, %v; want %q", tc.requested, got, ok, tc.want)
		}
	}
}
