package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// keyTests are the tests of the key lifecycle: activation times and retirement.
func keyTests() []struct {
	name string
	run  func(t *testing.T, open func() rescind.Store)
} {
	return []struct {
		name string
		run  func(t *testing.T, open func() rescind.Store)
	}{
		{"KeyLifecycleFields", func(t *testing.T, open func() rescind.Store) { testKeyFields(t, open()) }},
		{"RetireKey", func(t *testing.T, open func() rescind.Store) { testRetireKey(t, open()) }},
		{"ConcurrentRetireAcrossInstances", testConcurrentRetire},
	}
}

func keyRev(id string, at time.Time) rescind.Revocation {
	return rescind.Revocation{Kind: rescind.RevokeKey, Key: id, RevokedAt: at, ExpiresAt: at.Add(time.Hour),
		Actor: "admin", Reason: "key retired"}
}

func findKey(t *testing.T, s rescind.Store, use, id string) rescind.Key {
	t.Helper()
	keys, err := s.ListKeys(context.Background(), use)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("key %s not listed", id)
	return rescind.Key{}
}

func testKeyFields(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	pending := rescind.Key{ID: "p", Use: "sign", Algorithm: "ES256", Sealed: []byte{1}, CreatedAt: base, ActivatesAt: base.Add(6 * time.Minute)}
	now := rescind.Key{ID: "n", Use: "sign", Algorithm: "ES256", Sealed: []byte{2}, CreatedAt: base.Add(-time.Hour)}
	for _, k := range []rescind.Key{pending, now} {
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if got := findKey(t, s, "sign", "p"); !got.ActivatesAt.Equal(pending.ActivatesAt) || !got.RetiredAt.IsZero() {
		t.Fatalf("ActivatesAt %v, RetiredAt %v; want %v and zero", got.ActivatesAt, got.RetiredAt, pending.ActivatesAt)
	}
	if got := findKey(t, s, "sign", "n"); !got.ActivatesAt.Equal(now.CreatedAt) {
		t.Fatalf("a zero ActivatesAt stored as %v; want CreatedAt %v", got.ActivatesAt, now.CreatedAt)
	}
	// Equal creation times are ordered by id, newest (greatest) first, whatever the database's collation.
	for _, id := range []string{"b", "B", "a"} {
		if err := s.CreateKey(ctx, rescind.Key{ID: id, Use: "tie", Algorithm: "x", Sealed: []byte{0}, CreatedAt: base}); err != nil {
			t.Fatal(err)
		}
	}
	keys, _ := s.ListKeys(ctx, "tie")
	if len(keys) != 3 || keys[0].ID != "b" || keys[1].ID != "a" || keys[2].ID != "B" {
		t.Fatalf("ListKeys order %v; want b, a, B", keys)
	}
}

func testRetireKey(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	createUse := func(use, id string, created, activates time.Time) {
		t.Helper()
		if err := s.CreateKey(ctx, rescind.Key{ID: id, Use: use, Algorithm: "ES256", Sealed: []byte{1}, CreatedAt: created, ActivatesAt: activates}); err != nil {
			t.Fatal(err)
		}
	}
	create := func(id string, created, activates time.Time) { t.Helper(); createUse("sign", id, created, activates) }
	create("old", base, base)
	createUse("seal", "other-use", base.Add(time.Second), base) // newer, but of another use: never a replacement
	if _, err := s.RetireKey(ctx, "missing", keyRev("missing", base)); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("RetireKey(missing) = %v; want ErrNotFound", err)
	}
	at := base.Add(time.Minute)
	if _, err := s.RetireKey(ctx, "old", keyRev("old", at)); !errors.Is(err, rescind.ErrKeyInUse) {
		t.Fatalf("retiring the only key = %v; want ErrKeyInUse", err)
	}
	if k := findKey(t, s, "sign", "old"); !k.RetiredAt.IsZero() {
		t.Fatal("a refused retirement retired the key")
	}
	if n, _ := s.CountRevocations(ctx); n != 0 {
		t.Fatalf("a refused retirement wrote %d records", n)
	}

	// A rotation: "new" is published, activating in six minutes. Retiring "old" now brings it forward.
	create("new", base.Add(30*time.Second), base.Add(6*time.Minute))
	activated, err := s.RetireKey(ctx, "old", keyRev("old", at))
	if err != nil || activated != "new" {
		t.Fatalf("RetireKey(old) = %q, %v; want new activated", activated, err)
	}
	if k := findKey(t, s, "sign", "old"); !k.RetiredAt.Equal(at) {
		t.Fatalf("RetiredAt = %v, want %v", k.RetiredAt, at)
	}
	if k := findKey(t, s, "sign", "new"); !k.ActivatesAt.Equal(at) {
		t.Fatalf("replacement ActivatesAt = %v, want %v", k.ActivatesAt, at)
	}
	revs, err := s.RevocationsSince(ctx, 0, at, 10)
	if err != nil || len(revs) != 1 || revs[0].Kind != rescind.RevokeKey || revs[0].Key != "old" {
		t.Fatalf("records after retirement = %+v, %v; want one key record", revs, err)
	}
	if audit, _ := s.ListAudit(ctx, 10); len(audit) != 1 || audit[0].Target != "old" || audit[0].Actor != "admin" {
		t.Fatalf("audit = %+v; want the retirement", audit)
	}
	// Again: nothing changes, nothing is written.
	if activated, err := s.RetireKey(ctx, "old", keyRev("old", at.Add(time.Hour))); err != nil || activated != "" {
		t.Fatalf("retiring again = %q, %v", activated, err)
	}
	if k := findKey(t, s, "sign", "old"); !k.RetiredAt.Equal(at) {
		t.Fatalf("retiring again moved RetiredAt to %v", k.RetiredAt)
	}
	if n, _ := s.CountRevocations(ctx); n != 1 {
		t.Fatalf("%d records after retiring again; want 1", n)
	}
	// "new" is now the only key in force: refused. A key of another use is no replacement.
	if _, err := s.RetireKey(ctx, "new", keyRev("new", at.Add(time.Minute))); !errors.Is(err, rescind.ErrKeyInUse) {
		t.Fatalf("retiring the replacement = %v; want ErrKeyInUse", err)
	}
	// A key that is not in force (here a pending one) retires without activating anything.
	create("next", at.Add(time.Minute), at.Add(7*time.Minute))
	if activated, err := s.RetireKey(ctx, "next", keyRev("next", at.Add(2*time.Minute))); err != nil || activated != "" {
		t.Fatalf("retiring a pending key = %q, %v", activated, err)
	}
	if k := findKey(t, s, "sign", "new"); !k.ActivatesAt.Equal(at) || !k.RetiredAt.IsZero() {
		t.Fatalf("the key in force changed: %+v", k)
	}
	if k := findKey(t, s, "seal", "other-use"); !k.RetiredAt.IsZero() || !k.ActivatesAt.Equal(base) {
		t.Fatalf("a key of another use changed: %+v", k)
	}
}

