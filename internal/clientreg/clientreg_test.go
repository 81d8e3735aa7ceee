package clientreg

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
)

// fakeStore serves clients from a map and counts reads.
type fakeStore struct {
	rescind.Store
	mu      sync.Mutex
	clients map[string]rescind.Client
	reads   atomic.Int64
}

func (f *fakeStore) GetClient(_ context.Context, id string) (rescind.Client, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.clients[id]
	if !ok {
		return c, fmt.Errorf("client %q: %w", id, rescind.ErrNotFound)
	}
	return c, nil
}

var cheap = secret.Params{Memory: 64, Time: 1, Threads: 1}

func setup(t *testing.T) (*Registry, *fakeStore, *time.Time) {
	t.Helper()
	h, err := secret.Hash("s3cret", cheap)
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeStore{clients: map[string]rescind.Client{
		"conf": {ID: "conf", SecretHash: h},
		"pub":  {ID: "pub", Public: true},
	}}
	now := time.Unix(1_900_000_000, 0)
	r, err := New(Config{Store: fs, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return r, fs, &now
}

func TestAuthenticate(t *testing.T) {
	r, _, _ := setup(t)
	ctx := context.Background()
	if _, err := r.Authenticate(ctx, "conf", "s3cret"); err != nil {
		t.Fatalf("right secret: %v", err)
	}
	if _, err := r.Authenticate(ctx, "conf", "wrong"); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("wrong secret: %v", err)
	}
	if _, err := r.Authenticate(ctx, "pub", ""); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("public client authenticated with a secret: %v", err)
	}
	if _, err := r.Authenticate(ctx, "nobody", "x"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
	if n := r.VerifiedEntries(); n != 1 {
		t.Fatalf("%d verified entries; want 1 (failures are not cached)", n)
	}
}

func TestVerifiedCacheExpiresAndInvalidates(t *testing.T) {
	r, fs, now := setup(t)
	ctx := context.Background()
	if _, err := r.Authenticate(ctx, "conf", "s3cret"); err != nil {
		t.Fatal(err)
	}
	// The client's secret changes in the store: the cached client and verified secret still
	// answer until invalidated, then the new secret is the only one that works.
	h2, _ := secret.Hash("new", cheap)
	fs.mu.Lock()
	fs.clients["conf"] = rescind.Client{ID: "conf", SecretHash: h2}
	fs.mu.Unlock()
	r.Invalidate("conf")
	if _, err := r.Authenticate(ctx, "conf", "s3cret"); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("old secret after invalidate: %v", err)
	}
	if _, err := r.Authenticate(ctx, "conf", "new"); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	// Past the TTL the entry is not trusted: a deleted client is then refused.
	fs.mu.Lock()
	delete(fs.clients, "conf")
	fs.mu.Unlock()
	*now = now.Add(6 * time.Minute)
	if _, err := r.Authenticate(ctx, "conf", "new"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("after TTL, deleted client: %v", err)
	}
}

