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

// statusEntries are the revoked entries of one status list: index -> record expiry (Unix ns),
// and the list's version, which counts the entries added so a published list is re-rendered
// only when it changed.
type statusEntries struct {
	idx     map[int64]int64
	version uint64
}

// State is the in-memory set of revocations. It is safe for concurrent use.
//
// It is compact, so that an instance can hold millions of records: a token id or grant id in
// the form the server makes them (16 random bytes, as unpadded base64url or lowercase base32)
// is held as those 16 bytes (ids.go), not as a string; any other key (written by hand, or by a
// future format) is held as its string. A status list's id is held once per list.
type State struct {
	mu     sync.RWMutex
	tokens map[id16]int64 // token id -> record expiry (Unix ns)
	grants map[id16]int64 // grant id -> record expiry
	// otherTokens and otherGrants hold the keys that are not in the server's id forms.
	otherTokens map[string]int64
	otherGrants map[string]int64
	clients     map[string]cutoff
	// sessions are the ended sessions: session id -> record expiry (the session's own).
	sessions map[string]int64
	statuses map[string]*statusEntries
	lastSeq  int64
}

// NewState returns an empty State.
func NewState() *State {
	return &State{tokens: make(map[id16]int64), grants: make(map[id16]int64), otherTokens: make(map[string]int64),
		otherGrants: make(map[string]int64), clients: make(map[string]cutoff),
		sessions: make(map[string]int64), statuses: make(map[string]*statusEntries)}
}

// IsRevoked reports whether the token with id jti, of grant grantID (empty if none), issued to
// clientID at issuedAt, is revoked. A caller that checks a token more than once parses it once
// with NewTokenRef and asks Revoked.
func (s *State) IsRevoked(jti, grantID, clientID string, issuedAt time.Time) bool {
	tk, tokOK := parseTokenID(jti)
	var gk id16
	grantOK := false
	if grantID != "" {
		gk, grantOK = parseGrantID(grantID)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if tokOK {
		if _, ok := s.tokens[tk]; ok {
			return true
		}
	} else if _, ok := s.otherTokens[jti]; ok {
		return true
	}
	if grantOK {
		if _, ok := s.grants[gk]; ok {
			return true
		}
	} else if grantID != "" {
		if _, ok := s.otherGrants[grantID]; ok {
			return true
		}
	}
	if c, ok := s.clients[clientID]; ok && issuedAt.UnixNano() <= c.revokedAt {
		return true
	}
	return false
}

// ClientCutoff returns the cut-off of client clientID, if it has one: every token of the client
// issued at or before it is revoked (revoke-all --client, or the client's deletion).
func (s *State) ClientCutoff(clientID string) (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.clients[clientID]
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(0, c.revokedAt), true
}

// TokenRef is an access token as State looks it up, its ids parsed once (NewTokenRef): a check
// then costs map lookups only.
type TokenRef struct {
	jti, grant       id16
	jtiOK, grantOK   bool   // jti and grant hold the ids
	jtiText, grantID string // the ids that are not in the server's forms ("": none)
	clientID         string
	issuedAt         int64
}

// NewTokenRef parses the ids of the token with id jti, of grant grantID (empty if none), issued
// to clientID at issuedAt.
func NewTokenRef(jti, grantID, clientID string, issuedAt time.Time) TokenRef {
	r := TokenRef{clientID: clientID, issuedAt: issuedAt.UnixNano()}
	if r.jti, r.jtiOK = parseTokenID(jti); !r.jtiOK {
		r.jtiText = jti
	}
	if grantID != "" {
		if r.grant, r.grantOK = parseGrantID(grantID); !r.grantOK {
			r.grantID = grantID
		}
	}
	return r
}

// NewTokenRefID is NewTokenRef for a token whose id is at hand as its 16 bytes (an opaque token's).
func NewTokenRefID(jti [16]byte, grantID, clientID string, issuedAt time.Time) TokenRef {
	r := NewTokenRef("", grantID, clientID, issuedAt)
	r.jti, r.jtiOK, r.jtiText = jti, true, ""
	return r
}

// Revoked reports whether the token r is revoked.
func (s *State) Revoked(r *TokenRef) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if r.jtiOK {
		if _, ok := s.tokens[r.jti]; ok {
			return true
		}
	} else if _, ok := s.otherTokens[r.jtiText]; ok {
		return true
	}
	if r.grantOK {
		if _, ok := s.grants[r.grant]; ok {
			return true
		}
	} else if r.grantID != "" {
		if _, ok := s.otherGrants[r.grantID]; ok {
			return true
		}
	}
	if c, ok := s.clients[r.clientID]; ok && r.issuedAt <= c.revokedAt {
		return true
	}
	return false
}

