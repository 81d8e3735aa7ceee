package revocation

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rescind/rescind"
)

// preloadBatch is how many records a loader decodes before it takes the lock to apply them.
const preloadBatch = 2048

// preloadMinSpan is the smallest Seq range a loader reads in one query (a variable for tests,
// which make it small to have loaders run at once on a small store).
var preloadMinSpan int64 = 1 << 16

// loaded is one record as a loader decodes it, before it is applied: nothing in it refers to
// the store's buffers.
type loaded struct {
	seq                  int64
	kind                 rescind.RevocationKind
	id                   id16
	compact              bool   // the key is id
	key                  string // the key otherwise (a client id, a hand-written key)
	revokedAt, expiresAt int64
	list                 string // interned per loader
	idx                  int64
}

// Preload loads every record in force at now into the state, as Load does, but faster: the
// store is read in Seq ranges by one loader per CPU at once (Store.ScanRevocations), each record
// decoded without allocating (ids as 16 bytes, status list ids shared) and applied in batches.
// Records merge as Apply merges them, in any order, so the result is the state Load builds.
// Anything written while it runs is read by the Load that ends it. It returns the number of
// records applied.
func (s *State) Preload(ctx context.Context, store rescind.Store, now time.Time) (int, error) {
	last, err := store.LastRevocationSeq(ctx)
	if err != nil {
		return 0, fmt.Errorf("revocation: loading state: %w", err)
	}
	s.mu.Lock()
	after := s.lastSeq
	if len(s.tokens) == 0 && last > after {
		// Sized once for what is stored (expired records included): no rehashing while loading.
		if n, err := store.CountRevocations(ctx); err == nil && n > 0 {
			s.tokens = make(map[id16]int64, n)
		}
	}
	s.mu.Unlock()

	loaders := runtime.GOMAXPROCS(0)
	span := max((last-after)/int64(8*loaders), preloadMinSpan)
	var next atomic.Int64
	next.Store(after)
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, loaders)
	for range loaders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.preloadRanges(ctx, store, now, &next, span, last)
			total.Add(int64(n))
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return int(total.Load()), fmt.Errorf("revocation: loading state: %w", err)
	}
	s.mu.Lock()
	s.lastSeq = max(s.lastSeq, last)
	s.mu.Unlock()
	// What was committed while the ranges were read.
	n, err := s.Load(ctx, store, now, nil)
	return int(total.Load()) + n, err
}

// preloadRanges reads the ranges (lo, lo+span] it claims from next until last, and applies
// their records in batches.
func (s *State) preloadRanges(ctx context.Context, store rescind.Store, now time.Time, next *atomic.Int64, span, last int64) (int, error) {
	batch := make([]loaded, 0, preloadBatch)
	lists := map[string]string{}
	total := 0
	flush := func() {
		s.applyLoaded(batch)
		total += len(batch)
		batch = batch[:0]
	}
	for {
		hi := next.Add(span)
		lo := hi - span
		if lo >= last {
			break
		}
		err := store.ScanRevocations(ctx, lo, min(hi, last), now, func(e *rescind.RevocationEntry) error {
			l := loaded{seq: e.Seq, kind: e.Kind, revokedAt: e.RevokedAt, expiresAt: e.ExpiresAt, idx: e.StatusIdx}
			switch e.Kind {
			case rescind.RevokeToken:
				l.id, l.compact = parseTokenID(e.Key)
			case rescind.RevokeGrant:
				l.id, l.compact = parseGrantID(e.Key)
			}
			if !l.compact && (e.Kind == rescind.RevokeToken || e.Kind == rescind.RevokeGrant || e.Kind == rescind.RevokeClient || e.Kind == rescind.RevokeSession) {
				l.key = string(e.Key)
			}
			if len(e.StatusList) > 0 {
				name, ok := lists[string(e.StatusList)]
				if !ok {
					name = string(e.StatusList)
					lists[name] = name
				}
				l.list = name
			}
			batch = append(batch, l)
			if len(batch) == cap(batch) {
				flush()
			}
			return nil
		})
		if err != nil {
			return total, err
		}
	}
	flush()
	return total, nil
}

// applyLoaded applies a batch of decoded records under one lock.
func (s *State) applyLoaded(batch []loaded) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range batch {
		l := &batch[i]
		if l.compact {
			m := s.tokens
			if l.kind == rescind.RevokeGrant {
				m = s.grants
			}
			// One lookup for a key not held yet (the store holds each kind and key once).
			if old, ok := m[l.id]; !ok || old < l.expiresAt {
				m[l.id] = l.expiresAt
			}
			if l.list != "" {
				s.apply(l.seq, "", "", 0, l.expiresAt, l.list, l.idx) // the status entry
			}
			s.lastSeq = max(s.lastSeq, l.seq)
			continue
		}
		s.apply(l.seq, l.kind, l.key, l.revokedAt, l.expiresAt, l.list, l.idx)
	}
}