func TestConcurrentSameSecretHashesOnce(t *testing.T) {
	r, _, _ := setup(t)
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Authenticate(context.Background(), "conf", "s3cret"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := r.VerifiedEntries(); n != 1 {
		t.Fatalf("verified entries = %d", n)
	}
}

func TestGetCaches(t *testing.T) {
	r, fs, now := setup(t)
	ctx := context.Background()
	for range 3 {
		if _, err := r.Get(ctx, "conf"); err != nil {
			t.Fatal(err)
		}
	}
	if n := fs.reads.Load(); n != 1 {
		t.Fatalf("%d store reads for 3 Gets; want 1", n)
	}
	*now = now.Add(2 * time.Minute)
	r.Get(ctx, "conf")
	if n := fs.reads.Load(); n != 2 {
		t.Fatalf("%d store reads after TTL; want 2", n)
	}
}

func benchRegistry(b *testing.B) *Registry {
	h, _ := secret.Hash("s3cret", secret.DefaultParams)
	fs := &fakeStore{clients: map[string]rescind.Client{"conf": {ID: "conf", SecretHash: h}}}
	r, _ := New(Config{Store: fs})
	return r
}

// BenchmarkAuthenticateCached measures a token request's secret check once the secret is cached.
func BenchmarkAuthenticateCached(b *testing.B) {
	r := benchRegistry(b)
	ctx := context.Background()
	r.Authenticate(ctx, "conf", "s3cret")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Authenticate(ctx, "conf", "s3cret"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyUncached measures one argon2id check with the default parameters.
func BenchmarkVerifyUncached(b *testing.B) {
	h, _ := secret.Hash("s3cret", secret.DefaultParams)
	for b.Loop() {
		if ok, _ := secret.Verify("s3cret", h); !ok {
			b.Fatal("mismatch")
		}
	}
}

// TestRotationOverlap: after a rotation the previous secret works until the overlap ends, then
// never, although a check of it was cached moments before; the new secret works throughout.
func TestRotationOverlap(t *testing.T) {
	r, fs, now := setup(t)
	ctx := context.Background()
	newHash, _ := secret.Hash("n3w", cheap)
	fs.mu.Lock()
	c := fs.clients["conf"]
	c.PreviousSecretHash, c.SecretHash, c.PreviousSecretExpiresAt = c.SecretHash, newHash, now.Add(time.Hour)
	fs.clients["conf"] = c
	fs.mu.Unlock()
	r.Invalidate("conf")
	for _, sec := range []string{"s3cret", "n3w"} {
		if _, err := r.Authenticate(ctx, "conf", sec); err != nil {
			t.Fatalf("%s during the overlap: %v", sec, err)
		}
	}
	*now = now.Add(time.Hour - time.Second)
	r.Invalidate("other") // nothing to do with conf
	if _, err := r.Authenticate(ctx, "conf", "s3cret"); err != nil {
		t.Fatalf("previous secret a second before the overlap ends: %v", err)
	}
	*now = now.Add(time.Second)
	if _, err := r.Authenticate(ctx, "conf", "s3cret"); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("previous secret at the end of the overlap: %v, want ErrBadSecret", err)
	}
	if _, err := r.Authenticate(ctx, "conf", "n3w"); err != nil {
		t.Fatalf("new secret after the overlap: %v", err)
	}
}

// TestVerifiedEntryBoundToHash: an instance that missed a change notification (no Invalidate)
// stops accepting a replaced secret as soon as it reads the client again, though its
// verification is still cached.
func TestVerifiedEntryBoundToHash(t *testing.T) {
	r, fs, now := setup(t)
	ctx := context.Background()
	if _, err := r.Authenticate(ctx, "conf", "s3cret"); err != nil {
		t.Fatal(err)
	}
	newHash, _ := secret.Hash("n3w", cheap)
	fs.mu.Lock()
	c := fs.clients["conf"]
	c.SecretHash = newHash // rotated elsewhere, without an overlap
	fs.clients["conf"] = c
	fs.mu.Unlock()
	*now = now.Add(2 * time.Minute) // past the client cache, within the verified cache
	if _, err := r.Authenticate(ctx, "conf", "s3cret"); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("replaced secret: %v, want ErrBadSecret", err)
	}
	if _, err := r.Authenticate(ctx, "conf", "n3w"); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

// TestUnknownClientCostsACheck: an unknown client id is answered only after a hash check (of a
// dummy hash) through the shared gate, like a known client with a wrong secret, so timing does
// not tell which client ids exist. With the gate's only slot held, both wait their turn and give
// up the same way.
func TestUnknownClientCostsACheck(t *testing.T) {
	h, _ := secret.Hash("s3cret", cheap)
	fs := &fakeStore{clients: map[string]rescind.Client{"conf": {ID: "conf", SecretHash: h}}}
	gate := secret.NewGate(secret.GateConfig{Running: 1, Queued: 4, Wait: 50 * time.Millisecond, Params: cheap})
	r, err := New(Config{Store: fs, Gate: gate})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Authenticate(context.Background(), "ghost", "x"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("unknown client: %v", err)
	}
	// Hold the gate's one slot with a check that waits on a slow verification: a context we
	// control would not hold it, so occupy it through a concurrent Verify of a costly hash.
	slow, _ := secret.Hash("s", secret.Params{Memory: 64 * 1024, Time: 8, Threads: 1})
	held := make(chan struct{})
	go func() {
		close(held)
		gate.Verify(context.Background(), "s", slow)
	}()
	<-held
	for deadline := time.Now().Add(10 * time.Second); gate.Running() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the slow check never took the gate's slot")
		}
	}
	for _, id := range []string{"ghost", "conf"} {
		if _, err := r.Authenticate(context.Background(), id, "wrong"); !errors.Is(err, secret.ErrBusy) {
			t.Errorf("%s while the gate is full: %v, want secret.ErrBusy (it waited for a hash check)", id, err)
		}
	}
}

