// Package storetest is the conformance suite for rescind.Store. Every backend runs it unchanged:
//
//	func TestConformance(t *testing.T) {
//		storetest.RunTests(t, func(t *testing.T) func() rescind.Store { ... })
//	}
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

// Opener creates a fresh, empty database for test t and returns a function that opens a new
// handle to it each time it is called, as separate server instances would; the handles must be
// closed when t ends (for example with t.Cleanup).
type Opener func(t *testing.T) (open func() rescind.Store)

// RowsFault breaks row iteration in a backend, for the cases that show a failure in the
// middle of a result leaves nothing half-done. It arms a fault in s, a store the Opener
// returned: from then on, the n-th query (counting from 0) that reads rows delivers at most one
// row and then fails with err, as a connection lost in the middle of a result would. disarm
// ends the fault and reports whether that query came.
type RowsFault func(s rescind.Store, n int, err error) (disarm func() (reached bool))

// Option changes what RunTests runs.
type Option func(*options)

type options struct {
	rowsFault RowsFault
	inTx      InTx
}

// WithRowsFault gives the suite the backend's RowsFault. Without it the rows-failure cases are
// skipped.
func WithRowsFault(f RowsFault) Option {
	return func(o *options) { o.rowsFault = f }
}

// RunTests runs the conformance suite.
func RunTests(t *testing.T, opener Opener, opts ...Option) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	tests := []struct {
		name string
		run  func(t *testing.T, s rescind.Store)
	}{
		{"Clients", testClients},
		{"UpdateClient", testUpdateClient},
		{"DeleteClientRevokes", testDeleteClientRevokes},
		{"RevokeDurableAndIdempotent", testRevoke},
		{"RevokeMerge", testRevokeMerge},
		{"RevocationsSincePaging", testRevocationsSincePaging},
		{"DeleteExpiredRevocations", testDeleteExpired},
		{"ConcurrentRevoke", testConcurrentRevoke},
		{"Keys", testKeys},
		{"RevocationAudience", testRevocationAudience},
		{"StatusLists", testStatusLists},
		{"RegistrationTokens", testRegistrationTokens},
		{"Resources", testResources},
		{"GrantAudience", testGrantAudience},
		{"IssuanceWidensGrantAudience", testIssuanceWidensGrantAudience},
		{"GrantConsentedAudience", testGrantConsentedAudience},
		{"ScanRevocations", testScanRevocations},
		{"RevokeBatchDuplicates", testRevokeBatchDuplicates},
		{"RevokeBatchMerges", testRevokeBatchMerges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, opener(t)())
		})
	}
	for _, tc := range grantTests() {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, opener(t)) })
	}
	for _, tc := range keyTests() {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, opener(t)) })
	}
	for _, tc := range dpopTests() {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, opener(t)) })
	}
	for _, tc := range sessionTests() {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, opener(t)) })
	}
	for _, tc := range ssfTests() {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, opener(t)) })
	}
	t.Run("SSFSubjectsGoWithTheirStream", func(t *testing.T) { testSSFSubjectsGoWithTheirStream(t, opener(t)(), o.inTx) })
	t.Run("SSFAppendOrderedWithStreamChanges", func(t *testing.T) {
		if o.inTx == nil {
			t.Skip("the backend gives no InTx (WithInTx)")
		}
		testSSFAppendOrderedWithChanges(t, opener(t)(), o.inTx)
	})
	t.Run("SSFStreamsLockedInOneOrder", func(t *testing.T) {
		if o.inTx == nil {
			t.Skip("the backend gives no InTx (WithInTx)")
		}
		testSSFLockOrder(t, opener(t)(), o.inTx)
	})
	for _, tc := range outboxTests() {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, opener(t), o) })
	}
	for _, tc := range rowsFaultTests() {
		t.Run(tc.name, func(t *testing.T) {
			if o.rowsFault == nil {
				t.Skip("the backend gives no RowsFault (WithRowsFault)")
			}
			tc.run(t, opener(t)(), o.rowsFault)
		})
	}
	t.Run("InstancesSeeEachOthersWrites", func(t *testing.T) { testInstancesShare(t, opener(t)) })
	for _, tc := range oidcTests() {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, opener(t)) })
	}
	t.Run("ClientChangesAcrossInstances", func(t *testing.T) { testClientChangesAcrossInstances(t, opener(t)) })
	t.Run("PollingMissesNoConcurrentRevocation", func(t *testing.T) { testPollingOrder(t, opener(t)) })
}

