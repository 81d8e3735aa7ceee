// Package statuslist allocates Token Status List entries (draft-ietf-oauth-status-list) for
// the JWT access tokens an instance issues.
//
// Each instance allocates from its own lists, named by random ids, so instances never collide;
// a new list is started at every start and whenever the current one is a quarter full.
// Entries are drawn at random within the list, so the indices of two tokens say nothing about
// each other (§12.4 of the draft). A list's content is derived from the revocation records,
// which carry list and index, so any instance can publish any list.
package statuslist

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/rescind/rescind/internal/secret"
)

// Size is the number of entries of a list (1 bit each: 16 KiB before compression).
const Size = 1 << 17

// Allocator hands out list entries. It is safe for concurrent use.
type Allocator struct {
	mu      sync.Mutex
	current string
	used    map[uint32]struct{}
}

// Next returns a fresh entry: the list id and the index within it.
func (a *Allocator) Next() (string, int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.current == "" || len(a.used) >= Size/4 {
		id, err := secret.NewID()
		if err != nil {
			return "", 0, err
		}
		a.current, a.used = id, make(map[uint32]struct{})
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
