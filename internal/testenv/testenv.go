// Package testenv decides what a test does when a service it needs (PostgreSQL, a browser,
// curl...) is missing: skip, or fail when RESCIND_TEST_REQUIRE names the service, as CI sets it.
package testenv

import (
	"os"
	"strings"
	"testing"
)

// Required reports whether RESCIND_TEST_REQUIRE (a comma-separated list) names service.
func Required(service string) bool {
	for _, s := range strings.Split(os.Getenv("RESCIND_TEST_REQUIRE"), ",") {
		if strings.TrimSpace(s) == service {
			return true
		}
	}
	return false
}

// Unavailable skips the test because service is unavailable (why says how), or fails it if
// RESCIND_TEST_REQUIRE names the service.
func Unavailable(tb testing.TB, service, why string) {
	tb.Helper()
	if Required(service) {
		tb.Fatalf("%s is required (RESCIND_TEST_REQUIRE) but unavailable: %s", service, why)
	}
	tb.Skipf("skipping: %s (set RESCIND_TEST_REQUIRE=%s to make this a failure)", why, service)
}