// base is a fixed instant with a non-zero nanosecond part, to catch backends that truncate.
var base = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.UTC)

func sampleClient(id string) rescind.Client {
	return rescind.Client{
		ID: id, Name: "App " + id, SecretHash: "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$aGFzaA",
		GrantTypes: []string{rescind.GrantClientCredentials}, Scopes: []string{"read", "write"},
		RedirectURIs: []string{"https://app.example/cb"}, TokenTTL: 90 * time.Minute, CreatedAt: base, AllowPlainPKCE: true,
		TokenFormat: rescind.TokenFormatJWT, ResourceServer: true, Resources: []string{"https://api.example", "urn:example:photos"},
		AllowInsecureRedirect: true, FirstParty: true, AllowedResources: []string{"https://api.example", "https://other.example/v1"},
		Registration: rescind.RegistrationDynamic, RegistrationTokenHash: "5f2b0c", ScopeLimit: []string{"read"},
		IDTokenAlg:             rescind.AlgES256,
		PostLogoutRedirectURIs: []string{"https://app.example/bye", "https://app.example/bye2"},
		BackchannelLogoutURI:   "https://app.example/backchannel", BackchannelLogoutSessionRequired: true,
	}
}

// sameLimit compares two ScopeLimits, telling nil (no limit) from empty (no scope allowed).
func sameLimit(a, b []string) bool { return (a == nil) == (b == nil) && slices.Equal(a, b) }

func equalClient(a, b rescind.Client) bool {
	return a.ID == b.ID && a.Name == b.Name && a.SecretHash == b.SecretHash && a.Public == b.Public &&
		a.PreviousSecretHash == b.PreviousSecretHash && a.PreviousSecretExpiresAt.Equal(b.PreviousSecretExpiresAt) &&
		slices.Equal(a.GrantTypes, b.GrantTypes) && slices.Equal(a.Scopes, b.Scopes) &&
		slices.Equal(a.RedirectURIs, b.RedirectURIs) && a.TokenTTL == b.TokenTTL && a.CreatedAt.Equal(b.CreatedAt) &&
		a.AllowPlainPKCE == b.AllowPlainPKCE && a.TokenFormat == b.TokenFormat && a.ResourceServer == b.ResourceServer &&
		slices.Equal(a.Resources, b.Resources) && a.AllowInsecureRedirect == b.AllowInsecureRedirect && a.FirstParty == b.FirstParty &&
		slices.Equal(a.AllowedResources, b.AllowedResources) && a.Registration == b.Registration &&
		a.RegistrationTokenHash == b.RegistrationTokenHash && a.RequireDPoP == b.RequireDPoP &&
		a.IDTokenAlg == b.IDTokenAlg && slices.Equal(a.PostLogoutRedirectURIs, b.PostLogoutRedirectURIs) &&
		a.BackchannelLogoutURI == b.BackchannelLogoutURI && a.BackchannelLogoutSessionRequired == b.BackchannelLogoutSessionRequired &&
		sameLimit(a.ScopeLimit, b.ScopeLimit)
}

