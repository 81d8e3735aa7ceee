//go:build race

package revocation

// raceDetector is true under the race detector, which makes SQLite (compiled Go) ten times
// slower: the large tests use fewer records then.
const raceDetector = true
