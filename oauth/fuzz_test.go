package oauth

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"
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
