package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/sqlite"
	"github.com/rescind/rescind/store/storetest"
)

func open(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) func() rescind.Store {
		path := filepath.Join(t.TempDir(), "rescind.db")
		return func() rescind.Store { return open(t, path) }
	}, storetest.WithRowsFault(sqlite.FailRows), storetest.WithInTx(sqlite.InTx))
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) rescind.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "rescind.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// TestNumberedPlaceholders: the shared SQL (store/internal/sqlstore) writes PostgreSQL's $N
// placeholders, which modernc.org/sqlite must bind to the N-th argument whatever their order
// and however often they appear.
func TestNumberedPlaceholders(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var a, b, c string
	var n int64
	if err := db.QueryRow(`SELECT $2, $1, $2, CASE WHEN $3 < 5 THEN $3 ELSE 5 END`, "one", "two", int64(3)).Scan(&a, &b, &c, &n); err != nil {
		t.Fatal(err)
	}
	if a != "two" || b != "one" || c != "two" || n != 3 {
		t.Fatalf("SELECT $2, $1, $2, min($3, 5) = %s, %s, %s, %d; want two, one, two, 3", a, b, c, n)
	}
}

// TestReopen shows that migrations are recorded (a second Open applies nothing twice) and that
// committed revocations are there after the database is closed and reopened.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rescind.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if m := s.Migrated(); len(m) < 2 || m[0] != "0001_init.sql" {
		t.Fatalf("a new database: Migrated = %v, want every migration from 0001_init.sql", m)
	}
	now := time.Now()
	if err := s.Revoke(context.Background(), []rescind.Revocation{{Kind: rescind.RevokeToken, Key: "t", ClientID: "c",
		RevokedAt: now, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := open(t, path)
	if m := s2.Migrated(); len(m) != 0 {
		t.Fatalf("reopened: Migrated = %v, want none", m)
	}
	revs, err := s2.RevocationsSince(context.Background(), 0, now, 10)
	if err != nil || len(revs) != 1 || revs[0].Key != "t" {
		t.Fatalf("after reopen: %+v, %v", revs, err)
	}
}

// databaseBefore writes at path a database of the release before migration next (e.g. "0016"):
// every migration below it applied and recorded, as that release left it. It returns the open
// database, an exec that fails the test on an error, and the name of the last migration
// applied; close the database before opening the store on path.
func databaseBefore(t *testing.T, path, next string) (*sql.DB, func(q string, args ...any), string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`)
	files, _ := filepath.Glob("migrations/*.sql")
	last := ""
	for _, f := range files {
		name := filepath.Base(f)
		if name >= next {
			continue
		}
		body, _ := os.ReadFile(f)
		exec(string(body))
		exec(`INSERT INTO schema_migrations VALUES (?, ?, 0)`, strings.SplitN(name, "_", 2)[0], name)
		last = name
	}
	if last == "" {
		t.Fatalf("no migration before %s", next)
	}
	return db, exec, last
}

// TestMigration0005 upgrades a database of the previous version, where grant records were
// sized from the ttl configured at revocation time: existing grants are bounded by the 30-day
// cap on access token lifetimes, and the records of recently revoked grants, cut short or
// already deleted, are in force again until that bound.
func TestMigration0005(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rescind.db")
	db, _, _ := databaseBefore(t, path, "0005")
	now := time.Now()
	const month = 30 * 24 * time.Hour
	grant := func(id string, revoked time.Time) {
		var r int64
		if !revoked.IsZero() {
			r = revoked.UnixNano()
		}
		if _, err := db.Exec(`INSERT INTO grants (id, client_id, user_id, created_at, last_used_at, revoked_at) VALUES (?, 'c', 'u', 0, 0, ?)`, id, r); err != nil {
			t.Fatal(err)
		}
	}
	grant("active", time.Time{})
	grant("lost", now.Add(-time.Hour))      // revoked an hour ago; the janitor deleted its record
	grant("short", now.Add(-time.Hour))     // its record ends in a minute
	grant("old", now.Add(-40*24*time.Hour)) // revoked long ago: every token of it is dead
	db.Exec(`INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at) VALUES ('grant', 'short', 'c', ?, ?)`,
		now.Add(-time.Hour).UnixNano(), now.Add(time.Minute).UnixNano())
	db.Close()

	s := open(t, path)
	g, err := s.GetGrant(ctx, "active")
	if err != nil || g.TokensExpireAt.Before(now.Truncate(time.Second).Add(month)) || g.TokensExpireAt.After(time.Now().Add(month+time.Second)) {
		t.Fatalf("active grant's bound = %v, %v; want about now + 30 days", g.TokensExpireAt, err)
	}
	revs, _ := s.RevocationsSince(ctx, 0, now, 10)
	got := map[string]time.Time{}
	for _, r := range revs {
		got[r.Key] = r.ExpiresAt
	}
	want := now.Add(-time.Hour).Add(month)
	if len(got) != 2 || got["lost"].Sub(want).Abs() > time.Microsecond || got["short"].Sub(want).Abs() > time.Microsecond {
		t.Fatalf("records after the migration: %v; want lost and short until %v, none for old", got, want)
	}
}

// TestNotDatabase: a file that is not a SQLite database is reported as such, and left as it was.
func TestNotDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rescind.db")
	junk := []byte(strings.Repeat("not a database, but someone's data. ", 200))
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqlite.Open(context.Background(), path)
	if !errors.Is(err, sqlite.ErrNotDatabase) {
		t.Fatalf("Open = %v, want ErrNotDatabase", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, junk) {
		t.Fatal("Open changed the file")
	}
}

// TestBackup: a backup taken while the store is in use holds what was committed, opens as a
// database of its own, never overwrites a file, and a backup of a file that is not a database
// fails without leaving a file behind.
func TestBackup(t *testing.T) {
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "rescind.db"))
	ctx := context.Background()
	now := time.Now()
	rev := rescind.Revocation{Kind: rescind.RevokeToken, Key: "before", ClientID: "c", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.Revoke(ctx, []rescind.Revocation{rev}); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "backup.db")
	n, err := s.Backup(ctx, dest)
	if err != nil || n == 0 {
		t.Fatalf("Backup = %d, %v", n, err)
	}
	if fi, err := os.Stat(dest); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != n {
		t.Fatalf("backup file: %v %v", fi, err)
	}
	rev.Key = "after"
	if err := s.Revoke(ctx, []rescind.Revocation{rev}); err != nil {
		t.Fatal(err)
	}
	b := open(t, dest)
	revs, err := b.RevocationsSince(ctx, 0, now, 10)
	if err != nil || len(revs) != 1 || revs[0].Key != "before" {
		t.Fatalf("the backup holds %+v, %v; want the one revocation committed before it", revs, err)
	}
	if m := b.Migrated(); len(m) != 0 {
		t.Fatalf("opening the backup applied migrations %v", m)
	}

	if _, err := s.Backup(ctx, dest); !errors.Is(err, os.ErrExist) {
		t.Fatalf("a second backup to the same file: %v, want ErrExist", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if _, err := s.Backup(ctx, empty); !errors.Is(err, os.ErrExist) {
		t.Fatalf("a backup to an existing empty file: %v, want ErrExist", err)
	}

	junk := filepath.Join(dir, "junk.db")
	os.WriteFile(junk, bytes.Repeat([]byte("junk"), 1000), 0o600)
	if _, err := sqlite.BackupFile(ctx, junk, filepath.Join(dir, "junk-backup.db")); !errors.Is(err, sqlite.ErrNotDatabase) {
		t.Fatalf("backup of junk: %v, want ErrNotDatabase", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "junk-backup.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a failed backup left its file behind")
	}
	if _, err := sqlite.BackupFile(ctx, filepath.Join(dir, "missing.db"), filepath.Join(dir, "m.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("backup of a missing database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a backup of a missing database created it")
	}
}

// TestNewerSchemaRefused: a database that a newer release migrated (a migration this binary does
// not know) is refused, so an old binary never serves data it may misread.
func TestNewerSchemaRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rescind.db")
	s := open(t, path)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s.Close()
	if _, err := sqlite.Open(context.Background(), path); !errors.Is(err, rescind.ErrNewerSchema) || !strings.Contains(err.Error(), "9999_future.sql") {
		t.Fatalf("opening a database of a newer release: %v, want ErrNewerSchema naming the migration", err)
	}
}

// TestMigration0016 upgrades a database of the previous version (migrations up to 0007): client
// cut-offs sized from the ttl configured at the moment now last 30 days and an hour past their
// cut-off, with a new seq so that subscribers receive them again; the status list entries of
// revoked grants' tokens that no record flips are flipped. Expired and long enough records are
// left as they were.
func TestMigration0016(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rescind.db")
	db, exec, _ := databaseBefore(t, path, "0008")
	now := time.Now()
	const month = 30 * 24 * time.Hour
	rec := func(kind, key string, revoked, expires time.Time) {
		exec(`INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at) VALUES (?, ?, 'c', ?, ?)`, kind, key, revoked.UnixNano(), expires.UnixNano())
	}
	rec("client", "cut", now.Add(-time.Hour), now.Add(10*time.Minute))         // revoke-all --client of a 1h client
	rec("client", "deleted", now.Add(70*time.Minute), now.Add(70*time.Minute)) // deleted an hour ago, longest ttl 1h
	rec("client", "long", now.Add(-time.Hour), now.Add(40*24*time.Hour))       // already long enough
	rec("client", "gone", now.Add(-2*time.Hour), now.Add(-time.Minute))        // expired: its tokens are dead
	rec("status", "list:1", now.Add(-time.Minute), now.Add(time.Hour))         // flipped by the grant's revocation
	exec(`INSERT INTO grants (id, client_id, user_id, created_at, last_used_at, revoked_at) VALUES ('g', 'c', 'u', 0, 0, ?), ('a', 'c', 'u', 0, 0, 0)`,
		now.Add(-time.Minute).UnixNano())
	for _, e := range []struct {
		grant string
		idx   int
		exp   time.Time
	}{{"g", 1, now.Add(time.Hour)}, {"g", 2, now.Add(2 * time.Hour)}, {"g", 3, now.Add(-time.Minute)}, {"a", 4, now.Add(time.Hour)}} {
		exec(`INSERT INTO grant_token_status (grant_id, status_list, status_idx, expires_at) VALUES (?, 'list', ?, ?)`, e.grant, e.idx, e.exp.UnixNano())
	}
	seqs := map[string]int64{}
	rows, _ := db.Query(`SELECT key, seq FROM revocations`)
	for rows.Next() {
		var k string
		var s int64
		rows.Scan(&k, &s)
		seqs[k] = s
	}
	rows.Close()
	db.Close()

	s := open(t, path)
	revs, err := s.RevocationsSince(ctx, 0, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]rescind.Revocation{}
	for _, r := range revs {
		got[r.Key] = r
	}
	extended := func(key string, revoked time.Time) {
		t.Helper()
		r := got[key]
		if want := revoked.Add(month + time.Hour); r.ExpiresAt.Sub(want).Abs() > time.Microsecond || r.Seq <= seqs["list:1"] {
			t.Errorf("%s after the migration: %+v; want it until %s, with a new seq", key, r, want)
		}
	}
	extended("cut", now.Add(-time.Hour))
	extended("deleted", now.Add(70*time.Minute))
	if r := got["long"]; r.Seq != seqs["long"] || r.ExpiresAt.Sub(now.Add(40*24*time.Hour)).Abs() > time.Microsecond {
		t.Errorf("long after the migration: %+v; want it unchanged", r)
	}
	if r := got["list:2"]; r.Kind != rescind.RevokeStatus || r.StatusList != "list" || r.StatusIdx != 2 || r.ClientID != "c" ||
		r.ExpiresAt.Sub(now.Add(2*time.Hour)).Abs() > time.Microsecond {
		t.Errorf("the unflipped entry of the revoked grant: %+v; want a status record until its token's exp", r)
	}
	if r := got["gone"]; r.Seq != seqs["gone"] || r.ExpiresAt.Sub(now.Add(-time.Minute)).Abs() > time.Microsecond {
		t.Errorf("gone after the migration: %+v; want it unchanged (expired)", r)
	}
	if len(got) != 6 {
		t.Errorf("records after the migration: %v; want cut, deleted, long, gone, list:1 and list:2 (no record for an expired entry or an active grant's)", got)
	}
}

// TestMigration0027 upgrades a database of the previous version (migrations up to 0026): a
// grant's audience stays what it was (its revocation reaches as far as before), and nothing is
// recorded as consented, since issuance may have widened that audience without a consent
// (re-audit 4 #5): the person is asked again, and that consent is recorded.
func TestMigration0027(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "rescind.db")
	db, exec, last := databaseBefore(t, path, "0027")
	if !strings.HasPrefix(last, "0026_") {
		t.Fatalf("the last migration applied before 0027 is %q, want 0026", last)
	}
	exec(`INSERT INTO grants (id, client_id, user_id, scopes, created_at, last_used_at, audience) VALUES ('g', 'c', 'u', '["read"]', 0, 0, '["https://as.example","https://api.example"]')`)
	db.Close()

	s := open(t, path)
	g, err := s.GetGrant(ctx, "g")
	if err != nil || !slices.Equal(g.Audience, []string{"https://as.example", "https://api.example"}) || len(g.ConsentedAudience) != 0 {
		t.Fatalf("the grant after the migration: %+v, %v; want its audience kept and nothing consented", g, err)
	}
	g, err = s.SaveGrant(ctx, rescind.Grant{ID: "g2", ClientID: "c", UserID: "u", Scopes: []string{"read"}, Audience: []string{"https://api.example"}})
	if err != nil || g.ID != "g" || !slices.Equal(g.ConsentedAudience, []string{"https://api.example"}) {
		t.Fatalf("consenting again: %+v, %v; want g with consented [https://api.example]", g, err)
	}
}
