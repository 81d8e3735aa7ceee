package oauth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/redirect"
)

// FuzzParseBasic: any Authorization header is decoded without panicking; a decoded one has a
// client id and at least one secret candidate, all valid UTF-8.
func FuzzParseBasic(f *testing.F) {
	for _, s := range []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("a%3Ab:c%25d+e")), "Basic !!", "Bearer x", "basic Og==", "Basic",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("id:p\xe9"))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		id, cands, ok := parseBasic(h)
		if !ok {
			return
		}
		if id == "" || len(cands) == 0 {
			t.Fatalf("ok with id %q and %d candidates", id, len(cands))
		}
		for _, c := range cands {
			if !utf8.ValidString(c) {
				t.Fatalf("candidate %q is not UTF-8", c)
			}
		}
	})
}

// FuzzParseForm: any body and content type gets a form or a protocol error, never a panic; an
// accepted form has each parameter once, in valid UTF-8.
func FuzzParseForm(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&scope=a+b")
	f.Add("application/x-www-form-urlencoded; charset=utf-8", "a=1&a=2")
	f.Add("application/json", `{"a":1}`)
	f.Add("application/x-www-form-urlencoded", "%zz=%ff&\x00=1")
	f.Fuzz(func(t *testing.T, ct, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		form, perr := parseForm(httptest.NewRecorder(), r, 4096)
		if perr != nil {
			if perr.Code == "" || perr.Status < 400 || perr.Status >= 500 {
				t.Fatalf("error %+v is not a 4xx protocol error", perr)
			}
			return
		}
		for k, vs := range form {
			if len(vs) != 1 || !utf8.ValidString(vs[0]) {
				t.Fatalf("parameter %q accepted as %q", k, vs)
			}
		}
	})
}

// FuzzRegistration: any registration body gets client metadata or an RFC 7591 §3.2.2 error,
// never a panic; what is accepted obeys the registration rules (redirect URIs, grant types, a
// printable name, a public client in open mode).
func FuzzRegistration(f *testing.F) {
	f.Add(`{"client_name":"Agent","redirect_uris":["http://127.0.0.1:33418/cb"],"grant_types":["authorization_code","refresh_token"]}`, true)
	f.Add(`{"redirect_uris":["javascript:x"],"token_endpoint_auth_method":"client_secret_basic"}`, false)
	f.Add(`{"grant_types":["client_credentials"],"scope":"a b a","response_types":[]}`, false)
	f.Add(`{"redirect_uris":"x","client_name":7}`, true)
	f.Add("{\"client_name\":\"\xff\"}", true)
	f.Add(`[]`, false)
	s := &Server{}
	f.Fuzz(func(t *testing.T, body string, open bool) {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/register", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		md, perr := readMetadata(httptest.NewRecorder(), r)
		var rc registeredClient
		if perr == nil {
			rc, perr = s.validateMetadata(md, open)
		}
		if perr != nil {
			if (perr.Code != ErrInvalidClientMetadata && perr.Code != ErrInvalidRedirectURI) || perr.Status < 400 || perr.Status >= 500 {
				t.Fatalf("error %+v is not an RFC 7591 error", perr)
			}
			return
		}
		if err := redirect.ValidateAll(rc.redirects, false); err != nil {
			t.Fatalf("accepted a redirect URI: %v", err)
		}
		if rc.name == "" || len(rc.name) > maxClientName || !utf8.ValidString(rc.name) {
			t.Fatalf("accepted the name %q", rc.name)
		}
		if open && !rc.public || rc.public && slices.Contains(rc.grantTypes, rescind.GrantClientCredentials) {
			t.Fatalf("accepted %+v (open %v)", rc, open)
		}
		for _, gt := range rc.grantTypes {
			if gt != rescind.GrantAuthorizationCode && gt != rescind.GrantRefreshToken && gt != rescind.GrantClientCredentials {
				t.Fatalf("accepted grant type %q", gt)
			}
		}
		if slices.Contains(rc.grantTypes, rescind.GrantAuthorizationCode) && len(rc.redirects) == 0 {
			t.Fatal("a code client without redirect URIs")
		}
		for _, sc := range rc.scopes {
			if !rescind.ValidScopeToken(sc) {
				t.Fatalf("accepted scope %q", sc)
			}
		}
	})
}

// FuzzResources: any values of the resource parameter are accepted only as absolute URIs
// without fragments, at most token.MaxAudience of them, without repeats.
func FuzzResources(f *testing.F) {
	f.Add("https://api.example", "urn:example:x")
	f.Add("not a uri", "")
	f.Add("https://a.example/#f", "/rel")
	f.Fuzz(func(t *testing.T, a, b string) {
		got, desc := parseResources([]string{a, b, a})
		if desc != "" {
			if got != nil {
				t.Fatalf("refused (%s) with resources %v", desc, got)
			}
			return
		}
		if len(got) > 2 || len(got) == 0 {
			t.Fatalf("%q, %q gave %v", a, b, got)
		}
		for _, r := range got {
			if !rescind.ValidResource(r) || strings.Contains(r, "#") {
				t.Fatalf("accepted %q", r)
			}
		}
		if len(got) == 2 && got[0] == got[1] {
			t.Fatalf("a repeat: %v", got)
		}
	})
}
