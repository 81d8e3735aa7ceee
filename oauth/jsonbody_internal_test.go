package oauth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rescind/rescind/token"
)

// jsonBodyCases are responses whose hand encoding must equal encoding/json's, with the strings
// that need escaping: quotes, backslashes, every control character, HTML characters, U+2028 and
// U+2029, invalid UTF-8, multi-byte text.
func jsonBodyCases() []jsonBody {
	var ctl strings.Builder
	for c := range 0x20 {
		ctl.WriteByte(byte(c))
	}
	odd := []string{"", "plain", `q"b\s`, ctl.String(), "<a href='x'>&amp;</a>", "line\u2028para\u2029end",
		"bad\xffutf8\xc3", "h\xc3\xa9llo \u00e9 \U0001F600", "\x7f del", "tab\tnew\nret\r"}
	var out []jsonBody
	for i, s := range odd {
		t := odd[(i+3)%len(odd)]
		out = append(out,
			tokenResponse{AccessToken: s, TokenType: t, ExpiresIn: int64(i) * 1000, RefreshToken: t, Scope: s, IDToken: s},
			tokenResponse{AccessToken: s, TokenType: "Bearer", ExpiresIn: -int64(i)},
			introspection{Active: i%2 == 0, Scope: s, ClientID: t, TokenType: s, Exp: int64(i) << 40, Iat: -1, Sub: t,
				Aud: token.Audience{s}, Iss: t, Jti: s, Cnf: &token.Confirmation{JKT: t}},
			introspection{Active: true, ClientID: s, Aud: token.Audience{s, t, "x"}, Iss: s},
			introspection{})
	}
	return out
}

// TestJSONBodiesMatchEncodingJSON holds the hand-written encoders to encoding/json's output,
// byte for byte.
func TestJSONBodiesMatchEncodingJSON(t *testing.T) {
	for i, v := range jsonBodyCases() {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if got := v.appendJSON(nil); !bytes.Equal(got, want) {
			t.Errorf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// FuzzJSONBodies compares the hand-written encoders with encoding/json on any strings.
func FuzzJSONBodies(f *testing.F) {
	f.Add("a", "b", "c", int64(1))
	f.Add("\u2028<>&", "\xff\xfe", "\"\\", int64(-5))
	f.Fuzz(func(t *testing.T, a, b, c string, n int64) {
		for _, v := range []jsonBody{
			tokenResponse{AccessToken: a, TokenType: b, ExpiresIn: n, RefreshToken: c, Scope: a, IDToken: b},
			introspection{Active: n%2 == 0, Scope: a, ClientID: b, TokenType: c, Exp: n, Iat: -n, Sub: a,
				Aud: token.Audience{b, c}, Iss: c, Jti: a, Cnf: &token.Confirmation{JKT: b}},
			introspection{Active: true, ClientID: c, Aud: token.Audience{a}, Iss: b},
		} {
			want, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			if got := v.appendJSON(nil); !bytes.Equal(got, want) {
				t.Fatalf("\n got %s\nwant %s", got, want)
			}
		}
	})
}
