package revocation

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/sqlite"
)

// gatedStore is a real store whose RevocationsSince, called with a context carrying gateKey,
// announces itself on entered and waits for release before reading: a subscription's catch-up
// held open while the test commits more records.
type gatedStore struct {
	rescind.Store
	entered, release chan struct{}
}

type gateKey struct{}

func (g *gatedStore) RevocationsSince(ctx context.Context, after int64, now time.Time, limit int) ([]rescind.Revocation, error) {
	if ctx.Value(gateKey{}) != nil {
		g.entered <- struct{}{}
		<-g.release
	}
	return g.Store.RevocationsSince(ctx, after, now, limit)
}

func openStore(t *testing.T) rescind.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// commit writes n token records named prefix-i and wakes the feed, as the committer does.
func commit(t *testing.T, st rescind.Store, f *Feed, prefix string, n int) {
	t.Helper()
	now := time.Now()
	var revs []rescind.Revocation
	for i := range n {
		revs = append(revs, rescind.Revocation{Kind: rescind.RevokeToken, Key: fmt.Sprintf("%s-%d", prefix, i), ClientID: "c",
			RevokedAt: now, ExpiresAt: now.Add(time.Hour)})
	}
	if err := st.Revoke(context.Background(), revs); err != nil {
		t.Fatal(err)
	}
	f.Notify()
}

