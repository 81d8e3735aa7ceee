package replaylog

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, dir string, c *clock) *Cache {
	t.Helper()
	rc, err := Open(dir, c.now, 0)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func add(t *testing.T, rc *Cache, key byte, exp time.Time) bool {
	t.Helper()
	fresh, err := rc.Add(context.Background(), [32]byte{key}, exp)
	if err != nil {
		t.Fatal(err)
	}
	return fresh
}

func records(dir, name string) int {
	b, _ := os.ReadFile(filepath.Join(dir, name))
	return len(b) / recordLen
}

// TestReplayAcrossRestart: a proof seen before a restart, clean or a crash (the first cache is
// never closed), is a replay after it, until its expiry.
func TestReplayAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	exp := c.now().Add(time.Minute)
	first := open(t, dir, c)
	if !add(t, first, 1, exp) || add(t, first, 1, exp) {
		t.Fatal("first use not fresh, or second use fresh")
	}
	crashed := open(t, dir, c) // the first is still open: as after a kill -9
	if add(t, crashed, 1, exp) {
		t.Fatal("a proof seen before the crash was accepted after it")
	}
	if !add(t, crashed, 2, exp) {
		t.Fatal("a new proof refused after the restart")
	}
	if err := crashed.Close(); err != nil {
		t.Fatal(err)
	}
	c.advance(30 * time.Second)
	again := open(t, dir, c)
	for _, k := range []byte{1, 2} {
		if add(t, again, k, exp) {
			t.Fatalf("proof %d accepted again after a clean restart", k)
		}
	}
	again.Close()
	// Past their expiry they are forgotten (the verifier refuses them for their iat anyway).
	c.advance(31 * time.Second)
	later := open(t, dir, c)
	defer later.Close()
	if !add(t, later, 1, c.now().Add(time.Minute)) {
		t.Fatal("an expired entry was loaded")
	}
}

// TestPartialRecord: a crash in the middle of a write leaves a partial record; the next start
// drops it and appends whole records after the last whole one.
func TestPartialRecord(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	exp := c.now().Add(time.Minute)
	rc := open(t, dir, c)
	add(t, rc, 1, exp)
	rc.Close()
	f, _ := os.OpenFile(filepath.Join(dir, currentName), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{9, 9, 9, 9, 9, 9, 9})
	f.Close()
	rc = open(t, dir, c)
	if add(t, rc, 1, exp) || !add(t, rc, 2, exp) {
		t.Fatal("after a partial record: the whole one forgotten, or a new one refused")
	}
	rc.Close()
	rc = open(t, dir, c)
	defer rc.Close()
	if add(t, rc, 2, exp) {
		t.Fatal("the record written after a partial one was misread")
	}
}

// TestRotationBoundsTheLog: the log holds at most two windows of proofs, and rotating loses no
// live entry.
func TestRotationBoundsTheLog(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	rc := open(t, dir, c)
	var key byte
	for round := range 10 {
		for range 5 {
			key++
			if !add(t, rc, key, c.now().Add(time.Minute)) {
				t.Fatalf("round %d: new key %d refused", round, key)
			}
		}
		if n := records(dir, currentName) + records(dir, previousName); n > 10+1 {
			t.Fatalf("round %d: %d records kept, for 5 live and 5 expiring per minute", round, n)
		}
		// The last round's keys are all still live: a restart now must know every one.
		rc.Close()
		rc = open(t, dir, c)
		for k := key - 4; k <= key; k++ {
			if add(t, rc, k, c.now().Add(time.Minute)) {
				t.Fatalf("round %d: key %d forgotten across rotation and restart", round, k)
			}
		}
		c.advance(61 * time.Second)
	}
	rc.Close()
}

// TestFailsClosed: once the log cannot be written, no proof is accepted.
func TestFailsClosed(t *testing.T) {
	dir := t.TempDir()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	rc := open(t, dir, c)
	rc.cur.Close() // the next write fails
	if fresh, err := rc.Add(context.Background(), [32]byte{1}, c.now().Add(time.Minute)); fresh || err == nil {
		t.Fatalf("Add with a broken log = %v, %v; want an error", fresh, err)
	}
	if fresh, err := rc.Add(context.Background(), [32]byte{2}, c.now().Add(time.Minute)); fresh || err == nil {
		t.Fatalf("Add after a failed write = %v, %v; want an error", fresh, err)
	}
}
