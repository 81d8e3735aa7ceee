// Package statuslist allocates Token Status List entries (draft-ietf-oauth-status-list) for
// the JWT access tokens an instance issues.
//
// Each instance allocates from its own lists, named by random ids, so instances never collide;
// a new list is started at every start, whenever the current one is a quarter full and once it
// is MaxAge old. Entries are drawn at random within the list, so the indices of two tokens say
// nothing about each other (§12.4 of the draft). A list's content is derived from the revocation
// records, which carry list and index, so any instance can publish any list.
//
// A list is recorded in the store before any token refers to it, so every instance can tell a
// list that exists from a made-up id (and publishes only the former); the record lives until
// every token that can refer to the list has expired.
package statuslist

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
)

// Size is the number of entries of a list (1 bit each: 16 KiB before compression).
const Size = 1 << 17

// Recorder records the lists an Allocator starts. rescind.Store implements it.
type Recorder interface {
	CreateStatusList(ctx context.Context, l rescind.StatusList) error
}

// Allocator hands out list entries. It is safe for concurrent use. The zero value allocates
// without recording its lists (for tests).
type Allocator struct {
	// Recorder, if set, records each list before its first entry is handed out.
	Recorder Recorder
	// MaxAge is how long one list is allocated from. If zero, 24 hours.
	MaxAge time.Duration
	// MaxTokenTTL is the longest lifetime of a token that refers to a list: its record lives
	// MaxAge + MaxTokenTTL + an hour. If zero, 30 days.
	MaxTokenTTL time.Duration
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time

	mu      sync.Mutex
	current string
	started time.Time
	used    map[uint32]struct{}
}

// Next returns a fresh entry: the list id and the index within it. Starting a new list records
// it first; if that fails, Next returns the error and hands out nothing.
func (a *Allocator) Next(ctx context.Context) (string, int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	maxAge := a.MaxAge
	if maxAge <= 0 {
		maxAge = 24 * time.Hour
	}
	if a.current == "" || len(a.used) >= Size/4 || now.Sub(a.started) >= maxAge || now.Before(a.started) {
		id, err := secret.NewID()
		if err != nil {
			return "", 0, err
		}
		if a.Recorder != nil {
			ttl := a.MaxTokenTTL
			if ttl <= 0 {
				ttl = 30 * 24 * time.Hour
			}
			l := rescind.StatusList{ID: id, CreatedAt: now, ExpiresAt: now.Add(maxAge + ttl + time.Hour)}
			if err := a.Recorder.CreateStatusList(ctx, l); err != nil {
				return "", 0, fmt.Errorf("statuslist: recording list: %w", err)
			}
		}
		a.current, a.started, a.used = id, now, make(map[uint32]struct{})
	}
	var b [4]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return "", 0, fmt.Errorf("statuslist: reading random bytes: %w", err)
		}
		idx := binary.BigEndian.Uint32(b[:]) % Size
		if _, taken := a.used[idx]; !taken {
			a.used[idx] = struct{}{}
			return a.current, int64(idx), nil
		}
	}
}

// ValidID reports whether id has the form of a list id (26 lowercase base32 characters).
func ValidID(id string) bool {
	if len(id) != 26 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}
