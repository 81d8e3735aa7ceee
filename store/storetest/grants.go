package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

func grantTests() []struct {
	name string
	run  func(t *testing.T, open func() rescind.Store)
} {
	return []struct {
		name string
		run  func(t *testing.T, open func() rescind.Store)
	}{
		{"Users", func(t *testing.T, open func() rescind.Store) { testUsers(t, open()) }},
		{"Grants", func(t *testing.T, open func() rescind.Store) { testGrants(t, open()) }},
		{"RefreshRotation", func(t *testing.T, open func() rescind.Store) { testRefreshRotation(t, open()) }},
		{"ConcurrentRotationAcrossInstances", testConcurrentRotation},
		{"Codes", func(t *testing.T, open func() rescind.Store) { testCodes(t, open()) }},
		{"ConcurrentRedemptionAcrossInstances", testConcurrentRedemption},
		{"GrantRecordLivesAsLongAsItsTokens", func(t *testing.T, open func() rescind.Store) { testGrantRecordLifetime(t, open()) }},
		{"RevokingAgainExtends", func(t *testing.T, open func() rescind.Store) { testRevokeAgain(t, open()) }},
		{"BulkRevocation", func(t *testing.T, open func() rescind.Store) { testBulkRevocation(t, open()) }},
		{"DeleteCascades", func(t *testing.T, open func() rescind.Store) { testDeleteCascades(t, open()) }},
		{"GrantTokenStatus", func(t *testing.T, open func() rescind.Store) { testGrantTokenStatus(t, open()) }},
		{"GrantTokenStatusRacesRevocation", testStatusRacesRevocation},
	}
}

func testUsers(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	u := rescind.User{ID: "u1", Username: "alice", PasswordHash: "h", CreatedAt: base}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	dup := u
	dup.ID = "u2"
	if err := s.CreateUser(ctx, dup); !errors.Is(err, rescind.ErrAlreadyExists) {
		t.Fatalf("duplicate username: %v", err)
	}
	got, err := s.GetUserByUsername(ctx, "alice")
	if err != nil || got.ID != "u1" || got.PasswordHash != "h" || !got.CreatedAt.Equal(base) {
		t.Fatalf("GetUserByUsername = %+v, %v", got, err)
	}
	if got, err := s.GetUser(ctx, "u1"); err != nil || got.Username != "alice" {
		t.Fatalf("GetUser = %+v, %v", got, err)
	}
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetUser(missing): %v", err)
	}
	if list, err := s.ListUsers(ctx); err != nil || len(list) != 1 {
		t.Fatalf("ListUsers = %v, %v", list, err)
	}
}

func grant(id, client, user string, scopes ...string) rescind.Grant {
	return rescind.Grant{ID: id, ClientID: client, UserID: user, Scopes: scopes, CreatedAt: base, LastUsedAt: base}
}

