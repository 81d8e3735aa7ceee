package oauth_test

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// benchClients are the env's clients of each access token format.
var benchClients = []struct{ format, id string }{{"opaque", "app"}, {"jwt", "jwtapp"}}

// serve runs one request through the handler in process and returns its status.
func (e *env) serve(path, body, user, pass string) int {
	req := httptest.NewRequest("POST", path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic(user, pass))
	w := httptest.NewRecorder()
	e.handler.ServeHTTP(w, req)
	return w.Code
}

// BenchmarkTokenEndpoint measures a client_credentials token request of each format, in
// process (client secret verification cached).
func BenchmarkTokenEndpoint(b *testing.B) {
	for _, c := range benchClients {
		b.Run(c.format, func(b *testing.B) {
			e := newEnvTB(b, nil)
			e.issue(c.id, appSecret, "")
			b.ReportAllocs()
			for b.Loop() {
				if code := e.serve("/oauth2/token", "grant_type=client_credentials", c.id, appSecret); code != 200 {
					b.Fatal(code)
				}
			}
		})
	}
}

// BenchmarkIntrospectToken measures introspecting a valid access token of each format, as the
// resource server, in process: the same few tokens asked about again and again.
func BenchmarkIntrospectToken(b *testing.B) {
	for _, c := range benchClients {
		b.Run(c.format, func(b *testing.B) {
			e := newEnvTB(b, nil)
			bodies := make([]string, 64)
			for i := range bodies {
				bodies[i] = "token=" + url.QueryEscape(e.issue(c.id, appSecret, ""))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if code := e.serve("/oauth2/introspect", bodies[i%len(bodies)], "rs", rsSecret); code != 200 {
					b.Fatal(code)
				}
				i++
			}
		})
	}
}

// BenchmarkRevokeToken measures revoking distinct access tokens of each format, durably (SQLite,
// synchronous=FULL), with 16 concurrent callers sharing each group commit. Tokens are issued
// before the timer starts.
func BenchmarkRevokeToken(b *testing.B) {
	for _, c := range benchClients {
		b.Run(c.format, func(b *testing.B) {
			e := newEnvTB(b, nil)
			bodies := make([]string, b.N)
			for i := range bodies {
				bodies[i] = "token=" + url.QueryEscape(e.issue(c.id, appSecret, "")) + "&token_type_hint=access_token"
			}
			var n atomic.Int64
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if code := e.serve("/oauth2/revoke", bodies[n.Add(1)-1], c.id, appSecret); code != 200 {
						b.Error(code)
						return
					}
				}
			})
		})
	}
}
