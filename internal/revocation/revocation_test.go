package revocation

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/sqlite"
)

// fakeStore records Revoke batches and can be told to fail or block; other methods are unused.
type fakeStore struct {
	rescind.Store
	mu      sync.Mutex
	batches [][]rescind.Revocation
	fail    error
	gate    chan struct{}
	entered chan struct{}
	records []rescind.Revocation
}

func (f *fakeStore) Revoke(_ context.Context, revs []rescind.Revocation) error {
	if f.entered != nil {
		select {
		case f.entered <- struct{}{}:
		default:
		}
	}
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.batches = append(f.batches, revs)
	for _, r := range revs {
		r.Seq = int64(len(f.records) + 1)
		f.records = append(f.records, r)
	}
	return nil
}

func (f *fakeStore) RevocationsSince(_ context.Context, after int64, now time.Time, limit int) ([]rescind.Revocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []rescind.Revocation
	for _, r := range f.records {
		if r.Seq > after && !r.ExpiresAt.Before(now) && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

var t0 = time.Now().Add(time.Hour)

func TestStateTokenAndClientCutoff(t *testing.T) {
	s := NewState()
	if s.IsRevoked("a", "", "c", t0) {
		t.Fatal("empty state revokes")
	}
	s.Apply(rescind.Revocation{Kind: rescind.RevokeToken, Key: "a", ExpiresAt: t0.Add(time.Hour)})
	if !s.IsRevoked("a", "", "c", t0) || s.IsRevoked("b", "", "c", t0) {
		t.Fatal("token revocation not exact")
	}
	s.Apply(rescind.Revocation{Kind: rescind.RevokeClient, Key: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	if !s.IsRevoked("b", "", "c", t0) || !s.IsRevoked("b", "", "c", t0.Add(-time.Second)) {
		t.Fatal("client cut-off does not revoke tokens issued at or before it")
	}
	if s.IsRevoked("b", "", "c", t0.Add(time.Nanosecond)) {
		t.Fatal("client cut-off revokes a token issued after it")
	}
	if s.IsRevoked("b", "", "other", t0) {
		t.Fatal("client cut-off leaks to another client")
	}
	if got := s.Prune(t0.Add(time.Hour)); got != 0 || s.Len() != 2 {
		t.Fatalf("Prune at expiry dropped %d, len %d; want 0, 2", got, s.Len())
	}
	if got := s.Prune(t0.Add(time.Hour + time.Nanosecond)); got != 2 || s.Len() != 0 {
		t.Fatalf("Prune after expiry dropped %d, len %d; want 2, 0", got, s.Len())
	}
}

// TestStateSessions: an ended session is refused until its record's expiry (the session's
// own), merging keeps the later expiry, and it touches nothing but that session.
func TestStateSessions(t *testing.T) {
	s := NewState()
	end := func(id string, exp time.Time) {
		s.Apply(rescind.Revocation{Kind: rescind.RevokeSession, Key: id, Subject: "u1", RevokedAt: t0, ExpiresAt: exp})
	}
	end("s1", t0.Add(time.Hour))
	end("s1", t0.Add(time.Minute)) // ending again cannot shorten it
	if !s.SessionEnded("s1") || s.SessionEnded("s2") || s.IsRevoked("s1", "s1", "", t0) || s.GrantRevoked("s1") {
		t.Fatal("session record not exact")
	}
	if s.Prune(t0.Add(time.Hour)); !s.SessionEnded("s1") || s.Len() != 1 {
		t.Fatal("pruned at the session's expiry")
	}
	if got := s.Prune(t0.Add(time.Hour + time.Nanosecond)); got != 1 || s.SessionEnded("s1") || s.Len() != 0 {
		t.Fatalf("Prune after the session's expiry dropped %d", got)
	}
}

func TestCommitterGroupsConcurrentRevocations(t *testing.T) {
	fs := &fakeStore{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	st := NewState()
	c := NewCommitter(fs, st, nil)
	defer c.Close()

	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	revoke := func(i int) {
		defer wg.Done()
		errs[i] = c.Revoke(context.Background(), rescind.Revocation{Kind: rescind.RevokeToken, Key: fmt.Sprint(i), ExpiresAt: t0})
	}
	// The first commit is held in the store while the other 49 queue up behind it.
	wg.Add(1)
	go revoke(0)
	<-fs.entered
	for i := 1; i < n; i++ {
		wg.Add(1)
		go revoke(i)
	}
	for deadline := time.Now().Add(10 * time.Second); len(c.reqs) < n-1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d revocations queued behind the held commit in 10 s", len(c.reqs), n-1)
		}
	}
	close(fs.gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Revoke %d: %v", i, err)
		}
		if !st.IsRevoked(fmt.Sprint(i), "", "", t0) {
			t.Fatalf("token %d acknowledged but not in state", i)
		}
	}
	if len(fs.batches) != 2 || len(fs.batches[1]) != n-1 {
		t.Fatalf("%d commits for %d concurrent revocations; want 2 (one held, one group of %d)", len(fs.batches), n, n-1)
	}
}

func TestCommitterFailureIsNotApplied(t *testing.T) {
	fs := &fakeStore{fail: errors.New("disk full")}
	st := NewState()
	c := NewCommitter(fs, st, nil)
	defer c.Close()
	err := c.Revoke(context.Background(), rescind.Revocation{Kind: rescind.RevokeToken, Key: "x", ExpiresAt: t0})
	if err == nil {
		t.Fatal("Revoke succeeded although the store failed")
	}
	if st.IsRevoked("x", "", "", t0) {
		t.Fatal("a revocation that was not committed was applied")
	}
	c.Close()
	if err := c.Revoke(context.Background(), rescind.Revocation{Kind: rescind.RevokeToken, Key: "y"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Revoke after Close = %v, want ErrClosed", err)
	}
}

func TestLoad(t *testing.T) {
	fs := &fakeStore{}
	for i := range 3 {
		fs.Revoke(context.Background(), []rescind.Revocation{{Kind: rescind.RevokeToken, Key: fmt.Sprint(i), ExpiresAt: t0.Add(time.Hour)}})
	}
	st := NewState()
	n, err := st.Load(context.Background(), fs, t0, nil)
	if err != nil || n != 3 || !st.IsRevoked("2", "", "", t0) {
		t.Fatalf("Load = %d, %v", n, err)
	}
	fs.Revoke(context.Background(), []rescind.Revocation{{Kind: rescind.RevokeToken, Key: "new", ExpiresAt: t0.Add(time.Hour)}})
	if n, _ := st.Load(context.Background(), fs, t0, nil); n != 1 || !st.IsRevoked("new", "", "", t0) {
		t.Fatalf("incremental Load applied %d; want 1", n)
	}
}

func BenchmarkIsRevoked(b *testing.B) {
	s := NewState()
	for i := range 100000 {
		s.Apply(rescind.Revocation{Kind: rescind.RevokeToken, Key: fmt.Sprintf("token-%022d", i), ExpiresAt: t0})
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s.IsRevoked("token-not-revoked-xxxxxx", "", "client", t0)
		}
	})
}

// BenchmarkGroupCommit measures durable revocations on SQLite (synchronous=FULL) with 32
// concurrent callers: group commit shares each fsync among the callers queued behind it.
func BenchmarkGroupCommit(b *testing.B) {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	c := NewCommitter(st, NewState(), nil)
	defer c.Close()
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := c.Revoke(context.Background(), rescind.Revocation{Kind: rescind.RevokeToken, Key: fmt.Sprint("t", i),
				ClientID: "c", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