// drain reads sub until it has delivered want records (or fails after a deadline), checking that
// they come in Seq order, each once.
func drain(t *testing.T, sub *Subscription, want int) []string {
	t.Helper()
	var keys []string
	var last int64
	deadline := time.Now().Add(10 * time.Second)
	for len(keys) < want {
		if time.Now().After(deadline) {
			t.Fatalf("delivered %d records, want %d: %v", len(keys), want, keys)
		}
		revs, err := sub.Next(context.Background(), 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range revs {
			if r.Seq <= last {
				t.Fatalf("record %s (seq %d) after seq %d: out of order or repeated", r.Key, r.Seq, last)
			}
			last = r.Seq
			keys = append(keys, r.Key)
		}
	}
	// Nothing more is delivered.
	if revs, err := sub.Next(context.Background(), 50*time.Millisecond); err != nil || len(revs) != 0 {
		t.Fatalf("extra records delivered: %v, %v", revs, err)
	}
	return keys
}

// TestFeedCatchUpBoundary: records committed while a subscription is catching up from the store
// (here: held inside its first read) are delivered exactly once, in order, whether the reader
// handed them out or the catch-up found them.
func TestFeedCatchUpBoundary(t *testing.T) {
	st := &gatedStore{Store: openStore(t), entered: make(chan struct{}), release: make(chan struct{})}
	f := NewFeed(FeedConfig{Store: st, Page: 4})
	defer f.Close()
	commit(t, st, f, "before", 6)

	// Another subscription keeps the reader busy, so it hands out what commits during the catch-up.
	witness, err := f.Subscribe(context.Background(), "w", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer witness.Close()
	sub, err := f.Subscribe(context.Background(), "c", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	got := make(chan []string, 1)
	go func() {
		// The first read of the catch-up is held until the records below are committed and
		// handed out by the reader.
		ctx := context.WithValue(context.Background(), gateKey{}, true)
		revs, err := sub.Next(ctx, time.Second)
		if err != nil {
			t.Error(err)
		}
		var keys []string
		for _, r := range revs {
			keys = append(keys, r.Key)
		}
		got <- keys
	}()
	<-st.entered
	commit(t, st, f, "during", 5)
	drain(t, witness, 11) // the reader has handed out every record, including to sub's channel
	close(st.release)
	first := <-got
	rest := drain(t, sub, 11-len(first))
	all := append(first, rest...)
	want := []string{"before-0", "before-1", "before-2", "before-3", "before-4", "before-5",
		"during-0", "during-1", "during-2", "during-3", "during-4"}
	if !slices.Equal(all, want) {
		t.Fatalf("delivered %v\nwant      %v", all, want)
	}
	commit(t, st, f, "after", 2)
	if got := drain(t, sub, 2); !slices.Equal(got, []string{"after-0", "after-1"}) {
		t.Fatalf("after the catch-up: %v", got)
	}
}

// TestFeedSlowSubscriber: a subscription that does not read falls behind without holding up the
// reader or any other subscription, and then delivers everything, in order, once, from the store.
func TestFeedSlowSubscriber(t *testing.T) {
	st := openStore(t)
	f := NewFeed(FeedConfig{Store: st, Buffer: 2, Page: 3})
	defer f.Close()
	slow, _ := f.Subscribe(context.Background(), "slow", 0, nil)
	defer slow.Close()
	fast, _ := f.Subscribe(context.Background(), "fast", 0, nil)
	defer fast.Close()
	if got := drain(t, slow, 0); len(got) != 0 { // the catch-up of an empty store
		t.Fatal(got)
	}
	var want []string
	for i := range 20 {
		commit(t, st, f, fmt.Sprint("b", i), 2)
		want = append(want, fmt.Sprintf("b%d-0", i), fmt.Sprintf("b%d-1", i))
		// The fast one keeps up while the slow one reads nothing.
		drain(t, fast, 2)
	}
	f.mu.Lock()
	behind := slow.behind
	f.mu.Unlock()
	if !behind {
		t.Fatal("the slow subscription never fell behind: the test does not exercise the resume")
	}
	if got := drain(t, slow, 40); !slices.Equal(got, want) {
		t.Fatalf("slow subscription delivered %v\nwant %v", got, want)
	}
	commit(t, st, f, "later", 1)
	if got := drain(t, slow, 1); !slices.Equal(got, []string{"later-0"}) {
		t.Fatalf("after resuming: %v", got)
	}
}

// TestFeedConcurrent: writers commit while subscriptions start at random points with random
// starting seqs and read at random speeds; each delivers exactly the stored records after its
// start, in order.
func TestFeedConcurrent(t *testing.T) {
	st := openStore(t)
	f := NewFeed(FeedConfig{Store: st, Buffer: 3, Page: 7})
	defer f.Close()
	const writers, commits = 4, 30
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range commits {
				commit(t, st, f, fmt.Sprintf("w%d-%d", w, i), 1+i%3)
			}
		}()
	}
	type result struct {
		after int64
		keys  []string
	}
	results := make(chan result, 8)
	var subs sync.WaitGroup
	total := writers * commits * 2 // 1+i%3 averages 2 over 30 commits
	for i := range 8 {
		subs.Add(1)
		go func() {
			defer subs.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			after := int64(0)
			if i%2 == 1 {
				after, _ = st.LastRevocationSeq(context.Background())
				after -= int64(rng.IntN(5))
				after = max(after, 0)
			}
			sub, err := f.Subscribe(context.Background(), fmt.Sprint("s", i), after, nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer sub.Close()
			var keys []string
			last := after
			deadline := time.Now().Add(20 * time.Second)
			for last < int64(total) && time.Now().Before(deadline) {
				revs, err := sub.Next(context.Background(), 100*time.Millisecond)
				if err != nil {
					t.Error(err)
					return
				}
				for _, r := range revs {
					if r.Seq <= last {
						t.Errorf("sub %d: seq %d after %d", i, r.Seq, last)
					}
					last = r.Seq
					keys = append(keys, r.Key)
				}
				if rng.IntN(3) == 0 {
					time.Sleep(time.Millisecond) // a slow reader now and then
				}
			}
			results <- result{after, keys}
		}()
	}
	wg.Wait()
	subs.Wait()
	close(results)
	stored, err := st.RevocationsSince(context.Background(), 0, time.Now(), 10000)
	if err != nil || len(stored) != total {
		t.Fatalf("%d stored records (%v), want %d", len(stored), err, total)
	}
	for r := range results {
		var want []string
		for _, rev := range stored {
			if rev.Seq > r.after {
				want = append(want, rev.Key)
			}
		}
		if !slices.Equal(r.keys, want) {
			t.Fatalf("subscription from seq %d delivered %d records, want %d\n got %v\nwant %v", r.after, len(r.keys), len(want), r.keys, want)
		}
	}
}

// TestFeedLimitsAndFilter: at most MaxPerSubscriber subscriptions per subscriber; the visible
// hook decides what a subscription delivers; Close ends every subscription.
func TestFeedLimitsAndFilter(t *testing.T) {
	st := openStore(t)
	f := NewFeed(FeedConfig{Store: st, MaxPerSubscriber: 2})
	var open []*Subscription
	for range 2 {
		s, err := f.Subscribe(context.Background(), "c", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, s)
	}
	if _, err := f.Subscribe(context.Background(), "c", 0, nil); !errors.Is(err, ErrTooManySubscriptions) {
		t.Fatalf("third subscription: %v; want ErrTooManySubscriptions", err)
	}
	onlyOdd := func(r rescind.Revocation) bool { return r.Key[len(r.Key)-1]%2 == 1 }
	other, err := f.Subscribe(context.Background(), "other", 0, onlyOdd) // another subscriber is not limited by c
	if err != nil {
		t.Fatal(err)
	}
	open[0].Close()
	open[0].Close() // twice is harmless, and counts once
	if s, err := f.Subscribe(context.Background(), "c", 0, nil); err != nil {
		t.Fatalf("subscription after one closed: %v", err)
	} else {
		open = append(open, s)
	}
	if _, err := f.Subscribe(context.Background(), "c", 0, nil); !errors.Is(err, ErrTooManySubscriptions) {
		t.Fatalf("over the limit again: %v", err)
	}
	commit(t, st, f, "k", 4)
	if got := drain(t, other, 2); !slices.Equal(got, []string{"k-1", "k-3"}) {
		t.Fatalf("filtered subscription delivered %v; want k-1, k-3", got)
	}
	commit(t, st, f, "m", 2)
	if got := drain(t, other, 1); !slices.Equal(got, []string{"m-1"}) {
		t.Fatalf("filtered subscription delivered %v; want m-1", got)
	}
	f.Close()
	for _, s := range open[1:] { // records are waiting for both: Close ends them anyway
		if _, err := s.Next(context.Background(), time.Minute); !errors.Is(err, ErrFeedClosed) {
			t.Fatalf("Next after Close: %v; want ErrFeedClosed", err)
		}
	}
	if _, err := f.Subscribe(context.Background(), "new", 0, nil); !errors.Is(err, ErrFeedClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
}
