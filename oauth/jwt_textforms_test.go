package oauth_test

import (
	"strings"
	"testing"
)

// TestJWTOneTextForm: a JWT access token is accepted in its own text only, not with CR or LF
// inserted (Go's base64 decoders skip them even in Strict mode), which would make each such
// spelling an entry of its own in the cache of verified JWTs (audit of issue 20, finding 2).
func TestJWTOneTextForm(t *testing.T) {
	e := newEnv(t)
	tok := e.issue("jwtapp", appSecret, "")
	dot := strings.LastIndexByte(tok, '.')
	forms := []string{
		tok[:dot+1] + "\n" + tok[dot+1:],
		tok[:dot+5] + "\r\n" + tok[dot+5:],
		tok + "\n\n\n",
	}
	for i := 0; i < 50; i++ {
		forms = append(forms, tok[:dot+1]+strings.Repeat("\n", i+4)+tok[dot+1:])
	}
	n := 0
	for _, f := range forms {
		if f != tok && e.active(f) {
			n++
		}
	}
	if !e.active(tok) {
		t.Fatal("the token itself is not active")
	}
	if n > 0 {
		t.Fatalf("a JWT has %d other text forms the server accepts", n)
	}
}
