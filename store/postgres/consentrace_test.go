package postgres_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/pgtest"
)

// TestConsentKeepsAudienceIssuedMeanwhile: a consent (SaveGrant) racing a code redemption that
// adds a resource to the grant's audience (RedeemCode -> RaiseGrantBound) keeps that resource:
// the consent holds the grant's row from its read to its commit, so the redemption that queued
// first is read, not overwritten, and the grant's revocation still reaches that resource server.
// Re-audit 5 #1: before, the consent wrote back the audience it had read before the redemption.
func TestConsentKeepsAudienceIssuedMeanwhile(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	s := open(t, dsn)
	base := time.Now().Truncate(time.Second)
	iss, api := "https://as.example", "https://api-a.example"
	if _, err := s.SaveGrant(ctx, rescind.Grant{ID: "g1", ClientID: "c1", UserID: "u1", Scopes: []string{"read"},
		Audience: []string{iss}, CreatedAt: base, LastUsedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateCode(ctx, rescind.AuthCode{Hash: "h1", ClientID: "c1", UserID: "u1", GrantID: "g1", RedirectURI: "https://app/cb",
		RedirectURIGiven: true, Scope: "read", Challenge: "ch", ChallengeMethod: "S256", CreatedAt: base, ExpiresAt: base.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}

	// An unrelated writer holds the grant's row for a moment (any other RaiseGrantBound does).
	holder, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	watch, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close(ctx)
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE grants SET tokens_expire_at = tokens_expire_at WHERE id = 'g1'`); err != nil {
		t.Fatal(err)
	}
	waiting := func(n int) {
		t.Helper()
		for i := 0; ; i++ {
			var c int
			if err := watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			if c >= n {
				return
			}
			if i > 200 {
				t.Fatalf("%d waiting for a lock; want %d", c, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// 1. The token endpoint redeems the code for a token with audience api (a grant from before
	// the operator limited the client: audienceToRecord = [iss api]). It queues for the row.
	redeemed := make(chan error, 1)
	go func() {
		_, err := s.RedeemCode(ctx, "h1", base, base.Add(time.Hour), []string{iss, api})
		redeemed <- err
	}()
	waiting(1)
	// 2. The person consents again (another scope) meanwhile: SaveGrant reads audience [iss],
	// then queues its UPDATE behind the redemption.
	saved := make(chan error, 1)
	go func() {
		_, err := s.SaveGrant(ctx, rescind.Grant{ID: "g2", ClientID: "c1", UserID: "u1", Scopes: []string{"write"},
			Audience: []string{iss}, CreatedAt: base, LastUsedAt: base})
		saved <- err
	}()
	waiting(2)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-redeemed; err != nil {
		t.Fatalf("RedeemCode: %v", err)
	}
	if err := <-saved; err != nil {
		t.Fatalf("SaveGrant: %v", err)
	}
	g, err := s.GetGrant(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after the redemption (token for %s issued) and the consent: audience %v, consented %v, scopes %v", api, g.Audience, g.ConsentedAudience, g.Scopes)
	revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g1"}, rescind.Revocation{RevokedAt: base.Add(time.Second), Actor: "test", Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	rs := rescind.Client{ID: "rs-a", ResourceServer: true, Resources: []string{api}}
	for _, r := range revs {
		t.Logf("revocation record kind=%s audience=%v; resource server of %s may receive it: %v", r.Kind, r.Audience, api, rescind.MayReceive(rs, r, iss))
	}
	reach := false
	for _, r := range revs {
		reach = reach || rescind.MayReceive(rs, r, iss)
	}
	if !reach {
		t.Errorf("the grant's revocation does not reach the resource server of %s", api)
	}
	if !slices.Contains(g.Audience, api) {
		t.Fatalf("the grant's audience lost %s, the audience of a token issued under it: %v", api, g.Audience)
	}
}