// TestFailureCostsTheSame (audit of issue 12, finding 3): a failed authentication costs
// WrongSecretChecks hash checks whether the client id is unknown, public, confidential or in a
// rotation's overlap, so timing tells none of them apart; a right secret costs what it costs.
func TestFailureCostsTheSame(t *testing.T) {
	h, _ := secret.Hash("s3cret", cheap)
	prev, _ := secret.Hash("0ld", cheap)
	now := time.Unix(1_900_000_000, 0)
	fs := &fakeStore{clients: map[string]rescind.Client{
		"conf":    {ID: "conf", SecretHash: h},
		"pub":     {ID: "pub", Public: true},
		"overlap": {ID: "overlap", SecretHash: h, PreviousSecretHash: prev, PreviousSecretExpiresAt: now.Add(time.Hour)},
	}}
	gate := secret.NewGate(secret.GateConfig{Params: cheap})
	r, err := New(Config{Store: fs, Gate: gate, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, secret string
		want       error
		checks     int64
	}{
		{"ghost", "wrong", rescind.ErrNotFound, WrongSecretChecks},
		{"pub", "wrong", ErrBadSecret, WrongSecretChecks},
		{"conf", "wrong", ErrBadSecret, WrongSecretChecks},
		{"overlap", "wrong", ErrBadSecret, WrongSecretChecks},
		{"conf", "s3cret", nil, 1},
		{"overlap", "0ld", nil, 2},
	} {
		before := gate.Checks()
		_, err := r.Authenticate(context.Background(), tc.id, tc.secret)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s/%s: %v; want %v", tc.id, tc.secret, err, tc.want)
		}
		if got := gate.Checks() - before; got != tc.checks {
			t.Errorf("%s/%s: %d checks; want %d", tc.id, tc.secret, got, tc.checks)
		}
	}
}

// changingStore returns the client as it was and, once, meanwhile runs change: a secret
// replaced and the registry told (Invalidate, or InvalidateAll for a resync) while the read is
// under way.
type changingStore struct {
	*fakeStore
	once   sync.Once
	change func()
}

func (s *changingStore) GetClient(ctx context.Context, id string) (rescind.Client, error) {
	c, err := s.fakeStore.GetClient(ctx, id)
	if s.change != nil {
		s.once.Do(s.change)
	}
	return c, err
}

// rotatingDuringRead returns a registry of client "conf" (secret "old-secret") whose store,
// during its first read, replaces the secret by "new-secret" and tells the registry with tell;
// and the old secret's hash.
func rotatingDuringRead(t *testing.T, tell func(*Registry)) (*Registry, string) {
	t.Helper()
	oldHash, _ := secret.Hash("old-secret", cheap)
	newHash, _ := secret.Hash("new-secret", cheap)
	fs := &fakeStore{clients: map[string]rescind.Client{"conf": {ID: "conf", SecretHash: oldHash}}}
	rs := &changingStore{fakeStore: fs}
	r, err := New(Config{Store: rs})
	if err != nil {
		t.Fatal(err)
	}
	rs.change = func() {
		fs.mu.Lock()
		fs.clients["conf"] = rescind.Client{ID: "conf", SecretHash: newHash}
		fs.mu.Unlock()
		tell(r)
	}
	return r, oldHash
}

// TestRotationDuringCheckIsNotCached: a check that read the client before a secret rotation
// and its Invalidate may pass against the old secret (it was right when read), but is not
// cached, so Admit does not let the replaced secret skip the rate limit afterwards; nor does a
// verification cached before a rotation the registry has not been told of yet outlive the
// client's acceptance of its hash. Re-audit 8 #2.
func TestRotationDuringCheckIsNotCached(t *testing.T) {
	r, oldHash := rotatingDuringRead(t, func(r *Registry) { r.Invalidate("conf") })
	ctx := context.Background()
	if _, err := r.Authenticate(ctx, "conf", "old-secret"); err != nil {
		t.Fatalf("the check in flight during the rotation: %v", err)
	}
	if n := r.VerifiedEntries(); n != 0 {
		t.Fatalf("%d verified entries cached from a check of the client as it was before the rotation", n)
	}
	if i, claim := r.Admit(ctx, "conf", "old-secret"); i >= 0 {
		t.Fatal("the replaced secret is admitted without a rate-limit reservation")
	} else {
		claim.Release()
	}
	if _, err := r.Authenticate(ctx, "conf", "new-secret"); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	if i, _ := r.Admit(ctx, "conf", "wrong", "new-secret"); i != 1 {
		t.Fatalf("Admit of the verified new secret, second of two readings: %d, want 1", i)
	}
	// The registry's client changes without an Invalidate (as if it had not arrived yet): a
	// verification of a hash the client no longer accepts admits nothing.
	r.mu.Lock()
	e := r.clients["conf"]
	e.c.SecretHash = oldHash
	r.clients["conf"] = e
	r.mu.Unlock()
	if i, claim := r.Admit(ctx, "conf", "new-secret"); i >= 0 {
		t.Fatal("a verification of a hash the client no longer accepts is admitted")
	} else {
		claim.Release()
	}
}

