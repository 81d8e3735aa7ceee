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