func testGrants(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	g, err := s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	if err != nil || g.ID != "g1" {
		t.Fatalf("SaveGrant = %+v, %v", g, err)
	}
	// Consenting again to the same client widens the existing grant.
	g, err = s.SaveGrant(ctx, grant("g2", "c1", "u1", "write", "read"))
	if err != nil || g.ID != "g1" || !slices.Equal(g.Scopes, []string{"read", "write"}) {
		t.Fatalf("second SaveGrant = %+v, %v; want g1 with read write", g, err)
	}
	s.SaveGrant(ctx, grant("g3", "c2", "u1", "read"))
	s.SaveGrant(ctx, grant("g4", "c1", "u2", "read"))
	if err := s.TouchGrant(ctx, "g1", base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetGrant(ctx, "g1")
	if err != nil || !got.LastUsedAt.Equal(base.Add(time.Hour)) || !got.RevokedAt.IsZero() {
		t.Fatalf("GetGrant = %+v, %v", got, err)
	}
	for f, want := range map[rescind.GrantFilter]int{{UserID: "u1"}: 2, {ClientID: "c1"}: 2, {UserID: "u1", ClientID: "c1"}: 1, {GrantID: "g4"}: 1, {}: 3} {
		if list, err := s.ListGrants(ctx, f); err != nil || len(list) != want {
			t.Errorf("ListGrants(%+v) = %d grants, %v; want %d", f, len(list), err, want)
		}
	}
}

func refresh(hash, grantID string, exp time.Time) rescind.RefreshToken {
	return rescind.RefreshToken{Hash: hash, GrantID: grantID, ClientID: "c1", Scope: "read", CreatedAt: base, ExpiresAt: exp}
}

// bound returns the grant's TokensExpireAt.
func bound(t *testing.T, s rescind.Store, id string) time.Time {
	t.Helper()
	g, err := s.GetGrant(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return g.TokensExpireAt
}

func testRefreshRotation(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	exp := base.Add(24 * time.Hour)
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	if !bound(t, s, "g1").IsZero() {
		t.Fatal("a new grant has a token expiry")
	}
	if err := s.CreateRefreshToken(ctx, refresh("r1", "g1", exp)); err != nil {
		t.Fatal(err)
	}
	old, err := s.RotateRefreshToken(ctx, "r1", refresh("r2", "g1", exp), base, base.Add(2*time.Hour), nil)
	if err != nil || old.GrantID != "g1" || old.Scope != "read" {
		t.Fatalf("Rotate = %+v, %v", old, err)
	}
	if b := bound(t, s, "g1"); !b.Equal(base.Add(2 * time.Hour)) {
		t.Fatalf("grant's token expiry after rotation = %v, want the access token's", b)
	}
	if _, err := s.RotateRefreshToken(ctx, "r1", refresh("r3", "g1", exp), base, base.Add(9*time.Hour), nil); !errors.Is(err, rescind.ErrReused) {
		t.Fatalf("second rotation of r1: %v, want ErrReused", err)
	}
	if b := bound(t, s, "g1"); !b.Equal(base.Add(2 * time.Hour)) {
		t.Fatalf("a refused rotation moved the grant's token expiry to %v", b)
	}
	// A shorter access token (a ttl lowered meanwhile) never lowers the bound.
	if _, err := s.RotateRefreshToken(ctx, "r2", refresh("r2b", "g1", exp), base, base.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if b := bound(t, s, "g1"); !b.Equal(base.Add(2 * time.Hour)) {
		t.Fatalf("a shorter token lowered the grant's token expiry to %v", b)
	}
	if _, err := s.GetRefreshToken(ctx, "r3"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatal("a failed rotation stored its next token")
	}
	if rt, err := s.GetRefreshToken(ctx, "r1"); err != nil || rt.UsedAt.IsZero() {
		t.Fatalf("r1 = %+v, %v; want used", rt, err)
	}
	if _, err := s.RotateRefreshToken(ctx, "nope", refresh("r4", "g1", exp), base, base, nil); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if _, err := s.RotateRefreshToken(ctx, "r2b", refresh("r5", "g1", exp), exp, exp, nil); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
	if n, err := s.DeleteExpired(ctx, exp.Add(time.Second)); err != nil || n != 3 {
		t.Fatalf("DeleteExpired = %d, %v; want 3", n, err)
	}
	// Nothing is issued under a revoked grant, even from a refresh token stored after the
	// revocation (by a request that raced it).
	s.SaveGrant(ctx, grant("g2", "c1", "u2", "read"))
	if _, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g2"}, rescind.Revocation{RevokedAt: base}); err != nil {
		t.Fatal(err)
	}
	s.CreateRefreshToken(ctx, refresh("late", "g2", exp))
	if _, err := s.RotateRefreshToken(ctx, "late", refresh("late2", "g2", exp), base, base.Add(time.Hour), nil); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("rotation under a revoked grant: %v, want ErrNotFound", err)
	}
	if _, err := s.GetRefreshToken(ctx, "late2"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatal("a rotation under a revoked grant stored its next token")
	}
	if g, _ := s.GetGrant(ctx, "g2"); !g.TokensExpireAt.IsZero() {
		t.Fatalf("a refused rotation raised the revoked grant's token expiry to %v", g.TokensExpireAt)
	}
}

// testConcurrentRotation: two instances rotate the same refresh token at once; exactly one
// wins and the other sees reuse.
func testConcurrentRotation(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	a, b := open(), open()
	exp := base.Add(24 * time.Hour)
	a.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	for round := range 10 {
		h := fmt.Sprintf("r%d", round)
		if err := a.CreateRefreshToken(ctx, refresh(h, "g1", exp)); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []rescind.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.RotateRefreshToken(ctx, h, refresh(fmt.Sprintf("%s-next-%d", h, i), "g1", exp), base, base.Add(time.Hour), nil)
			}()
		}
		wg.Wait()
		wins, reuses := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, rescind.ErrReused):
				reuses++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if wins != 1 || reuses != 1 {
			t.Fatalf("round %d: %d wins, %d reuses; want exactly 1 and 1", round, wins, reuses)
		}
	}
}