// TestAdmitWaitsOnlyForClaims: Admit waits for a check in flight only if it is another Admit's
// claim, never for a check authenticate makes without one (which exists for a confidential
// client only: waiting for it would tell those from unknown and public ids). Re-audit 9 #1.
func TestAdmitWaitsOnlyForClaims(t *testing.T) {
	h, _ := secret.Hash("right", cheap)
	r, err := New(Config{Store: &fakeStore{clients: map[string]rescind.Client{"conf": {ID: "conf", SecretHash: h}}}})
	if err != nil {
		t.Fatal(err)
	}
	// authenticate's own check of the second reading is in flight.
	k1 := verifiedKey{id: "conf", mac: r.mac("b+c")}
	r.mu.Lock()
	r.inflight[k1] = make(chan struct{})
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	i, first := r.Admit(ctx, "conf", "b c", "b+c")
	if i >= 0 || first == nil {
		t.Fatalf("Admit with another reading under a plain check: %d, claim %v; want a claim at once", i, first != nil)
	}
	// The first reading is now claimed: the next Admit waits for the claim (here until its
	// context ends, so it returns without one).
	if i, c := r.Admit(ctx, "conf", "b c", "b+c"); i >= 0 || c != nil || ctx.Err() == nil {
		t.Fatalf("Admit during another's claim: %d, claim %v, context %v; want it to wait until its context ends, then no claim", i, c != nil, ctx.Err())
	}
	first.Release()
	r.mu.Lock()
	left := len(r.claimed)
	r.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d claims left after Release", left)
	}
}

// TestResyncDuringReadIsNotCached: a client read before an InvalidateAll, and the check made
// against it, are not cached after it, for a client not held before either. Re-audit 9 #2.
func TestResyncDuringReadIsNotCached(t *testing.T) {
	r, _ := rotatingDuringRead(t, func(r *Registry) { r.InvalidateAll() })
	ctx := context.Background()
	if _, err := r.Authenticate(ctx, "conf", "old-secret"); err != nil {
		t.Fatalf("the check in flight during the resync: %v", err)
	}
	r.mu.Lock()
	_, held := r.clients["conf"]
	r.mu.Unlock()
	if held || r.VerifiedEntries() != 0 {
		t.Fatalf("after the resync: client held %v, %d verified entries; want neither", held, r.VerifiedEntries())
	}
	if _, err := r.Authenticate(ctx, "conf", "old-secret"); !errors.Is(err, ErrBadSecret) {
		t.Fatalf("the replaced secret after the resync: %v", err)
	}
}

// TestMACLeavesNoSecret: the pooled MAC state keeps nothing of the secret it was given: its
// input buffer and sum are zero and its HMAC is back in its keyed initial state. Re-audit 9 #3.
func TestMACLeavesNoSecret(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	m := &macState{h: hmac.New(sha256.New, key)}
	want := hmac.New(sha256.New, key)
	io.WriteString(want, "S3CRET-in-clear")
	if got := m.mac("S3CRET-in-clear"); string(got[:]) != string(want.Sum(nil)[:16]) {
		t.Fatal("wrong MAC")
	}
	if slices.ContainsFunc(m.in, func(b byte) bool { return b != 0 }) || m.sum != [sha256.Size]byte{} {
		t.Fatalf("buffers left: in %q, sum %x", m.in, m.sum)
	}
	if string(m.h.Sum(nil)) != string(hmac.New(sha256.New, key).Sum(nil)) {
		t.Fatal("the HMAC still holds what it was given")
	}
}

// TestAdmitWaitIsBounded: while another request's claim is held, Admit gives up after AdmitWait
// and answers without a claim (the request is then charged to the rate limit as any other),
// whatever its context allows.
func TestAdmitWaitIsBounded(t *testing.T) {
	h, _ := secret.Hash("right", cheap)
	r, err := New(Config{Store: &fakeStore{clients: map[string]rescind.Client{"conf": {ID: "conf", SecretHash: h}}}})
	if err != nil {
		t.Fatal(err)
	}
	_, held := r.Admit(context.Background(), "conf", "right")
	if held == nil {
		t.Fatal("no claim")
	}
	defer held.Release()
	type answer struct {
		i     int
		claim *Claim
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		i, c := r.Admit(context.Background(), "conf", "right")
		done <- answer{i, c}
	}()
	select {
	case a := <-done:
		// It waited (not less than AdmitWait: it cannot answer sooner without a bug), then gave up.
		if waited := time.Since(start); a.i >= 0 || a.claim != nil || waited < AdmitWait {
			t.Fatalf("Admit during a held claim: %d, claim %v after %v; want neither, after AdmitWait", a.i, a.claim != nil, waited)
		}
	case <-time.After(AdmitWait + 10*time.Second):
		t.Fatal("Admit still waits for a claim held past AdmitWait")
	}
}
