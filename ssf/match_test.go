package ssf

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
)

// TestSubjectMatching: an event reaches a stream only through a subject that covers it: every
// member of a complex subject, by name; a simple subject names a person (audit 19, finding 6:
// any member's key matched, whatever its name).
func TestSubjectMatching(t *testing.T) {
	const iss = "https://as.example"
	ev := func(kind rescind.SignalKind) map[string]string {
		evs := eventsOf(iss, rescind.Signal{Kind: kind, UserID: "u1", SessionID: "s1", ClientID: "app1"})
		return evs[0].members
	}
	alice := `{"format":"iss_sub","iss":"` + iss + `","sub":"u1"}`
	bob := `{"format":"iss_sub","iss":"` + iss + `","sub":"u2"}`
	for _, c := range []struct {
		name, subject string
		kind          rescind.SignalKind
		want          bool
	}{
		{"the user, her session ended", alice, rescind.SignalSessionEnded, true},
		{"the user, her password set", alice, rescind.SignalPasswordSet, true},
		{"another user", bob, rescind.SignalPasswordSet, false},
		{"aliases naming the user", `{"format":"aliases","identifiers":[` + bob + `,` + alice + `]}`, rescind.SignalPasswordSet, true},
		{"an opaque id equal to the session, as a simple subject", `{"format":"opaque","id":"s1"}`, rescind.SignalSessionEnded, false},
		{"an opaque id equal to the client, as a simple subject", `{"format":"opaque","id":"app1"}`, rescind.SignalGrantRevoked, false},
		{"user and that session", `{"user":` + alice + `,"session":{"format":"opaque","id":"s1"}}`, rescind.SignalSessionEnded, true},
		{"user and another session", `{"user":` + alice + `,"session":{"format":"opaque","id":"s2"}}`, rescind.SignalSessionEnded, false},
		{"user and a session, for her password", `{"user":` + alice + `,"session":{"format":"opaque","id":"s1"}}`, rescind.SignalPasswordSet, false},
		{"user and the application, grant revoked", `{"user":` + alice + `,"application":{"format":"opaque","id":"app1"}}`, rescind.SignalGrantRevoked, true},
		{"user and another application", `{"user":` + alice + `,"application":{"format":"opaque","id":"app2"}}`, rescind.SignalGrantRevoked, false},
		{"the session id under the application member", `{"application":{"format":"opaque","id":"s1"}}`, rescind.SignalSessionEnded, false},
		{"the application, its secret changed", `{"application":{"format":"opaque","id":"app1"}}`, rescind.SignalClientSecretChanged, true},
		{"the client id as a simple subject, its secret changed", `{"format":"opaque","id":"app1"}`, rescind.SignalClientSecretChanged, true},
		{"the user as a simple subject, a client's secret changed", alice, rescind.SignalClientSecretChanged, false},
	} {
		canon, _, err := subjectKeys([]byte(c.subject))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := subjectMatches(canon, ev(c.kind)); got != c.want {
			t.Errorf("%s: matches %v; want %v", c.name, got, c.want)
		}
	}
}

// TestSubjectRelation: a receiver may name an application alone only if it is itself; with a
// user, any application.
func TestSubjectRelation(t *testing.T) {
	user := `"user":{"format":"iss_sub","iss":"https://as.example","sub":"u1"}`
	for _, c := range []struct {
		subject, refusal string
	}{
		{`{"application":{"format":"opaque","id":"rx"}}`, ""},
		{`{"application":{"format":"opaque","id":"payroll"}}`, "must come with a \"user\""},
		{`{` + user + `,"application":{"format":"opaque","id":"payroll"}}`, ""},
		// An opaque simple identifier names a client (it matches a client's credential change):
		// only the receiver itself (re-audit 3B #5).
		{`{"format":"opaque","id":"rx"}`, ""},
		{`{"format":"opaque","id":"payroll"}`, "may name only itself"},
		{`{"format":"aliases","identifiers":[{"format":"opaque","id":"payroll"}]}`, "may name only itself"},
		{`{"format":"aliases","identifiers":[{"format":"email","email":"a@x.org"},{"format":"opaque","id":"payroll"}]}`, "may name only itself"},
		{`{"format":"aliases","identifiers":[{"format":"email","email":"a@x.org"},{"format":"opaque","id":"rx"}]}`, ""},
		{`{"format":"iss_sub","iss":"https://as.example","sub":"payroll"}`, ""},
	} {
		err := checkSubjectRelation([]byte(c.subject), "rx")
		if (c.refusal == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.refusal)) {
			t.Errorf("%s: %v; want refusal %q", c.subject, err, c.refusal)
		}
	}
}

// TestStoredSubjectsHeldToTheRelationRule: the fan-out holds stored subjects to the relation
// rule too (subjects added before it covered simple subjects, or by an older release): a
// receiver's simple or aliases subject naming another client by its opaque id gets nothing of
// that client's credential change, while one naming the receiver itself gets its own (re-audit
// 3B #5).
func TestStoredSubjectsHeldToTheRelationRule(t *testing.T) {
	ctx := context.Background()
	tr, st, _, _ := pollSetup(t, 0, nil)
	for stream, subject := range map[string]string{
		"s1": `{"format":"aliases","identifiers":[{"format":"opaque","id":"victim"}]}`,
		"s2": `{"format":"opaque","id":"rx"}`,
	} {
		canon, keys, err := subjectKeys([]byte(subject))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddSSFSubject(ctx, rescind.SSFSubject{StreamID: stream, ID: subjectID(canon), Subject: canon, Keys: keys, AddedAt: time.Now()}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, client := range []string{"victim", "rx"} {
		sg := rescind.Signal{ID: fmt.Sprint("sig", i), Kind: rescind.SignalClientSecretChanged, ClientID: client, Actor: "admin:ops", At: time.Now()}
		payload, _ := json.Marshal(sg)
		if err := tr.DeliverSignal(ctx, rescind.OutboxMessage{Kind: rescind.OutboxSignal, Payload: payload}); err != nil {
			t.Fatal(err)
		}
	}
	for stream, want := range map[string]int{"s1": 0, "s2": 1} {
		evs, err := st.PendingSSFEvents(ctx, stream, 10)
		if err != nil || len(evs) != want {
			t.Errorf("stream %s: %d events (%v); want %d", stream, len(evs), err, want)
		}
	}
}
