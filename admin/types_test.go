package admin

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationJSON(t *testing.T) {
	for in, want := range map[string]time.Duration{`86400`: 24 * time.Hour, `"24h"`: 24 * time.Hour, `"90s"`: 90 * time.Second, `0`: 0, `1.5`: 1500 * time.Millisecond} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err != nil || time.Duration(d) != want {
			t.Errorf("%s: %v, %v; want %v", in, time.Duration(d), err, want)
		}
	}
	for _, in := range []string{`"tomorrow"`, `true`, `"24"`} {
		var d Duration
		if err := json.Unmarshal([]byte(in), &d); err == nil {
			t.Errorf("%s accepted as %v", in, time.Duration(d))
		}
	}
	if b, _ := json.Marshal(RotateSecretRequest{Overlap: ptr(Duration(time.Hour))}); string(b) != `{"overlap":3600}` {
		t.Errorf("marshalled as %s", b)
	}
}

func ptr[T any](v T) *T { return &v }
