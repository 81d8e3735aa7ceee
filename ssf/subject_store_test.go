package ssf

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/secret"
	"github.com/rescind/rescind/store/sqlite"
)

// aliasesOf returns an aliases subject of n email identifiers, each about size bytes long.
func aliasesOf(prefix string, n, size int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf(`{"format":"email","email":"%s-%d-%s@x.io"}`, prefix, i, strings.Repeat("x", size))
	}
	return `{"format":"aliases","identifiers":[` + strings.Join(ids, ",") + `]}`
}

// TestSubjectStoredOnce: a subject is stored once, whatever its number of identifiers, and a
// subject of more than maxSubjectKeys identifiers is refused (audit 19, finding 5: each of ~130
// keys repeated the whole 4 KiB subject, ~121 times what was sent).
func TestSubjectStoredOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	box, _ := secret.NewBox(make([]byte, 32))
	tokens := map[string]Token{"rx": {ClientID: "rx", Scopes: []string{ScopeManage}, ClientCredentials: true, Audience: []string{testIssuer}}}
	tr, err := New(Config{Issuer: testIssuer, Store: st, Box: box, Sign: func(any, string) (string, error) { return "", nil },
		Authenticate: func(_ context.Context, text string) (Token, error) { return tokens[text], nil }})
	if err != nil {
		t.Fatal(err)
	}
	createClient(t, st, "rx", rescind.RegistrationAdmin, ScopeManage)
	now := time.Now()
	if err := st.CreateSSFStream(ctx, rescind.SSFStream{ID: "s1", ClientID: "rx", Method: rescind.SSFPoll, Status: rescind.SSFEnabled,
		EventsDelivered: Supported, CreatedAt: now, UpdatedAt: now}, 10); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range tr.Routes() {
		mux.HandleFunc(r.Pattern, r.Handler)
	}
	if w := do(mux, "POST", PathAddSubject, "rx", `{"stream_id":"s1","subject":`+aliasesOf("over", maxSubjectKeys+1, 10)+`}`); w.Code != http.StatusBadRequest ||
		!strings.Contains(w.Body.String(), "at most") {
		t.Fatalf("a subject of %d identifiers: %d %s; want 400", maxSubjectKeys+1, w.Code, w.Body)
	}
	sent := 0
	const subjects = 20
	for n := range subjects {
		subject := aliasesOf(fmt.Sprint(n), maxSubjectKeys, 350) // ~4 KiB
		sent += len(subject)
		if w := do(mux, "POST", PathAddSubject, "rx", `{"stream_id":"s1","subject":`+subject+`}`); w.Code != http.StatusOK {
			t.Fatalf("add subject %d (%d bytes): %d %s", n, len(subject), w.Code, w.Body)
		}
	}
	st.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows, stored, keys int64
	if err := db.QueryRow(`SELECT count(*), sum(length(subject)) FROM ssf_stream_subjects`).Scan(&rows, &stored); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM ssf_subject_keys`).Scan(&keys); err != nil {
		t.Fatal(err)
	}
	if rows != subjects || stored > int64(sent) || keys != subjects*maxSubjectKeys {
		t.Fatalf("%d subjects, %d bytes sent: %d subject rows holding %d bytes, %d keys; want %d rows, at most %d bytes, %d keys",
			subjects, sent, rows, stored, keys, subjects, sent, subjects*maxSubjectKeys)
	}
}