func testClients(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if _, err := s.GetClient(ctx, "missing"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetClient(missing) err = %v, want ErrNotFound", err)
	}
	list, err := s.ListClients(ctx)
	if err != nil || len(list) != 0 {
		t.Fatalf("ListClients on empty store = %v, %v", list, err)
	}
	a := sampleClient("a")
	b := sampleClient("b")
	b.Public, b.SecretHash, b.Scopes, b.RedirectURIs, b.TokenTTL, b.AllowPlainPKCE, b.TokenFormat = true, "", nil, nil, 0, false, ""
	b.ResourceServer, b.Resources, b.AllowInsecureRedirect = false, nil, false
	b.IDTokenAlg, b.PostLogoutRedirectURIs, b.BackchannelLogoutURI, b.BackchannelLogoutSessionRequired = "", nil, "", false
	b.AllowedResources, b.Registration, b.RegistrationTokenHash, b.ScopeLimit = nil, rescind.RegistrationAdmin, "", nil
	b.CreatedAt = base.Add(time.Second)
	for _, c := range []rescind.Client{b, a} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatalf("CreateClient(%s): %v", c.ID, err)
		}
	}
	if err := s.CreateClient(ctx, a); !errors.Is(err, rescind.ErrAlreadyExists) {
		t.Fatalf("CreateClient(duplicate) err = %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetClient(ctx, "a")
	if err != nil || !equalClient(got, a) {
		t.Fatalf("GetClient(a) = %+v, %v; want %+v", got, err, a)
	}
	got, err = s.GetClient(ctx, "b")
	if err != nil || !got.Public || got.SecretHash != "" || len(got.Scopes) != 0 || got.TokenFormat != rescind.TokenFormatOpaque ||
		got.ResourceServer || len(got.Resources) != 0 || got.AllowInsecureRedirect || len(got.AllowedResources) != 0 ||
		got.Registration != rescind.RegistrationAdmin || got.RegistrationTokenHash != "" ||
		got.IDTokenAlg != "" || got.IDTokenAlgorithm() != rescind.AlgRS256 ||
		len(got.PostLogoutRedirectURIs) != 0 || got.BackchannelLogoutURI != "" || got.BackchannelLogoutSessionRequired || got.ScopeLimit != nil {
		t.Fatalf("GetClient(b) = %+v, %v", got, err)
	}
	list, err = s.ListClients(ctx)
	if err != nil || len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("ListClients = %+v, %v; want a then b (creation order)", list, err)
	}
}