func sampleCode(hash, grantID string) rescind.AuthCode {
	return rescind.AuthCode{Hash: hash, ClientID: "c1", UserID: "u1", GrantID: grantID, RedirectURI: "https://app/cb", RedirectURIGiven: true,
		Scope: "read", Challenge: "ch", ChallengeMethod: "S256", CreatedAt: base, ExpiresAt: base.Add(time.Minute)}
}

func testCodes(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	if err := s.CreateCode(ctx, sampleCode("h1", "g1")); err != nil {
		t.Fatal(err)
	}
	// Looking a code up changes nothing: the checks of the request come before it is consumed.
	for range 2 {
		got, err := s.GetCode(ctx, "h1")
		if err != nil || got.GrantID != "g1" || got.ClientID != "c1" || got.RedirectURI != "https://app/cb" || !got.RedirectURIGiven ||
			got.Challenge != "ch" || got.ChallengeMethod != "S256" || !got.UsedAt.IsZero() || !got.ExpiresAt.Equal(base.Add(time.Minute)) {
			t.Fatalf("GetCode = %+v, %v", got, err)
		}
	}
	if !bound(t, s, "g1").IsZero() {
		t.Fatal("looking a code up raised the grant's token expiry")
	}
	got, err := s.RedeemCode(ctx, "h1", base, base.Add(time.Hour), nil)
	if err != nil || got.GrantID != "g1" || got.RedirectURI != "https://app/cb" || !got.RedirectURIGiven || got.Challenge != "ch" || got.ChallengeMethod != "S256" {
		t.Fatalf("RedeemCode = %+v, %v", got, err)
	}
	if b := bound(t, s, "g1"); !b.Equal(base.Add(time.Hour)) {
		t.Fatalf("grant's token expiry after redemption = %v, want the access token's", b)
	}
	got, err = s.RedeemCode(ctx, "h1", base, base.Add(5*time.Hour), nil)
	if !errors.Is(err, rescind.ErrReused) || got.GrantID != "g1" {
		t.Fatalf("second redemption = %+v, %v; want the code with ErrReused", got, err)
	}
	if got, err := s.GetCode(ctx, "h1"); err != nil || got.UsedAt.IsZero() {
		t.Fatalf("GetCode of a used code = %+v, %v; want it, used", got, err)
	}
	if b := bound(t, s, "g1"); !b.Equal(base.Add(time.Hour)) {
		t.Fatalf("a refused redemption moved the grant's token expiry to %v", b)
	}
	s.CreateCode(ctx, sampleCode("h2", "g1"))
	if _, err := s.RedeemCode(ctx, "h2", base.Add(time.Minute), base.Add(time.Hour), nil); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("expired code: %v", err)
	}
	if _, err := s.RedeemCode(ctx, "none", base, base, nil); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("unknown code: %v", err)
	}
	if _, err := s.GetCode(ctx, "none"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetCode(unknown): %v", err)
	}
	// A code of a revoked grant (stored by a request that raced the revocation) is refused and
	// stays unused.
	s.SaveGrant(ctx, grant("g2", "c1", "u2", "read"))
	s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g2"}, rescind.Revocation{RevokedAt: base})
	s.CreateCode(ctx, sampleCode("h3", "g2"))
	if _, err := s.RedeemCode(ctx, "h3", base, base.Add(time.Hour), nil); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("code of a revoked grant: %v, want ErrNotFound", err)
	}
	if got, _ := s.GetCode(ctx, "h3"); !got.UsedAt.IsZero() {
		t.Fatal("a refused redemption consumed the code")
	}
}

