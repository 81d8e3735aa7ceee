package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// testRegistrationTokens: initial access tokens round-trip (their scopes too: nil, none given,
// told from empty, none allowed), are found by hash only, listed oldest first, deleted by id, and purged once expired; a taken id or hash is ErrAlreadyExists.
func testRegistrationTokens(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if list, err := s.ListRegistrationTokens(ctx); err != nil || len(list) != 0 {
		t.Fatalf("ListRegistrationTokens on an empty store = %v, %v", list, err)
	}
	a := rescind.RegistrationToken{ID: "rt-a", Hash: "hash-a", CreatedAt: base, ExpiresAt: base.Add(24 * time.Hour)}
	b := rescind.RegistrationToken{ID: "rt-b", Hash: "hash-b", CreatedAt: base.Add(time.Second), ExpiresAt: base.Add(time.Hour)}
	for _, rt := range []rescind.RegistrationToken{b, a} {
		if err := s.CreateRegistrationToken(ctx, rt); err != nil {
			t.Fatal(err)
		}
	}
	for _, dup := range []rescind.RegistrationToken{{ID: "rt-a", Hash: "other", CreatedAt: base, ExpiresAt: base},
		{ID: "rt-c", Hash: "hash-b", CreatedAt: base, ExpiresAt: base}} {
		if err := s.CreateRegistrationToken(ctx, dup); !errors.Is(err, rescind.ErrAlreadyExists) {
			t.Fatalf("CreateRegistrationToken(%+v) = %v, want ErrAlreadyExists", dup, err)
		}
	}
	got, err := s.GetRegistrationToken(ctx, "hash-a")
	if err != nil || got.ID != "rt-a" || !got.CreatedAt.Equal(base) || !got.ExpiresAt.Equal(base.Add(24*time.Hour)) {
		t.Fatalf("GetRegistrationToken(hash-a) = %+v, %v", got, err)
	}
	if _, err := s.GetRegistrationToken(ctx, "rt-a"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("a token was found by its id: %v", err)
	}
	// Its scopes round-trip, none given (nil) told from none allowed (empty).
	for _, tc := range []struct {
		id     string
		scopes []string
	}{{"rt-s1", []string{"read", "mcp:tools"}}, {"rt-s2", []string{}}, {"rt-s3", nil}} {
		if err := s.CreateRegistrationToken(ctx, rescind.RegistrationToken{ID: tc.id, Hash: "hash-" + tc.id, CreatedAt: base,
			ExpiresAt: base.Add(time.Minute), Scopes: tc.scopes}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetRegistrationToken(ctx, "hash-"+tc.id)
		if err != nil || !slices.Equal(got.Scopes, tc.scopes) || (got.Scopes == nil) != (tc.scopes == nil) {
			t.Fatalf("GetRegistrationToken(%s) = %+v, %v; want scopes %#v", tc.id, got, err, tc.scopes)
		}
		if err := s.DeleteRegistrationToken(ctx, tc.id); err != nil {
			t.Fatal(err)
		}
	}
	// And its allowed resources.
	res := []string{"https://api.example", "urn:example:photos"}
	if err := s.CreateRegistrationToken(ctx, rescind.RegistrationToken{ID: "rt-r", Hash: "hash-rt-r", CreatedAt: base,
		ExpiresAt: base.Add(time.Minute), AllowedResources: res}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetRegistrationToken(ctx, "hash-rt-r"); err != nil || !slices.Equal(got.AllowedResources, res) {
		t.Fatalf("GetRegistrationToken(rt-r) = %+v, %v; want allowed resources %v", got, err, res)
	}
	if got, err := s.GetRegistrationToken(ctx, "hash-a"); err != nil || len(got.AllowedResources) != 0 {
		t.Fatalf("a token without allowed resources = %+v, %v", got, err)
	}
	s.DeleteRegistrationToken(ctx, "rt-r")
	list, err := s.ListRegistrationTokens(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "rt-a" || list[1].ID != "rt-b" {
		t.Fatalf("ListRegistrationTokens = %+v, %v; want rt-a then rt-b", list, err)
	}
	if n, err := s.DeleteExpired(ctx, base.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1 (rt-b)", n, err)
	}
	if _, err := s.GetRegistrationToken(ctx, "hash-b"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("an expired registration token survived the purge: %v", err)
	}
	if err := s.DeleteRegistrationToken(ctx, "rt-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRegistrationToken(ctx, "hash-a"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("a deleted registration token is found: %v", err)
	}
	if err := s.DeleteRegistrationToken(ctx, "rt-a"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("DeleteRegistrationToken(missing) = %v, want ErrNotFound", err)
	}
}

// testResources: the resources a code and a refresh token were issued for round-trip, through
// redemption and rotation; none is an empty list.
func testResources(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	s.SaveGrant(ctx, grant("g1", "c1", "u1", "read"))
	res := []string{"https://api.example", "urn:example:photos"}
	c := sampleCode("h1", "g1")
	c.Resources = res
	if err := s.CreateCode(ctx, c); err != nil {
		t.Fatal(err)
	}
	s.CreateCode(ctx, sampleCode("h2", "g1"))
	if got, err := s.GetCode(ctx, "h1"); err != nil || !slices.Equal(got.Resources, res) {
		t.Fatalf("GetCode = %+v, %v; want resources %v", got, err, res)
	}
	if got, err := s.RedeemCode(ctx, "h1", base, base.Add(time.Hour), nil); err != nil || !slices.Equal(got.Resources, res) {
		t.Fatalf("RedeemCode = %+v, %v; want resources %v", got, err, res)
	}
	if got, err := s.GetCode(ctx, "h2"); err != nil || len(got.Resources) != 0 {
		t.Fatalf("a code without resources = %+v, %v", got, err)
	}
	rt := refresh("r1", "g1", base.Add(time.Hour))
	rt.Resources = res
	if err := s.CreateRefreshToken(ctx, rt); err != nil {
		t.Fatal(err)
	}
	next := refresh("r2", "g1", base.Add(time.Hour))
	next.Resources = res[:1]
	old, err := s.RotateRefreshToken(ctx, "r1", next, base, base.Add(time.Hour), nil)
	if err != nil || !slices.Equal(old.Resources, res) {
		t.Fatalf("RotateRefreshToken = %+v, %v; want the old token's resources", old, err)
	}
	if got, err := s.GetRefreshToken(ctx, "r2"); err != nil || !slices.Equal(got.Resources, res[:1]) {
		t.Fatalf("GetRefreshToken(r2) = %+v, %v; want %v", got, err, res[:1])
	}
}

// testGrantAudience: a grant's audience is stored, widened (never narrowed) by a later consent,
// and carried by the records of its revocation (the grant's and its status entries'), also
// when a revoked grant's record is written again; the template's audience does not replace it.
func testGrantAudience(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	g := grant("g1", "c1", "u1", "read")
	g.Audience = []string{"https://as.example"}
	if got, err := s.SaveGrant(ctx, g); err != nil || !slices.Equal(got.Audience, g.Audience) {
		t.Fatalf("SaveGrant = %+v, %v", got, err)
	}
	wider := grant("g2", "c1", "u1", "read")
	wider.Audience = []string{"https://api.example", "https://as.example"}
	got, err := s.SaveGrant(ctx, wider)
	want := []string{"https://as.example", "https://api.example"}
	if err != nil || got.ID != "g1" || !slices.Equal(got.Audience, want) {
		t.Fatalf("widening SaveGrant = %+v, %v; want g1 with %v", got, err, want)
	}
	if got, _ := s.GetGrant(ctx, "g1"); !slices.Equal(got.Audience, want) {
		t.Fatalf("stored audience = %v, want %v", got.Audience, want)
	}
	legacy := grant("g3", "c2", "u1", "read") // recorded before audiences were: none
	s.SaveGrant(ctx, legacy)
	if got, _ := s.GetGrant(ctx, "g3"); len(got.Audience) != 0 {
		t.Fatalf("a grant saved without audience has %v", got.Audience)
	}
	s.CreateCode(ctx, sampleCode("h1", "g1"))
	s.RedeemCode(ctx, "h1", base, base.Add(time.Hour), nil)
	s.RecordGrantTokenStatus(ctx, "g1", "list-a", 3, base.Add(time.Hour))
	revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{UserID: "u1"}, rescind.Revocation{RevokedAt: base,
		Audience: []string{"https://template.example"}})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range revs {
		switch {
		case r.Key == "g1" || r.Kind == rescind.RevokeStatus:
			seen++
			if !slices.Equal(r.Audience, want) {
				t.Errorf("record %s:%s has audience %v, want the grant's %v", r.Kind, r.Key, r.Audience, want)
			}
		case r.Key == "g3":
			seen++
			if len(r.Audience) != 0 {
				t.Errorf("the legacy grant's record has audience %v, want none (the issuer)", r.Audience)
			}
		}
	}
	if seen != 3 {
		t.Fatalf("records %+v; want g1, its status entry and g3", revs)
	}
	stored, _ := s.RevocationsSince(ctx, 0, base, 100)
	for _, r := range stored {
		if r.Key == "g1" && !slices.Equal(r.Audience, want) {
			t.Fatalf("stored grant record audience = %v, want %v", r.Audience, want)
		}
	}
	// Written again (its record purged early, say): the same audience.
	if n, err := s.DeleteExpiredRevocations(ctx, base.Add(2*time.Hour)); err != nil || n == 0 {
		t.Fatalf("DeleteExpiredRevocations = %d, %v", n, err)
	}
	again, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g1"}, rescind.Revocation{RevokedAt: base.Add(time.Minute)})
	if err != nil || len(again) == 0 || again[0].Key != "g1" || !slices.Equal(again[0].Audience, want) {
		t.Fatalf("revoking again = %+v, %v; want g1's record with %v", again, err, want)
	}
}

// testGrantConsentedAudience: a consent (SaveGrant) records its audience as consented as well
// as on the grant's Audience; what a code's redemption or a refresh token's rotation adds to the
// Audience (for the grant's revocation to reach it) is not consented; a later consent widens
// the consented audience. A grant saved without audience has none consented.
func testGrantConsentedAudience(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	as, api, photos := "https://as.example", "https://api.example", "urn:example:photos"
	g := grant("g1", "c1", "u1", "read")
	g.Audience = []string{as}
	if got, err := s.SaveGrant(ctx, g); err != nil || !slices.Equal(got.ConsentedAudience, []string{as}) {
		t.Fatalf("SaveGrant = %+v, %v; want consented [%s]", got, err, as)
	}
	check := func(step string, aud, consented []string) {
		t.Helper()
		got, err := s.GetGrant(ctx, "g1")
		if err != nil || !slices.Equal(got.Audience, aud) || !slices.Equal(got.ConsentedAudience, consented) {
			t.Fatalf("%s: GetGrant = audience %v consented %v, %v; want %v and %v", step, got.Audience, got.ConsentedAudience, err, aud, consented)
		}
		list, err := s.ListGrants(ctx, rescind.GrantFilter{GrantID: "g1"})
		if err != nil || len(list) != 1 || !slices.Equal(list[0].ConsentedAudience, consented) {
			t.Fatalf("%s: ListGrants = %+v, %v; want consented %v", step, list, err, consented)
		}
	}
	check("after the consent", []string{as}, []string{as})
	s.CreateCode(ctx, sampleCode("h1", "g1"))
	if _, err := s.RedeemCode(ctx, "h1", base, base.Add(time.Hour), []string{as, api}); err != nil {
		t.Fatal(err)
	}
	check("after a redemption adding "+api, []string{as, api}, []string{as})
	s.CreateRefreshToken(ctx, refresh("r1", "g1", base.Add(time.Hour)))
	if _, err := s.RotateRefreshToken(ctx, "r1", refresh("r2", "g1", base.Add(time.Hour)), base, base.Add(time.Hour), []string{as, api, photos}); err != nil {
		t.Fatal(err)
	}
	check("after a rotation adding "+photos, []string{as, api, photos}, []string{as})
	again := grant("g2", "c1", "u1", "read")
	again.Audience = []string{api}
	again.ConsentedAudience = []string{photos} // ignored: the consent's audience is Audience
	if got, err := s.SaveGrant(ctx, again); err != nil || got.ID != "g1" || !slices.Equal(got.ConsentedAudience, []string{as, api}) {
		t.Fatalf("a second consent: SaveGrant = %+v, %v; want g1 consented [%s %s]", got, err, as, api)
	}
	check("after a consent to "+api, []string{as, api, photos}, []string{as, api})
	s.SaveGrant(ctx, grant("g3", "c2", "u1", "read"))
	if got, err := s.GetGrant(ctx, "g3"); err != nil || len(got.ConsentedAudience) != 0 {
		t.Fatalf("a grant saved without audience: %+v, %v; want nothing consented", got, err)
	}
}

// testIssuanceWidensGrantAudience: RotateRefreshToken and RedeemCode add the audience they are
// given to the grant's, in their transaction (values it has are not repeated; nil adds nothing),
// so that the grant's revocation record names the audience of the token about to be issued. A
// rotation refused (reused token, revoked grant) adds nothing.
func testIssuanceWidensGrantAudience(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	as, api, photos := "https://as.example", "https://api.example", "urn:example:photos"
	g := grant("g1", "c1", "u1", "read")
	g.Audience = []string{as}
	s.SaveGrant(ctx, g)
	audience := func(id string) []string {
		t.Helper()
		got, err := s.GetGrant(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return got.Audience
	}
	s.CreateRefreshToken(ctx, refresh("r1", "g1", base.Add(time.Hour)))
	if _, err := s.RotateRefreshToken(ctx, "r1", refresh("r2", "g1", base.Add(time.Hour)), base, base.Add(time.Hour), nil); err != nil {
		t.Fatal(err)
	}
	if got := audience("g1"); !slices.Equal(got, []string{as}) {
		t.Fatalf("after a rotation adding nothing: %v, want [%s]", got, as)
	}
	if _, err := s.RotateRefreshToken(ctx, "r2", refresh("r3", "g1", base.Add(time.Hour)), base, base.Add(time.Hour), []string{as, api}); err != nil {
		t.Fatal(err)
	}
	want := []string{as, api}
	if got := audience("g1"); !slices.Equal(got, want) {
		t.Fatalf("after a rotation adding %s: %v, want %v", api, got, want)
	}
	// A reused token is refused and adds nothing.
	if _, err := s.RotateRefreshToken(ctx, "r2", refresh("r4", "g1", base.Add(time.Hour)), base, base.Add(time.Hour), []string{photos}); !errors.Is(err, rescind.ErrReused) {
		t.Fatalf("reusing r2: %v, want ErrReused", err)
	}
	if got := audience("g1"); !slices.Equal(got, want) {
		t.Fatalf("after a refused rotation: %v, want %v", got, want)
	}
	// A code's redemption adds too; a grant recorded without audience gets exactly what is given.
	s.CreateCode(ctx, sampleCode("h1", "g1"))
	if _, err := s.RedeemCode(ctx, "h1", base, base.Add(time.Hour), []string{api, photos}); err != nil {
		t.Fatal(err)
	}
	want = []string{as, api, photos}
	if got := audience("g1"); !slices.Equal(got, want) {
		t.Fatalf("after a redemption adding %s: %v, want %v", photos, got, want)
	}
	s.SaveGrant(ctx, grant("g2", "c2", "u1", "read"))
	s.CreateCode(ctx, sampleCode("h2", "g2"))
	if _, err := s.RedeemCode(ctx, "h2", base, base.Add(time.Hour), []string{as, api}); err != nil {
		t.Fatal(err)
	}
	if got := audience("g2"); !slices.Equal(got, []string{as, api}) {
		t.Fatalf("a grant without audience after a redemption adding [%s %s]: %v", as, api, got)
	}
	// The revocation's record carries the audience added.
	revs, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g1"}, rescind.Revocation{RevokedAt: base})
	if err != nil || len(revs) == 0 || revs[0].Key != "g1" || !slices.Equal(revs[0].Audience, want) {
		t.Fatalf("RevokeGrants = %+v, %v; want g1's record with %v", revs, err, want)
	}
	// A revoked grant's token is not rotated, and its audience stays.
	if _, err := s.RotateRefreshToken(ctx, "r3", refresh("r5", "g1", base.Add(time.Hour)), base, base.Add(time.Hour), []string{"urn:late"}); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("rotating a revoked grant's token: %v, want ErrNotFound", err)
	}
	if got := audience("g1"); !slices.Equal(got, want) {
		t.Fatalf("a revoked grant's audience after a refused rotation: %v, want %v", got, want)
	}
}