// testUpdateClient: an update writes the fields it gives and keeps every other one as stored (the
// secrets included); a rotation makes the stored secret the previous one, until its end, or
// drops it; an unknown client is ErrNotFound and creates nothing.
func testUpdateClient(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	c := sampleClient("u")
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.GetClient(ctx, "u"); !got.PreviousSecretExpiresAt.IsZero() || got.PreviousSecretHash != "" {
		t.Fatalf("a new client has a previous secret: %+v", got)
	}
	check := func(step string, got rescind.Client, err error, want rescind.Client) {
		t.Helper()
		if err != nil || !equalClient(got, want) {
			t.Fatalf("%s returned %+v, %v\nwant %+v", step, got, err, want)
		}
		if stored, err := s.GetClient(ctx, want.ID); err != nil || !equalClient(stored, want) {
			t.Fatalf("after %s the store holds %+v, %v\nwant %+v", step, stored, err, want)
		}
	}
	name, scopes, uris, ttl := "Renamed", []string{"read"}, []string{"https://new.example/cb"}, time.Minute
	want := c
	want.Name, want.Scopes, want.RedirectURIs, want.TokenTTL = name, scopes, uris, ttl
	got, err := s.UpdateClient(ctx, "u", rescind.ClientUpdate{Name: &name, Scopes: &scopes, RedirectURIs: &uris, TokenTTL: &ttl})
	check("UpdateClient (every field)", got, err, want)
	none := time.Duration(0)
	want.TokenTTL = 0
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{TokenTTL: &none})
	check("UpdateClient (the ttl back to the default)", got, err, want)
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{})
	check("UpdateClient (nothing)", got, err, want)
	// The flags, each alone: the other keeps its stored value.
	yes, no := true, false
	want.RequireDPoP = true
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{RequireDPoP: &yes})
	check("UpdateClient (require DPoP)", got, err, want)
	want.FirstParty = false
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{FirstParty: &no})
	check("UpdateClient (not first-party)", got, err, want)
	want.FirstParty, want.RequireDPoP = true, false
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{FirstParty: &yes, RequireDPoP: &no})
	check("UpdateClient (both flags)", got, err, want)
	// What a self-registered client's own update (RFC 7592) and its metadata document change,
	// and the resources a client may request (RFC 8707): each written, the rest kept.
	grants, allowed := []string{rescind.GrantAuthorizationCode}, []string{"https://api.example/", "urn:example:only"}
	format, insecure := rescind.TokenFormatJWT, !c.AllowInsecureRedirect
	if c.TokenFormat == rescind.TokenFormatJWT {
		format = rescind.TokenFormatOpaque
	}
	want.GrantTypes, want.TokenFormat, want.AllowInsecureRedirect, want.AllowedResources = grants, format, insecure, allowed
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{GrantTypes: &grants, TokenFormat: &format,
		AllowInsecureRedirect: &insecure, AllowedResources: &allowed})
	check("UpdateClient (grant types, token format, insecure redirects, allowed resources)", got, err, want)
	// The OpenID Connect fields, together and one alone.
	alg, bye, bcl := rescind.AlgEdDSA, []string{"https://new.example/bye"}, "https://new.example/bcl"
	want.IDTokenAlg, want.PostLogoutRedirectURIs, want.BackchannelLogoutURI, want.BackchannelLogoutSessionRequired = alg, bye, bcl, false
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{IDTokenAlg: &alg, PostLogoutRedirectURIs: &bye, BackchannelLogoutURI: &bcl,
		BackchannelLogoutSessionRequired: &no})
	check("UpdateClient (OpenID Connect fields)", got, err, want)
	empty := ""
	want.BackchannelLogoutURI = ""
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{BackchannelLogoutURI: &empty})
	check("UpdateClient (no back-channel logout)", got, err, want)
	// An operator's scope limit: none allowed (empty, not nil), then removed (nil), then one;
	// the client's own scopes are kept each time.
	noScope, noLimit, oneScope := []string{}, []string(nil), []string{"write"}
	for _, step := range []struct {
		name  string
		limit *[]string
	}{{"empty scope limit", &noScope}, {"no scope limit", &noLimit}, {"one-scope limit", &oneScope}} {
		want.ScopeLimit = *step.limit
		got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{ScopeLimit: step.limit})
		check("UpdateClient ("+step.name+")", got, err, want)
	}

	first, second := "$argon2id$v=19$m=64,t=1,p=1$bmV3$bmV3", "$argon2id$v=19$m=64,t=1,p=1$dHdv$dHdv"
	want.PreviousSecretHash, want.PreviousSecretExpiresAt, want.SecretHash = c.SecretHash, base.Add(24*time.Hour), first
	got, err = s.RotateClientSecret(ctx, "u", first, base.Add(24*time.Hour))
	check("RotateClientSecret (with an overlap)", got, err, want)
	// A change of other fields keeps the rotation.
	renamed := "Renamed again"
	want.Name = renamed
	got, err = s.UpdateClient(ctx, "u", rescind.ClientUpdate{Name: &renamed})
	check("UpdateClient after the rotation", got, err, want)
	want.PreviousSecretHash, want.PreviousSecretExpiresAt, want.SecretHash = "", time.Time{}, second
	got, err = s.RotateClientSecret(ctx, "u", second, time.Time{})
	check("RotateClientSecret (no overlap)", got, err, want)

	if _, err := s.UpdateClient(ctx, "missing", rescind.ClientUpdate{Name: &name}); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("UpdateClient(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.UpdateClient(ctx, "missing", rescind.ClientUpdate{}); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("UpdateClient(missing, nothing) = %v, want ErrNotFound", err)
	}
	if _, err := s.RotateClientSecret(ctx, "missing", first, time.Time{}); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("RotateClientSecret(missing) = %v, want ErrNotFound", err)
	}
	if _, err := s.GetClient(ctx, "missing"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatal("UpdateClient created a client")
	}
}