// Apply adds revocations to the state. Records are merged as the store merges them.
func (s *State) Apply(revs ...rescind.Revocation) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range revs {
		s.apply(r.Seq, r.Kind, r.Key, r.RevokedAt.UnixNano(), r.ExpiresAt.UnixNano(), r.StatusList, r.StatusIdx)
	}
}

// apply adds one record; s.mu is held.
func (s *State) apply(seq int64, kind rescind.RevocationKind, key string, revokedAt, exp int64, list string, idx int64) {
	switch kind {
	case rescind.RevokeToken:
		if k, ok := parseTokenID(key); ok {
			s.tokens[k] = max(s.tokens[k], exp)
		} else {
			s.otherTokens[key] = max(s.otherTokens[key], exp)
		}
	case rescind.RevokeGrant:
		if k, ok := parseGrantID(key); ok {
			s.grants[k] = max(s.grants[k], exp)
		} else {
			s.otherGrants[key] = max(s.otherGrants[key], exp)
		}
	case rescind.RevokeClient:
		c := s.clients[key]
		s.clients[key] = cutoff{revokedAt: max(c.revokedAt, revokedAt), expiresAt: max(c.expiresAt, exp)}
	case rescind.RevokeSession:
		s.sessions[key] = max(s.sessions[key], exp)
	}
	if list != "" && idx >= 0 {
		l := s.statuses[list]
		if l == nil {
			l = &statusEntries{}
			s.statuses[list] = l
		}
		if l.idx == nil {
			l.idx = make(map[int64]int64)
		}
		old, had := l.idx[idx]
		if !had {
			l.version++
		}
		l.idx[idx] = max(old, exp)
	}
	s.lastSeq = max(s.lastSeq, seq)
}

// StatusList returns the revoked entries of list (indices below size) as a 1-bit status list,
// and the list's version, which changes whenever an entry is added.
func (s *State) StatusList(list string, size int64) ([]byte, uint64) {
	raw := make([]byte, size/8)
	s.mu.RLock()
	defer s.mu.RUnlock()
	l := s.statuses[list]
	if l == nil {
		return raw, 0
	}
	for idx := range l.idx {
		if idx < size {
			token.SetStatus(raw, idx)
		}
	}
	return raw, l.version
}

// StatusVersion returns the version of list.
func (s *State) StatusVersion(list string) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l := s.statuses[list]; l != nil {
		return l.version
	}
	return 0
}

// Prune drops records that expired before now and returns how many it dropped. A map that
// lost most of its entries is rebuilt, so that the memory of a mass revocation is given back
// once its records expire (a Go map does not shrink).
func (s *State) Prune(now time.Time) int {
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	var n, d int
	s.tokens, d = pruneMap(s.tokens, t)
	n += d
	s.grants, d = pruneMap(s.grants, t)
	n += d
	s.otherTokens, d = pruneMap(s.otherTokens, t)
	n += d
	s.otherGrants, d = pruneMap(s.otherGrants, t)
	n += d
	for _, l := range s.statuses {
		l.idx, d = pruneMap(l.idx, t)
		n += d
		// A list without entries keeps its version (were it to start again from zero, a
		// rendering of that version made before could be served again), not its map.
		if len(l.idx) == 0 {
			l.idx = nil
		}
	}
	for k, c := range s.clients {
		if c.expiresAt < t {
			delete(s.clients, k)
			n++
		}
	}
	s.sessions, d = pruneMap(s.sessions, t)
	n += d
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

// pruneMap deletes the entries of m whose expiry is before t, and returns m (or, if it lost
// most of its entries, a copy of what is left, which takes less memory) and how many it deleted.
func pruneMap[K comparable](m map[K]int64, t int64) (map[K]int64, int) {
	n := 0
	for k, exp := range m {
		if exp < t {
			delete(m, k)
			n++
		}
	}
	if n >= 4096 && n > 3*len(m) {
		small := make(map[K]int64, len(m))
		for k, v := range m {
			small[k] = v
		}
		return small, n
	}
	return m, n
}

// GrantRevoked reports whether the grant is revoked.
func (s *State) GrantRevoked(grantID string) bool {
	k, ok := parseGrantID(grantID)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if ok {
		_, revoked := s.grants[k]
		return revoked
	}
	_, revoked := s.otherGrants[grantID]
	return revoked
}

// Len returns the number of records held.
func (s *State) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tokens) + len(s.grants) + len(s.otherTokens) + len(s.otherGrants) + len(s.clients) + len(s.sessions)
}

// Load reads every record newer than the last one seen from the store and applies it; called at
// start it loads the whole state (Preload does that faster). If fn is not nil it is called with
// each record applied. It returns how many records it applied.
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
