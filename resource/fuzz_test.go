package resource

import (
	"context"
	"testing"
)

// FuzzVerify: any bearer token is refused or accepted without panicking; only tokens the
// fake issuer signed are accepted.
func FuzzVerify(f *testing.F) {
	as := newFakeAS(f)
	m, err := New(context.Background(), Config{Issuer: as.URL, Audience: "https://api.example", FailOpen: true})
	if err != nil {
		f.Fatal(err)
	}
	defer m.Close()
	valid := as.token(as.claims(1))
	f.Add(valid)
	f.Add(valid[:len(valid)-4])
	f.Add("eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.e30.")
	f.Add("rsc_at_xyz")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := m.Verify(context.Background(), text)
		if err == nil && text != valid {
			t.Fatalf("accepted a token the issuer did not sign: %q -> %+v", text, c)
		}
	})
}