// testClientChangesAcrossInstances: two instances change one client at once, one rotating its
// secret without overlap (a leaked secret), the other renaming it and changing its scopes; every
// change survives the others: the replaced secrets never come back.
func testClientChangesAcrossInstances(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	a, b := open(), open()
	if err := a.CreateClient(ctx, sampleClient("x")); err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		hash := fmt.Sprintf("$argon2id$v=19$m=64,t=1,p=1$cjAx$%03d", round)
		name, scopes := fmt.Sprintf("name %d", round), []string{fmt.Sprintf("s%d", round)}
		var wg sync.WaitGroup
		errs := make([]error, 3)
		wg.Add(3)
		go func() { defer wg.Done(); _, errs[0] = a.RotateClientSecret(ctx, "x", hash, time.Time{}) }()
		go func() { defer wg.Done(); _, errs[1] = b.UpdateClient(ctx, "x", rescind.ClientUpdate{Name: &name}) }()
		go func() { defer wg.Done(); _, errs[2] = b.UpdateClient(ctx, "x", rescind.ClientUpdate{Scopes: &scopes}) }()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		got, err := b.GetClient(ctx, "x")
		if err != nil || got.SecretHash != hash || got.PreviousSecretHash != "" || got.Name != name || !slices.Equal(got.Scopes, scopes) {
			t.Fatalf("round %d: %+v, %v; want secret %s (no previous), name %q, scopes %v", round, got, err, hash, name, scopes)
		}
	}
}

func testDeleteClientRevokes(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if err := s.CreateClient(ctx, sampleClient("c")); err != nil {
		t.Fatal(err)
	}
	rev := rescind.Revocation{Kind: rescind.RevokeClient, Key: "c", ClientID: "c", RevokedAt: base, ExpiresAt: base.Add(time.Hour)}
	if revs, err := s.DeleteClient(ctx, "c", base, rev); err != nil || len(revs) != 1 || revs[0].Kind != rescind.RevokeClient {
		t.Fatalf("DeleteClient = %+v, %v; want the client record", revs, err)
	}
	if _, err := s.GetClient(ctx, "c"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetClient after delete err = %v, want ErrNotFound", err)
	}
	revs, err := s.RevocationsSince(ctx, 0, base, 10)
	if err != nil || len(revs) != 1 || revs[0].Kind != rescind.RevokeClient || revs[0].Key != "c" {
		t.Fatalf("revocations after delete = %+v, %v", revs, err)
	}
	other := rev
	other.Key = "nobody"
	if _, err := s.DeleteClient(ctx, "nobody", base, other); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("DeleteClient(missing) err = %v, want ErrNotFound", err)
	}
	if revs, _ := s.RevocationsSince(ctx, 0, base, 10); len(revs) != 1 {
		t.Fatalf("failed delete wrote a revocation: %+v", revs)
	}
}

func tokenRev(key string, exp time.Time) rescind.Revocation {
	return rescind.Revocation{Kind: rescind.RevokeToken, Key: key, ClientID: "client", RevokedAt: base, ExpiresAt: exp}
}