// testConcurrentRedemption: two instances redeem the same code at once; exactly one wins and
// the other sees reuse.
func testConcurrentRedemption(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	a, b := open(), open()
	a.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	for round := range 10 {
		h := fmt.Sprintf("code%d", round)
		if err := a.CreateCode(ctx, sampleCode(h, "g1")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, s := range []rescind.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = s.RedeemCode(ctx, h, base, base.Add(time.Duration(round+i)*time.Hour), nil)
			}()
		}
		wg.Wait()
		wins, reuses := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, rescind.ErrReused):
				reuses++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if wins != 1 || reuses != 1 {
			t.Fatalf("round %d: %d wins, %d reuses; want exactly 1 and 1", round, wins, reuses)
		}
	}
}

// testGrantRecordLifetime: a revoked grant's record lives until the latest expiry of the tokens
// issued under it, whatever the caller's template says.
func testGrantRecordLifetime(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	long := base.Add(24 * time.Hour)
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	s.SaveGrant(ctx, grant("g2", "c1", "u2", "read"))
	s.SaveGrant(ctx, grant("g3", "c1", "u3", "read"))
	s.CreateCode(ctx, sampleCode("h1", "g1"))
	s.CreateCode(ctx, sampleCode("h2", "g2"))
	if _, err := s.RedeemCode(ctx, "h1", base, long, nil); err != nil {
		t.Fatal(err)
	}
	s.CreateRefreshToken(ctx, refresh("r1", "g1", base.Add(48*time.Hour)))
	// A later token with a shorter lifetime (the ttl was lowered) does not shorten the bound.
	if _, err := s.RotateRefreshToken(ctx, "r1", refresh("r2", "g1", base.Add(48*time.Hour)), base.Add(time.Hour), base.Add(time.Hour+time.Second), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RedeemCode(ctx, "h2", base, base.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	// The template asks for a second: the records still last as long as the tokens.
	revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{ClientID: "c1"}, rescind.Revocation{RevokedAt: base.Add(2 * time.Hour),
		ExpiresAt: base.Add(2*time.Hour + time.Second), Actor: "test", Reason: "short template"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Time{"g1": long, "g2": base.Add(2 * time.Hour), "g3": base.Add(2 * time.Hour)} // g2, g3: nothing alive
	if len(revs) != 3 {
		t.Fatalf("RevokeGrants wrote %+v; want 3 grant records", revs)
	}
	for _, r := range revs {
		if r.Kind != rescind.RevokeGrant || !r.ExpiresAt.Equal(want[r.Key]) || !r.RevokedAt.Equal(base.Add(2*time.Hour)) {
			t.Errorf("record %s: kind %s, revoked %v, expires %v; want expiry %v", r.Key, r.Kind, r.RevokedAt, r.ExpiresAt, want[r.Key])
		}
	}
	stored, _ := s.RevocationsSince(ctx, 0, base, 10)
	for _, r := range stored {
		if !r.ExpiresAt.Equal(want[r.Key]) {
			t.Errorf("stored record %s expires %v, want %v", r.Key, r.ExpiresAt, want[r.Key])
		}
	}
	// Deleting the client revokes its grants the same way.
	s.CreateClient(ctx, sampleClient("c2"))
	s.SaveGrant(ctx, grant("g4", "c2", "u1", "read"))
	s.CreateCode(ctx, sampleCode("h4", "g4"))
	s.RedeemCode(ctx, "h4", base, long.Add(time.Hour), nil)
	s.RecordGrantTokenStatus(ctx, "g4", "list-b", 5, long.Add(time.Hour))
	cut := base.Add(31 * 24 * time.Hour)
	revs, err = s.DeleteClient(ctx, "c2", base.Add(3*time.Hour), rescind.Revocation{Kind: rescind.RevokeClient, Key: "c2", ClientID: "c2",
		RevokedAt: cut, ExpiresAt: cut, Actor: "admin", Reason: "client deleted"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[rescind.RevocationKind]rescind.Revocation{}
	for _, r := range revs {
		kinds[r.Kind] = r
	}
	if g := kinds[rescind.RevokeGrant]; len(revs) != 3 || g.Key != "g4" || !g.ExpiresAt.Equal(long.Add(time.Hour)) || !g.RevokedAt.Equal(base.Add(3*time.Hour)) ||
		kinds[rescind.RevokeStatus].StatusIdx != 5 || !kinds[rescind.RevokeClient].ExpiresAt.Equal(cut) {
		t.Fatalf("DeleteClient wrote %+v; want g4's record (revoked at the deletion, until its token's expiry), its status entry and the client's", revs)
	}
	if audit, _ := s.ListAudit(ctx, 1); len(audit) != 1 || audit[0].Target != "c2" || !audit[0].At.Equal(base.Add(3*time.Hour)) {
		t.Fatalf("deletion audit = %+v; want one entry for c2 dated at the deletion", audit)
	}
}

// testRevokeAgain: revoking a revoked grant whose record is intact writes nothing; if its
// record is gone (deleted early, as older versions did) while its tokens may be alive, revoking
// again writes it back until their expiry.
func testRevokeAgain(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	long := base.Add(24 * time.Hour)
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	s.CreateCode(ctx, sampleCode("h1", "g1"))
	if _, err := s.RedeemCode(ctx, "h1", base, long, nil); err != nil {
		t.Fatal(err)
	}
	s.RecordGrantTokenStatus(ctx, "g1", "list-a", 3, long)
	rev := rescind.Revocation{RevokedAt: base, Actor: "test", Reason: "first"}
	if revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g1"}, rev); err != nil || len(revs) != 2 {
		t.Fatalf("first revocation = %+v, %v", revs, err)
	}
	again := rescind.Revocation{RevokedAt: base.Add(time.Hour), Actor: "test", Reason: "again"}
	if revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{UserID: "u1"}, again); err != nil || len(revs) != 0 {
		t.Fatalf("revoking again with the record intact wrote %+v, %v; want nothing", revs, err)
	}
	// The janitor of a version that sized records from the configuration deleted it early.
	if _, err := s.DeleteExpiredRevocations(ctx, long.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{UserID: "u1"}, again)
	if err != nil {
		t.Fatal(err)
	}
	var g, st rescind.Revocation
	for _, r := range revs {
		switch r.Kind {
		case rescind.RevokeGrant:
			g = r
		case rescind.RevokeStatus:
			st = r
		}
	}
	if g.Key != "g1" || !g.ExpiresAt.Equal(long) || !g.RevokedAt.Equal(base) || st.StatusIdx != 3 || !st.ExpiresAt.Equal(long) {
		t.Fatalf("revoking again after the record was lost wrote %+v; want g1's record (revoked at its revocation, until its token's expiry) and its status entry", revs)
	}
	if stored, _ := s.RevocationsSince(ctx, 0, base.Add(2*time.Hour), 10); len(stored) != 2 {
		t.Fatalf("stored after revoking again: %+v", stored)
	}
	// Once its tokens have expired, there is nothing to write.
	late := rescind.Revocation{RevokedAt: long.Add(time.Second)}
	s.DeleteExpiredRevocations(ctx, long.Add(time.Hour))
	if revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g1"}, late); err != nil || len(revs) != 0 {
		t.Fatalf("revoking a grant whose tokens expired wrote %+v, %v", revs, err)
	}
}

func testBulkRevocation(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	for _, g := range []rescind.Grant{grant("g1", "c1", "alice", "read"), grant("g2", "c2", "alice", "read"), grant("g3", "c1", "bob", "read")} {
		s.SaveGrant(ctx, g)
		s.CreateRefreshToken(ctx, refresh("rt-"+g.ID, g.ID, base.Add(time.Hour)))
	}
	rev := rescind.Revocation{RevokedAt: base, ExpiresAt: base.Add(time.Hour), Actor: "admin", Reason: "test"}
	if _, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{}, rev); err == nil {
		t.Fatal("RevokeGrants with an empty filter revoked everything")
	}
	revs, n, err := s.RevokeGrants(ctx, rescind.GrantFilter{UserID: "alice", ClientID: "c1"}, rev)
	if err != nil || len(revs) != 1 || revs[0].Key != "g1" || revs[0].Kind != rescind.RevokeGrant || revs[0].ClientID != "c1" || n != 1 {
		t.Fatalf("RevokeGrants(alice, c1) = %+v, %d, %v", revs, n, err)
	}
	if _, err := s.GetRefreshToken(ctx, "rt-g1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatal("revoked grant's refresh token survives")
	}
	if g, _ := s.GetGrant(ctx, "g1"); g.RevokedAt.IsZero() {
		t.Fatal("grant not marked revoked")
	}
	revs, _, _ = s.RevokeGrants(ctx, rescind.GrantFilter{UserID: "alice"}, rev)
	if len(revs) != 1 || revs[0].Key != "g2" {
		t.Fatalf("RevokeGrants(alice) = %+v; want only g2 (g1 already revoked)", revs)
	}
	revs, _, _ = s.RevokeGrants(ctx, rescind.GrantFilter{ClientID: "c1"}, rev)
	if len(revs) != 1 || revs[0].Key != "g3" {
		t.Fatalf("RevokeGrants(c1) = %+v; want g3", revs)
	}
	stored, _ := s.RevocationsSince(ctx, 0, base, 100)
	if len(stored) != 3 {
		t.Fatalf("%d revocation records; want 3", len(stored))
	}
	audit, err := s.ListAudit(ctx, 10)
	if err != nil || len(audit) != 3 || audit[0].Target != "g3" || audit[0].Actor != "admin" || audit[0].Action != "revoke_grant" || audit[0].Reason != "test" {
		t.Fatalf("audit = %+v, %v", audit, err)
	}
	// Retention: entries older than the cut are deleted, newer ones kept.
	if n, err := s.DeleteAuditBefore(ctx, base); err != nil || n != 0 {
		t.Fatalf("DeleteAuditBefore(at the entries' time) = %d, %v; want 0", n, err)
	}
	if n, err := s.DeleteAuditBefore(ctx, base.Add(time.Nanosecond)); err != nil || n != 3 {
		t.Fatalf("DeleteAuditBefore(after) = %d, %v; want 3", n, err)
	}
	// A new consent after revocation makes a new grant.
	g, _ := s.SaveGrant(ctx, grant("g5", "c1", "alice", "read"))
	if g.ID != "g5" {
		t.Fatalf("consent after revocation reused revoked grant %s", g.ID)
	}
}

func testDeleteCascades(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	s.CreateClient(ctx, sampleClient("c1"))
	s.CreateUser(ctx, rescind.User{ID: "u1", Username: "u1", PasswordHash: "h", CreatedAt: base})
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	s.SaveGrant(ctx, grant("g2", "c2", "u1", "read"))
	s.CreateRefreshToken(ctx, refresh("r1", "g1", base.Add(time.Hour)))
	until := base.Add(time.Hour)
	if _, err := s.DeleteClient(ctx, "c1", base, rescind.Revocation{Kind: rescind.RevokeClient, Key: "c1", ClientID: "c1", RevokedAt: until, ExpiresAt: until}); err != nil {
		t.Fatal(err)
	}
	if g, _ := s.GetGrant(ctx, "g1"); g.RevokedAt.IsZero() {
		t.Fatal("deleting a client left its grant active")
	}
	if _, err := s.GetRefreshToken(ctx, "r1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatal("deleting a client left its refresh token")
	}
	revs, _, err := s.DeleteUser(ctx, "u1", rescind.Revocation{RevokedAt: base, ExpiresAt: until, Actor: "admin", Reason: "user deleted"}, rescind.SessionEnd{})
	if err != nil || len(revs) != 1 || revs[0].Key != "g2" {
		t.Fatalf("DeleteUser = %+v, %v; want g2 revoked", revs, err)
	}
	if _, err := s.GetUser(ctx, "u1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatal("user not deleted")
	}
	if _, _, err := s.DeleteUser(ctx, "u1", rescind.Revocation{}, rescind.SessionEnd{}); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("DeleteUser(missing): %v", err)
	}
}

