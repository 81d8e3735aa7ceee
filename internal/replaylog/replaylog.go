// Package replaylog is a DPoP replay cache (RFC 9449 §11.1) for a single server instance that
// survives restarts and crashes: the proofs it has seen are held in memory and appended to a
// file, from which the next start reloads those still within their window. Without it, a proof
// accepted just before a restart could be accepted again just after.
//
// Every accepted proof is written (one write(2) of 40 bytes) before Add returns, so a process
// crash loses nothing: the kernel holds the data. The file is synced when it is rotated and on
// Close; a power loss can lose the entries written since then, which matters only if the
// machine is back within the proofs' window (a minute).
//
// The log has two segments, so it never grows past what two windows of proofs take: new entries
// go to the current one; once every entry of the previous one has expired, the previous one is
// deleted and the current one takes its place.
package replaylog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/rescind/rescind/dpop"
)

// Names of the two segments in the directory.
const (
	currentName  = "dpop-replay.log"
	previousName = "dpop-replay.old"
	recordLen    = 32 + 8 // key, expiry (Unix ns, big-endian)
)

// Cache is a dpop.ReplayCache backed by a log in a directory. It is safe for concurrent use.
// Only one process may use a directory at a time (the server's data directory is locked).
type Cache struct {
	mem  dpop.MemoryCache
	now  func() time.Time
	dir  string
	mu   sync.Mutex
	cur  *os.File
	curN int   // records in cur
	curM int64 // latest expiry in cur (Unix ns)
	oldM int64 // latest expiry in the previous segment
	err  error // a write failure: the cache then refuses every proof
}

var _ dpop.ReplayCache = (*Cache)(nil)

// Open opens the log in dir (creating it if needed) and loads the entries that have not expired
// at now(). now is the clock (if nil, time.Now); maxEntries bounds the entries held (if zero,
// 1,000,000), as dpop.MemoryCache does.
func Open(dir string, now func() time.Time, maxEntries int) (*Cache, error) {
	if now == nil {
		now = time.Now
	}
	c := &Cache{now: now, dir: dir, mem: dpop.MemoryCache{Now: now, MaxEntries: maxEntries}}
	t := now().UnixNano()
	for _, name := range []string{previousName, currentName} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("replaylog: %w", err)
		}
		latest := c.load(b, t)
		if name == previousName {
			c.oldM = latest
		} else {
			c.curM, c.curN = latest, len(b)/recordLen
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, currentName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("replaylog: %w", err)
	}
	// A crash in the middle of a write leaves a partial record: cut it, so the next ones align.
	if err := f.Truncate(int64(c.curN * recordLen)); err != nil {
		f.Close()
		return nil, fmt.Errorf("replaylog: %w", err)
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		f.Close()
		return nil, fmt.Errorf("replaylog: %w", err)
	}
	c.cur = f
	return c, nil
}

// load puts the records of b that live past t into memory and returns the latest expiry of all.
func (c *Cache) load(b []byte, t int64) int64 {
	var latest int64
	for ; len(b) >= recordLen; b = b[recordLen:] {
		var key [32]byte
		copy(key[:], b)
		exp := int64(binary.BigEndian.Uint64(b[32:recordLen]))
		latest = max(latest, exp)
		if exp >= t {
			c.mem.Add(context.Background(), key, time.Unix(0, exp))
		}
	}
	return latest
}

// Add implements dpop.ReplayCache: a fresh key is logged before Add reports it fresh.
func (c *Cache) Add(ctx context.Context, key [32]byte, expires time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return false, c.err
	}
	fresh, err := c.mem.Add(ctx, key, expires)
	if err != nil || !fresh {
		return fresh, err
	}
	if err := c.rotate(); err != nil {
		c.err = err
		return false, err
	}
	var rec [recordLen]byte
	copy(rec[:], key[:])
	binary.BigEndian.PutUint64(rec[32:], uint64(expires.UnixNano()))
	if _, err := c.cur.Write(rec[:]); err != nil {
		// The log may now hold part of a record: refuse everything from here on rather than
		// accept a proof the next start would not know of.
		c.err = fmt.Errorf("replaylog: writing: %w", err)
		return false, c.err
	}
	c.curN++
	c.curM = max(c.curM, expires.UnixNano())
	return true, nil
}

// rotate makes the current segment the previous one once every entry of the previous one has
// expired, so the log holds at most two windows of proofs.
func (c *Cache) rotate() error {
	if c.curN == 0 || c.now().UnixNano() <= c.oldM {
		return nil
	}
	if err := c.cur.Sync(); err != nil {
		return fmt.Errorf("replaylog: syncing: %w", err)
	}
	if err := os.Rename(filepath.Join(c.dir, currentName), filepath.Join(c.dir, previousName)); err != nil {
		return fmt.Errorf("replaylog: rotating: %w", err)
	}
	c.cur.Close()
	f, err := os.OpenFile(filepath.Join(c.dir, currentName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("replaylog: rotating: %w", err)
	}
	syncDir(c.dir)
	c.cur, c.oldM, c.curN, c.curM = f, c.curM, 0, 0
	return nil
}

// Close syncs and closes the log.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return nil
	}
	err := c.cur.Sync()
	if cerr := c.cur.Close(); err == nil {
		err = cerr
	}
	c.cur = nil
	if c.err == nil {
		c.err = errors.New("replaylog: closed")
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