func testRevoke(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if err := s.Revoke(ctx, nil); err != nil {
		t.Fatalf("Revoke(nil): %v", err)
	}
	if last, err := s.LastRevocationSeq(ctx); err != nil || last != 0 {
		t.Fatalf("LastRevocationSeq on an empty store = %d, %v", last, err)
	}
	batch := []rescind.Revocation{tokenRev("t1", base.Add(time.Hour)), tokenRev("t2", base.Add(2*time.Hour))}
	if err := s.Revoke(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke(ctx, batch[:1]); err != nil { // idempotent
		t.Fatalf("Revoke again: %v", err)
	}
	revs, err := s.RevocationsSince(ctx, 0, base, 100)
	if err != nil || len(revs) != 2 {
		t.Fatalf("RevocationsSince = %+v, %v; want 2 records", revs, err)
	}
	if revs[0].Key != "t1" || revs[1].Key != "t2" || revs[0].Seq >= revs[1].Seq || revs[0].Seq <= 0 {
		t.Fatalf("records not in increasing Seq order: %+v", revs)
	}
	r := revs[1]
	if r.Kind != rescind.RevokeToken || r.ClientID != "client" || !r.RevokedAt.Equal(base) || !r.ExpiresAt.Equal(base.Add(2*time.Hour)) {
		t.Fatalf("record fields lost: %+v", r)
	}
	if n, err := s.CountRevocations(ctx); err != nil || n != 2 {
		t.Fatalf("CountRevocations = %d, %v; want 2", n, err)
	}
	if last, err := s.LastRevocationSeq(ctx); err != nil || last != revs[1].Seq {
		t.Fatalf("LastRevocationSeq = %d, %v; want %d", last, err, revs[1].Seq)
	}
	// Records that have expired at now are not returned.
	if revs, _ := s.RevocationsSince(ctx, 0, base.Add(90*time.Minute), 100); len(revs) != 1 || revs[0].Key != "t2" {
		t.Fatalf("RevocationsSince after t1 expiry = %+v; want only t2", revs)
	}
}

func testRevokeMerge(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	first := rescind.Revocation{Kind: rescind.RevokeClient, Key: "c", ClientID: "c", RevokedAt: base, ExpiresAt: base.Add(time.Hour)}
	if err := s.Revoke(ctx, []rescind.Revocation{first}); err != nil {
		t.Fatal(err)
	}
	revs, _ := s.RevocationsSince(ctx, 0, base, 10)
	seq := revs[0].Seq
	// An older, shorter record changes nothing.
	older := first
	older.RevokedAt, older.ExpiresAt = base.Add(-time.Minute), base.Add(time.Minute)
	if err := s.Revoke(ctx, []rescind.Revocation{older}); err != nil {
		t.Fatal(err)
	}
	if revs, _ := s.RevocationsSince(ctx, seq, base, 10); len(revs) != 0 {
		t.Fatalf("covered revocation produced a new record: %+v", revs)
	}
	// A later cut-off moves RevokedAt, keeps the later expiry and gets a new Seq.
	later := first
	later.RevokedAt, later.ExpiresAt = base.Add(time.Minute), base.Add(30*time.Minute)
	if err := s.Revoke(ctx, []rescind.Revocation{later}); err != nil {
		t.Fatal(err)
	}
	revs, err := s.RevocationsSince(ctx, seq, base, 10)
	if err != nil || len(revs) != 1 {
		t.Fatalf("after later cut-off: %+v, %v; want one new record", revs, err)
	}
	if !revs[0].RevokedAt.Equal(later.RevokedAt) || !revs[0].ExpiresAt.Equal(first.ExpiresAt) {
		t.Fatalf("merged record = %+v; want RevokedAt %v, ExpiresAt %v", revs[0], later.RevokedAt, first.ExpiresAt)
	}
	if n, _ := s.CountRevocations(ctx); n != 1 {
		t.Fatalf("CountRevocations = %d; want 1 (merged)", n)
	}
}

func testRevocationsSincePaging(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	var batch []rescind.Revocation
	for i := range 25 {
		batch = append(batch, tokenRev(fmt.Sprintf("t%02d", i), base.Add(time.Hour)))
	}
	if err := s.Revoke(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var seen []string
	after := int64(0)
	for {
		page, err := s.RevocationsSince(ctx, after, base, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 10 {
			t.Fatalf("page of %d exceeds limit 10", len(page))
		}
		for _, r := range page {
			seen = append(seen, r.Key)
			after = r.Seq
		}
	}
	if len(seen) != 25 || seen[0] != "t00" || seen[24] != "t24" {
		t.Fatalf("paged through %v; want t00..t24", seen)
	}
}

func testDeleteExpired(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if err := s.Revoke(ctx, []rescind.Revocation{tokenRev("old", base.Add(time.Minute)), tokenRev("new", base.Add(time.Hour))}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteExpiredRevocations(ctx, base.Add(time.Minute)) // exactly at expiry: kept
	if err != nil || n != 0 {
		t.Fatalf("DeleteExpiredRevocations at expiry = %d, %v; want 0", n, err)
	}
	n, err = s.DeleteExpiredRevocations(ctx, base.Add(2*time.Minute))
	if err != nil || n != 1 {
		t.Fatalf("DeleteExpiredRevocations = %d, %v; want 1", n, err)
	}
	revs, _ := s.RevocationsSince(ctx, 0, base, 10)
	if len(revs) != 1 || revs[0].Key != "new" {
		t.Fatalf("left %+v; want only new", revs)
	}
}

func testConcurrentRevoke(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	const workers, each = 8, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Every worker also revokes a shared token, to race on the same key.
				batch := []rescind.Revocation{tokenRev(fmt.Sprintf("w%d-%d", w, i), base.Add(time.Hour)), tokenRev("shared", base.Add(time.Hour))}
				if err := s.Revoke(ctx, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Revoke: %v", err)
	}
	if n, err := s.CountRevocations(ctx); err != nil || n != workers*each+1 {
		t.Fatalf("CountRevocations = %d, %v; want %d", n, err, workers*each+1)
	}
}

func testKeys(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	keys, err := s.ListKeys(ctx, "seal")
	if err != nil || len(keys) != 0 {
		t.Fatalf("ListKeys on empty store = %v, %v", keys, err)
	}
	k1 := rescind.Key{ID: "k1", Use: "seal", Algorithm: "XC20P", Sealed: []byte{0, 1, 2, 255}, CreatedAt: base}
	k2 := rescind.Key{ID: "k2", Use: "seal", Algorithm: "XC20P", Sealed: []byte{9}, CreatedAt: base.Add(time.Hour)}
	k3 := rescind.Key{ID: "k3", Use: "sign", Algorithm: "ES256", Sealed: []byte{7}, CreatedAt: base}
	for _, k := range []rescind.Key{k1, k2, k3} {
		if err := s.CreateKey(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateKey(ctx, k1); !errors.Is(err, rescind.ErrAlreadyExists) {
		t.Fatalf("CreateKey(duplicate) err = %v, want ErrAlreadyExists", err)
	}
	keys, err = s.ListKeys(ctx, "seal")
	if err != nil || len(keys) != 2 || keys[0].ID != "k2" || keys[1].ID != "k1" {
		t.Fatalf("ListKeys(seal) = %+v, %v; want k2 then k1", keys, err)
	}
	if string(keys[1].Sealed) != string(k1.Sealed) || keys[1].Algorithm != "XC20P" || !keys[1].CreatedAt.Equal(base) {
		t.Fatalf("key fields lost: %+v", keys[1])
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// testInstancesShare shows that one handle's writes are visible through another.
func testInstancesShare(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	a, b := open(), open()
	if err := a.CreateClient(ctx, sampleClient("shared")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetClient(ctx, "shared"); err != nil {
		t.Fatalf("client created on one instance not found on another: %v", err)
	}
	rev := rescind.Revocation{Kind: rescind.RevokeClient, Key: "shared", ClientID: "shared", RevokedAt: base, ExpiresAt: base.Add(time.Hour)}
	if _, err := b.DeleteClient(ctx, "shared", base, rev); err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetClient(ctx, "shared"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("deleted client still found on the other instance: %v", err)
	}
	if revs, _ := a.RevocationsSince(ctx, 0, base, 10); len(revs) != 1 {
		t.Fatalf("revocation written on one instance: %d records seen on the other", len(revs))
	}
}

// testPollingOrder is the race that matters for cache coherence: writers on two instances
// revoke concurrently while a third instance polls RevocationsSince(last seen Seq). Every
// committed record must be seen; a backend whose Seq order differs from commit order loses
// records here.
func testPollingOrder(t *testing.T, open func() rescind.Store) {
	ctx := context.Background()
	writers := []rescind.Store{open(), open()}
	reader := open()
	const perWriter, batches = 60, 3
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w, s := range writers {
		for g := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWriter / batches {
					if err := s.Revoke(ctx, []rescind.Revocation{tokenRev(fmt.Sprintf("w%d-g%d-%d", w, g, i), base.Add(time.Hour))}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
	}
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var after int64
	poll := func() {
		revs, err := reader.RevocationsSince(ctx, after, base, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range revs {
			if r.Seq <= after {
				t.Fatalf("Seq went backwards: %d after %d", r.Seq, after)
			}
			seen[r.Key] = true
			after = r.Seq
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		poll()
	}
	poll()
	if want := len(writers) * perWriter; len(seen) != want {
		t.Fatalf("poller saw %d of %d committed revocations: polling by Seq misses concurrent commits", len(seen), want)
	}
}

// testRevocationAudience: a record's audience round-trips (empty stays empty: the issuer), and a
// merge moves the record's times but never its audience, so revoking again cannot widen or
// narrow who may receive the record.
func testRevocationAudience(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	one := tokenRev("one", base.Add(time.Hour))
	one.Audience = []string{"https://api.example"}
	many := tokenRev("many", base.Add(time.Hour))
	many.Audience = []string{"https://a.example", "https://b.example/x?y=1"}
	none := tokenRev("none", base.Add(time.Hour))
	if err := s.Revoke(ctx, []rescind.Revocation{one, many, none}); err != nil {
		t.Fatal(err)
	}
	revs, err := s.RevocationsSince(ctx, 0, base, 10)
	if err != nil || len(revs) != 3 {
		t.Fatalf("RevocationsSince = %+v, %v", revs, err)
	}
	got := map[string][]string{}
	for _, r := range revs {
		got[r.Key] = r.Audience
	}
	if !slices.Equal(got["one"], one.Audience) || !slices.Equal(got["many"], many.Audience) || len(got["none"]) != 0 {
		t.Fatalf("audiences read back = %v", got)
	}
	seq := revs[2].Seq
	again := one
	again.ExpiresAt, again.Audience = base.Add(2*time.Hour), []string{"https://other.example"}
	if err := s.Revoke(ctx, []rescind.Revocation{again}); err != nil {
		t.Fatal(err)
	}
	revs, err = s.RevocationsSince(ctx, seq, base, 10)
	if err != nil || len(revs) != 1 || !revs[0].ExpiresAt.Equal(again.ExpiresAt) || !slices.Equal(revs[0].Audience, one.Audience) {
		t.Fatalf("after a longer revocation of the same token: %+v, %v; want the later expiry and the first audience", revs, err)
	}
}

// testStatusLists: a recorded list is found, an unknown one is ErrNotFound, a duplicate is
// ErrAlreadyExists, and DeleteExpired removes lists whose tokens have all expired.
func testStatusLists(t *testing.T, s rescind.Store) {
	ctx := context.Background()
	if _, err := s.GetStatusList(ctx, "nolist"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("GetStatusList(unknown) err = %v, want ErrNotFound", err)
	}
	a := rescind.StatusList{ID: "lista", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}
	b := rescind.StatusList{ID: "listb", CreatedAt: base, ExpiresAt: base.Add(3 * time.Hour)}
	for _, l := range []rescind.StatusList{a, b} {
		if err := s.CreateStatusList(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateStatusList(ctx, a); !errors.Is(err, rescind.ErrAlreadyExists) {
		t.Fatalf("CreateStatusList(duplicate) err = %v, want ErrAlreadyExists", err)
	}
	got, err := s.GetStatusList(ctx, "lista")
	if err != nil || got.ID != "lista" || !got.CreatedAt.Equal(base) || !got.ExpiresAt.Equal(a.ExpiresAt) {
		t.Fatalf("GetStatusList(lista) = %+v, %v", got, err)
	}
	if n, err := s.DeleteExpired(ctx, base.Add(2*time.Hour)); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1 (lista)", n, err)
	}
	if _, err := s.GetStatusList(ctx, "lista"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("expired list still found: %v", err)
	}
	if _, err := s.GetStatusList(ctx, "listb"); err != nil {
		t.Fatalf("unexpired list gone: %v", err)
	}
}