// testGrantTokenStatus: revoking a grant writes a status record for each status list entry
// recorded for it and not yet purged (a token that expired a moment ago may still be accepted
// by a resource server whose clock is behind), and the record fields round-trip.
func testGrantTokenStatus(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	s.SaveGrant(ctx, grant("g2", "c1", "u2", "read"))
	for i, exp := range []time.Time{base.Add(time.Hour), base.Add(-time.Second), base.Add(2 * time.Hour), base.Add(-time.Hour)} {
		if err := s.RecordGrantTokenStatus(ctx, "g1", "list-a", int64(i*7), exp); err != nil {
			t.Fatal(err)
		}
	}
	s.RecordGrantTokenStatus(ctx, "g2", "list-a", 99, base.Add(time.Hour))
	if n, err := s.DeleteExpired(ctx, base.Add(-time.Minute)); err != nil || n != 1 { // the janitor, with a minute's grace
		t.Fatalf("DeleteExpired = %d, %v; want 1 (index 21)", n, err)
	}
	revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g1"}, rescind.Revocation{RevokedAt: base, ExpiresAt: base.Add(time.Hour), Subject: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	var idx []int64
	for _, r := range revs {
		if r.Kind == rescind.RevokeStatus {
			if r.StatusList != "list-a" || r.ClientID != "c1" {
				t.Fatalf("status record %+v", r)
			}
			idx = append(idx, r.StatusIdx)
		}
	}
	slices.Sort(idx)
	if fmt.Sprint(idx) != "[0 7 14]" {
		t.Fatalf("status entries flipped: %v; want [0 7 14] (those of g1 not purged)", idx)
	}
	stored, _ := s.RevocationsSince(ctx, 0, base, 100)
	got := map[string]rescind.Revocation{}
	for _, r := range stored {
		got[r.Key] = r
	}
	if r := got["list-a:14"]; r.Kind != rescind.RevokeStatus || r.StatusIdx != 14 || !r.ExpiresAt.Equal(base.Add(2*time.Hour)) {
		t.Fatalf("stored status record = %+v", r)
	}
	if r := got["g1"]; r.Subject != "u1" || r.StatusList != "" || r.StatusIdx != -1 {
		t.Fatalf("stored grant record = %+v", r)
	}
	// The grant is revoked: an entry of a token issued under it now is refused, as is one of a
	// grant that does not exist.
	for _, g := range []string{"g1", "nope"} {
		if err := s.RecordGrantTokenStatus(ctx, g, "list-a", 50, base.Add(time.Hour)); !errors.Is(err, rescind.ErrNotFound) {
			t.Fatalf("RecordGrantTokenStatus(%s) = %v, want ErrNotFound", g, err)
		}
	}
	if revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g1"}, rescind.Revocation{RevokedAt: base}); err != nil || len(revs) != 0 {
		t.Fatalf("revoking g1 again wrote %+v, %v; want nothing (no entry was recorded after its revocation)", revs, err)
	}
	if n, err := s.DeleteExpired(ctx, base.Add(3*time.Hour)); err != nil || n < 3 {
		t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
}

