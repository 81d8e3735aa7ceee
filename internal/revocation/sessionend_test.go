package revocation

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/sqlite"
)

// TestEverySessionEndCarriesTheSessionEnd: the Committer's SessionEnd is carried out by each way
// it ends sessions (EndSessions, SetPassword, DeleteUser, and the janitor's expiry), and its
// after hook is called once each has committed. The messages are in the outbox when the call
// returns.
func TestEverySessionEndCarriesTheSessionEnd(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Unix(1_800_000_000, 0)
	st.CreateClient(ctx, rescind.Client{ID: "c1", Name: "c1", GrantTypes: []string{rescind.GrantAuthorizationCode}, CreatedAt: now,
		BackchannelLogoutURI: "https://c1.example/bcl"})
	c := NewCommitter(st, NewState(), nil)
	defer c.Close()
	var told []string
	woken := 0
	c.SetSessionEnd(rescind.SessionEnd{Notices: []rescind.SessionNotices{func(ended []rescind.EndedSession, rev rescind.Revocation) ([]rescind.OutboxMessage, error) {
		var out []rescind.OutboxMessage
		for _, e := range ended {
			for _, sc := range e.Clients {
				told = append(told, e.Session.ID+"/"+sc.Client.ID)
				out = append(out, rescind.OutboxMessage{Kind: "logout", Key: sc.Client.ID, Payload: []byte(e.Session.ID), CreatedAt: now,
					Deadline: now.Add(time.Hour)})
			}
		}
		return out, nil
	}}}, func() { woken++ })

	// signedIn makes user u with a session s (expiring at exp) in which c1 was given a code.
	signedIn := func(u, s string, exp time.Time) {
		t.Helper()
		if _, err := st.GetUser(ctx, u); err != nil {
			st.CreateUser(ctx, rescind.User{ID: u, Username: u, PasswordHash: "h", CreatedAt: now})
		}
		if err := st.CreateSession(ctx, rescind.Session{ID: s, Hash: "hash-" + s, UserID: u, CreatedAt: now, LastSeenAt: now,
			IdleExpiresAt: exp, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		g, _ := st.SaveGrant(ctx, rescind.Grant{ID: "g-" + s, ClientID: "c1", UserID: u, Scopes: []string{"openid"}, CreatedAt: now, LastUsedAt: now})
		if err := st.CreateCode(ctx, rescind.AuthCode{Hash: "code-" + s, ClientID: "c1", UserID: u, GrantID: g.ID, SessionID: s,
			CreatedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Hour)
	cases := []struct {
		name string
		end  func() error
	}{
		{"EndSessions", func() error {
			_, err := c.EndSessions(ctx, rescind.SessionFilter{UserID: "u1"}, rescind.Revocation{RevokedAt: now})
			return err
		}},
		{"SetPassword", func() error {
			_, _, err := c.SetPassword(ctx, "u2", "new", false, rescind.Revocation{RevokedAt: now})
			return err
		}},
		{"DeleteUser", func() error {
			_, _, err := c.DeleteUser(ctx, "u3", rescind.Revocation{RevokedAt: now})
			return err
		}},
		{"janitor", func() error {
			j := JanitorConfig{Store: st, State: NewState(), Now: func() time.Time { return later },
				ExpireSessions: func(ctx context.Context, at time.Time) (int, error) { return c.ExpireSessions(ctx, at, 1) }}
			_, err := j.Sweep(ctx)
			return err
		}},
	}
	signedIn("u1", "s1", later.Add(time.Hour))
	signedIn("u2", "s2", later.Add(time.Hour))
	signedIn("u3", "s3", later.Add(time.Hour))
	signedIn("u4", "s4", now.Add(time.Minute))   // expired by "later"
	signedIn("u4", "s5", now.Add(2*time.Minute)) // two: ExpireSessions goes on past its limit
	want := [][]string{{"s1/c1"}, {"s2/c1"}, {"s3/c1"}, {"s4/c1", "s5/c1"}}
	for i, tc := range cases {
		told, woken = nil, 0
		if err := tc.end(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(told) != len(want[i]) || told[0] != want[i][0] || woken == 0 {
			t.Fatalf("%s told %v (woken %d times); want %v", tc.name, told, woken, want[i])
		}
	}
	msgs, err := st.ListOutbox(ctx, rescind.OutboxFilter{Kind: "logout"})
	if err != nil || len(msgs) != 5 {
		t.Fatalf("outbox: %d messages, %v; want 5", len(msgs), err)
	}
}
