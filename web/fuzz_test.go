package web

import "testing"

// FuzzSafeNext: whatever "next" the login form carries, the browser that follows the redirect
// after login stays on this server's origin. The oracle is a model of how a browser resolves
// the Location header (browserOrigin), not a repeat of safeNext's checks.
func FuzzSafeNext(f *testing.F) {
	for _, tc := range nextCases {
		f.Add(tc)
	}
	f.Fuzz(func(t *testing.T, next string) {
		loc := loginRedirect(next)
		if got := browserOrigin(loc); got != asOrigin {
			t.Fatalf("next %q: Location %q takes the browser to %q", next, loc, got)
		}
	})
}
