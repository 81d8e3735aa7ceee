package revocation

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/token"
)

type cutoff struct {
	revokedAt int64 // Unix ns; tokens issued at or before it are revoked
	expiresAt int64
}

// State is the in-memory set of revocations. It is safe for concurrent use.
type State struct {
	mu      sync.RWMutex
	tokens  map[string]int64 // token id -> record expiry (Unix ns)
	grants  map[string]int64 // grant id -> record expiry
	clients map[string]cutoff
	// sessions are the ended sessions: session id -> record expiry (the session's own).
	sessions map[string]int64
	// statuses are the revoked status list entries: list id -> index -> record expiry.
	statuses map[string]map[int64]int64
	// versions counts changes per list, so a published list is re-rendered only when it changed.
	versions map[string]uint64
	lastSeq  int64
}

// NewState returns an empty State.
func NewState() *State {
	return &State{tokens: make(map[string]int64), grants: make(map[string]int64), clients: make(map[string]cutoff),
		sessions: make(map[string]int64), statuses: make(map[string]map[int64]int64), versions: make(map[string]uint64)}
}

// IsRevoked reports whether the token with id jti, of grant grantID (empty if none), issued to
// clientID at issuedAt, is revoked.
func (s *State) IsRevoked(jti, grantID, clientID string, issuedAt time.Time) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, ok := s.tokens[jti]; ok {
		return true
	}
	if grantID != "" {
		if _, ok := s.grants[grantID]; ok {
			return true
		}
	}
	if c, ok := s.clients[clientID]; ok && issuedAt.UnixNano() <= c.revokedAt {
		return true
	}
	return false
}

// Apply adds revocations to the state. Records are merged as the store merges them.
func (s *State) Apply(revs ...rescind.Revocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range revs {
		exp := r.ExpiresAt.UnixNano()
		switch r.Kind {
		case rescind.RevokeToken:
			s.tokens[r.Key] = max(s.tokens[r.Key], exp)
		case rescind.RevokeGrant:
			s.grants[r.Key] = max(s.grants[r.Key], exp)
		case rescind.RevokeClient:
			c := s.clients[r.Key]
			s.clients[r.Key] = cutoff{revokedAt: max(c.revokedAt, r.RevokedAt.UnixNano()), expiresAt: max(c.expiresAt, exp)}
		case rescind.RevokeSession:
			s.sessions[r.Key] = max(s.sessions[r.Key], exp)
		}
		if r.StatusList != "" && r.StatusIdx >= 0 {
			m := s.statuses[r.StatusList]
			if m == nil {
				m = make(map[int64]int64)
				s.statuses[r.StatusList] = m
			}
			if _, had := m[r.StatusIdx]; !had {
				s.versions[r.StatusList]++
			}
			m[r.StatusIdx] = max(m[r.StatusIdx], exp)
		}
		s.lastSeq = max(s.lastSeq, r.Seq)
	}
}

// StatusList returns the revoked entries of list (indices below size) as a 1-bit status list,
// and the list's version, which changes whenever an entry is added.
func (s *State) StatusList(list string, size int64) ([]byte, uint64) {
	raw := make([]byte, size/8)
	s.mu.RLock()
	defer s.mu.RUnlock()
	for idx := range s.statuses[list] {
		if idx < size {
			token.SetStatus(raw, idx)
		}
	}
	return raw, s.versions[list]
}

// StatusVersion returns the version of list.
func (s *State) StatusVersion(list string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.versions[list]
}

// Prune drops records that expired before now and returns how many it dropped.
func (s *State) Prune(now time.Time) int {
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, exp := range s.tokens {
		if exp < t {
			delete(s.tokens, k)
			n++
		}
	}
	for k, exp := range s.grants {
		if exp < t {
			delete(s.grants, k)
			n++
		}
	}
	for list, m := range s.statuses {
		for idx, exp := range m {
			if exp < t {
				delete(m, idx)
				n++
			}
		}
		if len(m) == 0 {
			delete(s.statuses, list)
		}
	}
	for k, c := range s.clients {
		if c.expiresAt < t {
			delete(s.clients, k)
			n++
		}
	}
	for k, exp := range s.sessions {
		if exp < t {
			delete(s.sessions, k)
			n++
		}
	}
	return n
}

// SessionEnded reports whether the session with the given id was ended (its record is held
// until the session's own expiry, past which the session is dead by itself).
func (s *State) SessionEnded(id string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.sessions[id]
	return ok
}

// GrantRevoked reports whether the grant is revoked.
func (s *State) GrantRevoked(grantID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, ok := s.grants[grantID]
	return ok
}

// Len returns the number of records held.
func (s *State) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tokens) + len(s.grants) + len(s.clients) + len(s.sessions)
}

// Load reads every record newer than the last one seen from the store and applies it; called at
// start it loads the whole state. If fn is not nil it is called with each record applied. It
// returns how many records it applied.
func (s *State) Load(ctx context.Context, store rescind.Store, now time.Time, fn func(rescind.Revocation)) (int, error) {
	const page = 10000
	total := 0
	for {
		s.mu.RLock()
		after := s.lastSeq
		s.mu.RUnlock()
		revs, err := store.RevocationsSince(ctx, after, now, page)
		if err != nil {
			return total, fmt.Errorf("revocation: loading state: %w", err)
		}
		s.Apply(revs...)
		if fn != nil {
			for _, r := range revs {
				fn(r)
			}
		}
		total += len(revs)
		if len(revs) < page {
			return total, nil
		}
	}
}
