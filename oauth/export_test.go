package oauth

import "time"

// SetStreamMaxAge makes event streams last d instead of StreamMaxAge, for a test; it returns the
// restore.
func SetStreamMaxAge(d time.Duration) (restore func()) {
	streamMaxAgeOverride.Store(int64(d))
	return func() { streamMaxAgeOverride.Store(0) }
}
