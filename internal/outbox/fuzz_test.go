package outbox

import (
	"strings"
	"testing"
)

// FuzzReceiverResponse: what a receiver controls in its answer, a Retry-After field and the
// body of a refusal, never makes a negative or unbounded wait, nor an error text that is long or
// holds anything but printable ASCII.
func FuzzReceiverResponse(f *testing.F) {
	f.Add("120", []byte(`{"err":"invalid_request","description":"bad"}`))
	f.Add("Wed, 02 Jan 2030 03:05:35 GMT", []byte("\x1b[31m\n\tred\x00"))
	f.Add("-1", []byte(strings.Repeat("é", 300)))
	f.Add("99999999999999999999999", []byte{})
	f.Fuzz(func(t *testing.T, retryAfter string, body []byte) {
		if d := parseRetryAfter(retryAfter, now); d < 0 || d > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %v; want within [0, %v]", retryAfter, d, maxRetryAfter)
		}
		q := quote(body)
		if len(q) > maxQuote+len("…") {
			t.Fatalf("quote of %d bytes is %d bytes long", len(body), len(q))
		}
		for _, r := range strings.TrimSuffix(q, "…") {
			if r < 0x20 || r > 0x7e {
				t.Fatalf("quote(%q) = %q holds %q", body, q, r)
			}
		}
	})
}