// testConcurrentRetire races two instances retiring the two keys of a use (one in force, one
// pending): either order alone is allowed, both together would leave the use without a key.
// Exactly one must succeed, and a key must remain in force.
func testConcurrentRetire(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	a, b := open(), open()
	for round := range 10 {
		use := fmt.Sprintf("use%d", round)
		active, pending := use+"-active", use+"-pending"
		for _, k := range []rescind.Key{
			{ID: active, Use: use, Algorithm: "x", Sealed: []byte{1}, CreatedAt: base},
			{ID: pending, Use: use, Algorithm: "x", Sealed: []byte{1}, CreatedAt: base.Add(time.Second), ActivatesAt: base.Add(time.Hour)},
		} {
			if err := a.CreateKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
		at := base.Add(time.Minute)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, x := range []struct {
			s  rescind.Store
			id string
		}{{a, active}, {b, pending}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = x.s.RetireKey(ctx, x.id, keyRev(x.id, at))
			}()
		}
		wg.Wait()
		failed := 0
		for _, err := range errs {
			if errors.Is(err, rescind.ErrKeyInUse) {
				failed++
			} else if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		keys, _ := b.ListKeys(ctx, use)
		if failed != 1 || rescind.ActiveKey(keys, at.Add(time.Second)) < 0 {
			t.Fatalf("round %d: %d retirements refused (want 1); keys %+v", round, failed, keys)
		}
	}
}