// testStatusRacesRevocation: an instance records the status list entry of a grant's token while
// another revokes the grant. Whichever commits first, the entry is never left valid: either the
// recording is refused (ErrNotFound: the token is not issued), or the revocation flips it.
func testStatusRacesRevocation(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	a, b := open(), open()
	recorded, refused := 0, 0
	for round := range 40 {
		g := fmt.Sprintf("g%d", round)
		if _, err := a.SaveGrant(ctx, grant(g, "c1", "u1", "read")); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var recErr, revErr error
		var revs []rescind.Revocation
		wg.Add(2)
		go func() {
			defer wg.Done()
			recErr = a.RecordGrantTokenStatus(ctx, g, "list-r", int64(round), base.Add(time.Hour))
		}()
		go func() {
			defer wg.Done()
			revs, _, revErr = b.RevokeGrants(ctx, rescind.GrantFilter{GrantID: g}, rescind.Revocation{RevokedAt: base})
		}()
		wg.Wait()
		if revErr != nil {
			t.Fatalf("round %d: revoking: %v", round, revErr)
		}
		flipped := slices.ContainsFunc(revs, func(r rescind.Revocation) bool {
			return r.Kind == rescind.RevokeStatus && r.StatusIdx == int64(round)
		})
		switch {
		case recErr == nil && flipped:
			recorded++
		case errors.Is(recErr, rescind.ErrNotFound) && !flipped:
			refused++
		default:
			t.Fatalf("round %d: recording the entry: %v; flipped by the revocation: %t; want recorded and flipped, or refused", round, recErr, flipped)
		}
	}
	t.Logf("%d entries recorded before the revocation (and flipped by it), %d refused after it", recorded, refused)
}
