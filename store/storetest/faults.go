package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// errInjected is the error RowsFault makes row iteration fail with.
var errInjected = errors.New("storetest: injected failure while reading rows")

// rowsFaultTests are the cases that break row iteration (RowsFault): a write that reads rows
// and fails in the middle of them must report the failure and commit nothing (a partial grant
// revocation reported as a success leaves tokens alive that the caller believes dead), and a
// read must fail rather than return part of a result.
func rowsFaultTests() []struct {
	name string
	run  func(t *testing.T, s rescind.Store, fail RowsFault)
} {
	return []struct {
		name string
		run  func(t *testing.T, s rescind.Store, fail RowsFault)
	}{
		{"RowsFailureRevokesNoGrant", testRowsFailureRevokeGrants},
		{"RowsFailureDeletesNoUser", testRowsFailureDeleteUser},
		{"RowsFailureEndsNoSession", testRowsFailureEndSessions},
		{"RowsFailureSetsNoPassword", testRowsFailureSetPassword},
		{"RowsFailureDeletesNoClient", testRowsFailureDeleteClient},
		{"RowsFailureRetiresNoKey", testRowsFailureRetireKey},
		{"RowsFailureListsNothing", testRowsFailureLists},
		{"RowsFailureClaimsNothing", testRowsFailureClaim},
	}
}

// sweep calls op with the n-th query that reads rows failing in the middle (RowsFault), for
// n = 0, 1, ... until op makes fewer such queries than n+1, and then once more without a
// failure, which must succeed. Every call that met the failure must return the injected error
// and leave state() as it was before. It returns how many queries op made that read rows.
func sweep(t *testing.T, s rescind.Store, fail RowsFault, state func() string, op func() error) int {
	t.Helper()
	before := state()
	for n := 0; n <= 100; n++ {
		disarm := fail(s, n, errInjected)
		err := op()
		if !disarm() {
			if err != nil {
				t.Fatalf("with no failure met (op reads rows %d times): %v", n, err)
			}
			if n == 0 {
				t.Fatal("op read no rows: the case tests nothing")
			}
			return n
		}
		if !errors.Is(err, errInjected) {
			t.Fatalf("the rows of query %d failed after one row, and op returned %v; want the injected error", n, err)
		}
		if after := state(); after != before {
			t.Fatalf("the rows of query %d failed after one row, and op changed the store although it failed:\nbefore:\n%s\nafter:\n%s",
				n, before, after)
		}
	}
	t.Fatal("op read rows more than 100 times")
	return 0
}

// revocable fills s with what grant revocations touch, around user u1 and client c1: active
// grants g1 (c1), g2 (c2) and g3 (c3) of u1, each with a refresh token, an unused code, a
// bound from a redeemed code and two status list entries; g0 (c1, u1), revoked before,
// whose record is gone while its tokens may be alive, so that revoking again writes it back;
// and two sessions of u1 (s1, s2) and one of u2 (s3).
func revocable(t *testing.T, s rescind.Store) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateClient(ctx, sampleClient("c1")))
	must(s.CreateClient(ctx, sampleClient("c2")))
	must(s.CreateUser(ctx, rescind.User{ID: "u1", Username: "alice", PasswordHash: "h", CreatedAt: base}))
	must(s.CreateUser(ctx, rescind.User{ID: "u2", Username: "bob", PasswordHash: "h", CreatedAt: base}))
	long := base.Add(24 * time.Hour)
	_, err := s.SaveGrant(ctx, grant("g0", "c1", "u1", "read"))
	must(err)
	must(s.CreateCode(ctx, sampleCode("h-g0", "g0")))
	_, err = s.RedeemCode(ctx, "h-g0", base, long, nil)
	must(err)
	must(s.RecordGrantTokenStatus(ctx, "g0", "list", 100, long))
	_, _, err = s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g0"}, rescind.Revocation{RevokedAt: base, Actor: "test", Reason: "before"})
	must(err)
	// The janitor of an older version deleted g0's record early.
	if n, err := s.DeleteExpiredRevocations(ctx, long.Add(time.Hour)); err != nil || n != 2 {
		t.Fatalf("DeleteExpiredRevocations = %d, %v; want g0's two records", n, err)
	}
	for i, c := range []string{"c1", "c2", "c3"} {
		id := fmt.Sprintf("g%d", i+1)
		_, err := s.SaveGrant(ctx, grant(id, c, "u1", "read"))
		must(err)
		must(s.CreateCode(ctx, sampleCode("hr-"+id, id)))
		_, err = s.RedeemCode(ctx, "hr-"+id, base, base.Add(2*time.Hour), nil)
		must(err)
		must(s.CreateCode(ctx, sampleCode("h-"+id, id)))
		must(s.CreateRefreshToken(ctx, refresh("r-"+id, id, base.Add(48*time.Hour))))
		for j := range 2 {
			must(s.RecordGrantTokenStatus(ctx, id, "list", int64(10*i+j), base.Add(2*time.Hour)))
		}
	}
	must(s.CreateSession(ctx, session("s1", "u1")))
	must(s.CreateSession(ctx, session("s2", "u1")))
	must(s.CreateSession(ctx, session("s3", "u2")))
	k := rescind.Key{ID: "k-old", Use: "sign", Algorithm: "ES256", Sealed: []byte{1}, CreatedAt: base.Add(-2 * time.Hour)}
	must(s.CreateKey(ctx, k))
	k.ID, k.CreatedAt, k.ActivatesAt = "k-new", base.Add(-time.Hour), base.Add(time.Hour)
	must(s.CreateKey(ctx, k))
}

