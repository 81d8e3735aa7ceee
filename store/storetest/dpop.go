package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// dpopTests cover what DPoP (RFC 9449) stores: clients that require it, bound refresh tokens and
// codes, and used proofs.
func dpopTests() []struct {
	name string
	run  func(t *testing.T, open func() rescind.Store)
} {
	return []struct {
		name string
		run  func(t *testing.T, open func() rescind.Store)
	}{
		{"RequireDPoP", func(t *testing.T, open func() rescind.Store) { testRequireDPoP(t, open()) }},
		{"BoundRefreshTokens", func(t *testing.T, open func() rescind.Store) { testBoundRefreshTokens(t, open()) }},
		{"BoundCodes", func(t *testing.T, open func() rescind.Store) { testBoundCodes(t, open()) }},
		{"MarkUsed", func(t *testing.T, open func() rescind.Store) { testMarkUsed(t, open()) }},
		{"MarkUsedAcrossInstances", testMarkUsedAcrossInstances},
	}
}

const jkt1, jkt2 = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"

func testRequireDPoP(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	for _, want := range []bool{true, false} {
		c := sampleClient("dpop-" + map[bool]string{true: "yes", false: "no"}[want])
		c.RequireDPoP = want
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetClient(ctx, c.ID)
		if err != nil || got.RequireDPoP != want {
			t.Fatalf("GetClient(%s).RequireDPoP = %v, %v; want %v", c.ID, got.RequireDPoP, err, want)
		}
	}
	list, err := s.ListClients(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "dpop-no" || list[0].RequireDPoP || !list[1].RequireDPoP {
		t.Fatalf("ListClients = %+v, %v", list, err)
	}
	// An update turns it on and off.
	for _, want := range []bool{true, false} {
		c := list[0]
		if _, err := s.UpdateClient(ctx, c.ID, rescind.ClientUpdate{RequireDPoP: &want}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.GetClient(ctx, c.ID); err != nil || got.RequireDPoP != want {
			t.Fatalf("after UpdateClient(RequireDPoP %v): %+v, %v", want, got.RequireDPoP, err)
		}
	}
}

func testBoundRefreshTokens(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	exp := base.Add(time.Hour)
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	bound := refresh("rb1", "g1", exp)
	bound.JKT = jkt1
	if err := s.CreateRefreshToken(ctx, bound); err != nil {
		t.Fatal(err)
	}
	if rt, err := s.GetRefreshToken(ctx, "rb1"); err != nil || rt.JKT != jkt1 {
		t.Fatalf("GetRefreshToken(rb1) = %+v, %v; want jkt %s", rt, err, jkt1)
	}
	next := refresh("rb2", "g1", exp)
	next.JKT = jkt2
	old, err := s.RotateRefreshToken(ctx, "rb1", next, base, base.Add(time.Hour), nil)
	if err != nil || old.JKT != jkt1 {
		t.Fatalf("RotateRefreshToken = %+v, %v; want the old token with jkt %s", old, err, jkt1)
	}
	if rt, err := s.GetRefreshToken(ctx, "rb2"); err != nil || rt.JKT != jkt2 {
		t.Fatalf("rotated token = %+v, %v; want jkt %s", rt, err, jkt2)
	}
	if err := s.CreateRefreshToken(ctx, refresh("ru", "g1", exp)); err != nil {
		t.Fatal(err)
	}
	if rt, err := s.GetRefreshToken(ctx, "ru"); err != nil || rt.JKT != "" {
		t.Fatalf("unbound token = %+v, %v; want no jkt", rt, err)
	}
}

func testBoundCodes(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	c := rescind.AuthCode{Hash: "hb", ClientID: "c1", UserID: "u1", GrantID: "g1", RedirectURI: "https://app/cb", Scope: "read",
		Challenge: "ch", ChallengeMethod: "S256", CreatedAt: base, ExpiresAt: base.Add(time.Minute), DPoPJKT: jkt1}
	if err := s.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetCode(ctx, "hb"); err != nil || got.DPoPJKT != jkt1 {
		t.Fatalf("GetCode = %+v, %v; want dpop_jkt %s", got, err, jkt1)
	}
	got, err := s.RedeemCode(ctx, "hb", base, base.Add(time.Hour), nil)
	if err != nil || got.DPoPJKT != jkt1 {
		t.Fatalf("RedeemCode = %+v, %v; want dpop_jkt %s", got, err, jkt1)
	}
	if got, err := s.RedeemCode(ctx, "hb", base, base.Add(time.Hour), nil); !errors.Is(err, rescind.ErrReused) || got.DPoPJKT != jkt1 {
		t.Fatalf("second redemption = %+v, %v; want the bound code with ErrReused", got, err)
	}
}

func testMarkUsed(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	a, b := [32]byte{1}, [32]byte{2}
	exp := base.Add(time.Minute)
	mark := func(id [32]byte, expires, now time.Time) bool {
		t.Helper()
		fresh, err := s.MarkUsed(ctx, id, expires, now)
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	if !mark(a, exp, base) {
		t.Fatal("first use of a reported as a replay")
	}
	if mark(a, exp, base.Add(30*time.Second)) {
		t.Fatal("second use of a, within its lifetime, reported fresh")
	}
	if !mark(b, exp, base) {
		t.Fatal("first use of b reported as a replay")
	}
	// Past its expiry the record no longer counts: a fresh use replaces it, and lasts.
	if !mark(a, exp.Add(time.Minute), exp.Add(time.Nanosecond)) {
		t.Fatal("use of a after its record expired reported as a replay")
	}
	if mark(a, exp.Add(time.Minute), exp.Add(30*time.Second)) {
		t.Fatal("the renewed record of a did not count")
	}
	// DeleteExpired drops b (expired) and keeps a (renewed).
	if n, err := s.DeleteExpired(ctx, exp.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1 (b)", n, err)
	}
	if mark(a, exp.Add(time.Minute), exp.Add(2*time.Second)) {
		t.Fatal("DeleteExpired dropped a live record")
	}
}

// testMarkUsedAcrossInstances: instances racing to use the same value: exactly one wins.
func testMarkUsedAcrossInstances(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	stores := []rescind.Store{open(), open()}
	for round := range 10 {
		id := [32]byte{byte(round), 0xaa}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				fresh, err := stores[i%2].MarkUsed(ctx, id, base.Add(time.Minute), base)
				if err != nil {
					t.Error(err)
					return
				}
				if fresh {
					mu.Lock()
					wins++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("round %d: %d callers saw the value as fresh; want exactly 1", round, wins)
		}
	}
}