// state describes everything revocable wrote and the operations under test may change.
func state(t *testing.T, s rescind.Store) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	found := func(err error) bool {
		if err != nil && !errors.Is(err, rescind.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	for _, id := range []string{"g0", "g1", "g2", "g3"} {
		g, err := s.GetGrant(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "grant %s revoked %v bound %v\n", id, g.RevokedAt, g.TokensExpireAt)
		_, err = s.GetRefreshToken(ctx, "r-"+id)
		rt := found(err)
		_, err = s.GetCode(ctx, "h-"+id)
		fmt.Fprintf(&b, "  refresh token %v, code %v\n", rt, found(err))
	}
	u, err := s.GetUser(ctx, "u1")
	fmt.Fprintf(&b, "user u1 %v epoch %d password %s\n", found(err), u.Epoch, u.PasswordHash)
	for _, id := range []string{"s1", "s2", "s3"} {
		_, err := s.GetSession(ctx, "hash-"+id)
		fmt.Fprintf(&b, "session %s %v\n", id, found(err))
	}
	_, err = s.GetClient(ctx, "c1")
	fmt.Fprintf(&b, "client c1 %v\n", found(err))
	revs, err := s.RevocationsSince(ctx, 0, base, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range revs {
		fmt.Fprintf(&b, "record %d %s %s revoked %v expires %v\n", r.Seq, r.Kind, r.Key, r.RevokedAt, r.ExpiresAt)
	}
	audit, err := s.ListAudit(ctx, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range audit {
		fmt.Fprintf(&b, "audit %d %s %s %s\n", e.ID, e.Action, e.Target, e.Reason)
	}
	keys, err := s.ListKeys(ctx, "sign")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		fmt.Fprintf(&b, "key %s activates %v retired %v\n", k.ID, k.ActivatesAt, k.RetiredAt)
	}
	return b.String()
}

// revokedGrants returns which of g0..g3 are revoked and which still have their refresh token.
func revokedGrants(t *testing.T, s rescind.Store) (revoked, withToken []string) {
	t.Helper()
	ctx := context.Background()
	for _, id := range []string{"g0", "g1", "g2", "g3"} {
		if g, err := s.GetGrant(ctx, id); err != nil {
			t.Fatal(err)
		} else if !g.RevokedAt.IsZero() {
			revoked = append(revoked, id)
		}
		if _, err := s.GetRefreshToken(ctx, "r-"+id); err == nil {
			withToken = append(withToken, id)
		}
	}
	return revoked, withToken
}

// keysOf lists the kind and key of records.
func keysOf(revs []rescind.Revocation) string {
	var out []string
	for _, r := range revs {
		out = append(out, string(r.Kind)+":"+r.Key)
	}
	return strings.Join(out, " ")
}

// testRowsFailureRevokeGrants: revoking a user's grants reads the grants, the revoked ones to
// extend and each grant's status entries; whichever read fails, nothing is revoked and the
// error is returned.
func testRowsFailureRevokeGrants(t *testing.T, s rescind.Store, fail RowsFault) {
	revocable(t, s)
	ctx := context.Background()
	rev := rescind.Revocation{RevokedAt: base.Add(time.Hour), Subject: "u1", Actor: "admin", Reason: "fault"}
	var revs []rescind.Revocation
	reads := sweep(t, s, fail, func() string { return state(t, s) }, func() (err error) {
		revs, _, err = s.RevokeGrants(ctx, rescind.GrantFilter{UserID: "u1"}, rev)
		if err != nil && len(revs) != 0 {
			t.Errorf("a failed RevokeGrants returned records: %s", keysOf(revs))
		}
		return err
	})
	t.Logf("RevokeGrants read rows %d times", reads)
	const want = "grant:g1 grant:g2 grant:g3 grant:g0 status:list:0 status:list:1 status:list:10 status:list:11 status:list:20 status:list:21 status:list:100"
	if got := keysOf(revs); !sameWords(got, want) {
		t.Fatalf("RevokeGrants wrote %s; want %s", got, want)
	}
	if revoked, withToken := revokedGrants(t, s); len(revoked) != 4 || len(withToken) != 0 {
		t.Fatalf("after RevokeGrants: revoked %v, refresh tokens left for %v", revoked, withToken)
	}
}

// testRowsFailureDeleteUser: deleting a user revokes their grants; a failed read keeps the
// user and every grant.
func testRowsFailureDeleteUser(t *testing.T, s rescind.Store, fail RowsFault) {
	revocable(t, s)
	ctx := context.Background()
	rev := rescind.Revocation{RevokedAt: base.Add(time.Hour), Subject: "u1", Actor: "admin", Reason: "user deleted"}
	var revs []rescind.Revocation
	sweep(t, s, fail, func() string { return state(t, s) }, func() (err error) {
		revs, _, err = s.DeleteUser(ctx, "u1", rev, rescind.SessionEnd{})
		if err != nil && len(revs) != 0 {
			t.Errorf("a failed DeleteUser returned records: %s", keysOf(revs))
		}
		return err
	})
	if _, err := s.GetUser(ctx, "u1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("after DeleteUser: GetUser = %v", err)
	}
	if revoked, withToken := revokedGrants(t, s); len(revoked) != 4 || len(withToken) != 0 || len(revs) != 13 {
		t.Fatalf("after DeleteUser: revoked %v, refresh tokens left for %v, records %s", revoked, withToken, keysOf(revs))
	}
}

// testRowsFailureEndSessions: ending every session of a user reads them; a failed read ends
// none and leaves the epoch.
func testRowsFailureEndSessions(t *testing.T, s rescind.Store, fail RowsFault) {
	revocable(t, s)
	ctx := context.Background()
	var revs []rescind.Revocation
	sweep(t, s, fail, func() string { return state(t, s) }, func() (err error) {
		revs, err = s.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rescind.Revocation{RevokedAt: base, Actor: "admin", Reason: "logout"}, rescind.SessionEnd{})
		return err
	})
	if keysOf(revs) != "session:s1 session:s2" {
		t.Fatalf("EndSessions wrote %s", keysOf(revs))
	}
}

// testRowsFailureSetPassword: a new password ends the user's sessions and, asked to, revokes
// their grants; a failed read keeps the old password, every session and every grant.
func testRowsFailureSetPassword(t *testing.T, s rescind.Store, fail RowsFault) {
	revocable(t, s)
	ctx := context.Background()
	var revs []rescind.Revocation
	sweep(t, s, fail, func() string { return state(t, s) }, func() (err error) {
		revs, _, err = s.SetPassword(ctx, "u1", "new", true, rescind.Revocation{RevokedAt: base.Add(time.Hour), Actor: "admin", Reason: "password set"}, rescind.SessionEnd{})
		return err
	})
	if revoked, _ := revokedGrants(t, s); len(revoked) != 4 || len(revs) != 13 {
		t.Fatalf("after SetPassword: revoked %v, records %s", revoked, keysOf(revs))
	}
}

// testRowsFailureDeleteClient: deleting a client revokes its grants; a failed read keeps the
// client, its grants and writes no record.
func testRowsFailureDeleteClient(t *testing.T, s rescind.Store, fail RowsFault) {
	revocable(t, s)
	ctx := context.Background()
	cut := base.Add(31 * 24 * time.Hour)
	rev := rescind.Revocation{Kind: rescind.RevokeClient, Key: "c1", ClientID: "c1", RevokedAt: cut, ExpiresAt: cut, Actor: "admin", Reason: "client deleted"}
	var revs []rescind.Revocation
	sweep(t, s, fail, func() string { return state(t, s) }, func() (err error) {
		revs, err = s.DeleteClient(ctx, "c1", base.Add(time.Hour), rev)
		if err != nil && len(revs) != 0 {
			t.Errorf("a failed DeleteClient returned records: %s", keysOf(revs))
		}
		return err
	})
	if _, err := s.GetClient(ctx, "c1"); !errors.Is(err, rescind.ErrNotFound) {
		t.Fatalf("after DeleteClient: GetClient = %v", err)
	}
	const want = "grant:g1 grant:g0 status:list:0 status:list:1 status:list:100 client:c1"
	if got := keysOf(revs); !sameWords(got, want) {
		t.Fatalf("DeleteClient wrote %s; want %s", got, want)
	}
	if revoked, withToken := revokedGrants(t, s); strings.Join(revoked, " ") != "g0 g1" || strings.Join(withToken, " ") != "g2 g3" {
		t.Fatalf("after DeleteClient: revoked %v, refresh tokens left for %v; want g0 g1 revoked, g2 g3 untouched", revoked, withToken)
	}
}

// testRowsFailureRetireKey: retiring a key reads the keys of its use to choose its successor; a
// failed read retires nothing and activates nothing.
func testRowsFailureRetireKey(t *testing.T, s rescind.Store, fail RowsFault) {
	revocable(t, s)
	ctx := context.Background()
	var activated string
	sweep(t, s, fail, func() string { return state(t, s) }, func() (err error) {
		activated, err = s.RetireKey(ctx, "k-old", keyRev("k-old", base))
		return err
	})
	if activated != "k-new" {
		t.Fatalf("RetireKey activated %q; want k-new", activated)
	}
	if k := findKey(t, s, "sign", "k-new"); !k.ActivatesAt.Equal(base) {
		t.Fatalf("k-new activates at %v; want %v", k.ActivatesAt, base)
	}
}

// testRowsFailureLists: a list whose rows fail after the first is an error, never the first
// row alone.
func testRowsFailureLists(t *testing.T, s rescind.Store, fail RowsFault) {
	revocable(t, s)
	ctx := context.Background()
	if _, _, err := s.RevokeGrants(ctx, rescind.GrantFilter{GrantID: "g3"}, rescind.Revocation{RevokedAt: base, Actor: "a", Reason: "r"}); err != nil {
		t.Fatal(err)
	}
	lists := []struct {
		name string
		list func() (int, error)
	}{
		{"ListClients", func() (int, error) { l, err := s.ListClients(ctx); return len(l), err }},
		{"ListUsers", func() (int, error) { l, err := s.ListUsers(ctx); return len(l), err }},
		{"ListGrants", func() (int, error) {
			l, err := s.ListGrants(ctx, rescind.GrantFilter{UserID: "u1"})
			return len(l), err
		}},
		{"RevocationsSince", func() (int, error) { l, err := s.RevocationsSince(ctx, 0, base, 100); return len(l), err }},
		{"ListKeys", func() (int, error) { l, err := s.ListKeys(ctx, "sign"); return len(l), err }},
		{"ListAudit", func() (int, error) { l, err := s.ListAudit(ctx, 100); return len(l), err }},
	}
	for _, l := range lists {
		t.Run(l.name, func(t *testing.T) {
			if n, err := l.list(); err != nil || n < 2 {
				t.Fatalf("without a failure: %d rows, %v; want at least 2", n, err)
			}
			disarm := fail(s, 0, errInjected)
			n, err := l.list()
			if !disarm() {
				t.Fatal("the list read no rows")
			}
			if !errors.Is(err, errInjected) || n != 0 {
				t.Fatalf("rows failing after the first: %d rows, %v; want none and the injected error", n, err)
			}
		})
	}
}

// sameWords reports whether a and b hold the same space-separated words, in any order.
func sameWords(a, b string) bool {
	count := map[string]int{}
	for _, w := range strings.Fields(a) {
		count[w]++
	}
	for _, w := range strings.Fields(b) {
		count[w]--
	}
	for _, n := range count {
		if n != 0 {
			return false
		}
	}
	return true
}
