package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/pgtest"
	"github.com/rescind/rescind/store/postgres"
	"github.com/rescind/rescind/store/storetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunTests(t, func(t *testing.T) func() rescind.Store {
		dsn := pgtest.NewDatabase(t)
		return func() rescind.Store { return open(t, dsn) }
	}, storetest.WithRowsFault(postgres.FailRows), storetest.WithInTx(postgres.InTx))
}

func BenchmarkStore(b *testing.B) {
	storetest.RunBenchmarks(b, func(b *testing.B) rescind.Store {
		s, err := postgres.Open(context.Background(), pgtest.NewDatabase(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}

// TestConcurrentMigrations starts several stores on an empty database at once: the advisory
// lock lets exactly one apply each migration.
func TestConcurrentMigrations(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var applied []string // by all of them
	errs := make(chan error, 5)
	for range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), dsn)
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			applied = append(applied, s.Migrated()...)
			mu.Unlock()
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Open: %v", err)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// Numbers may have gaps (they are reserved per branch): compare with the files.
	files, _ := filepath.Glob("migrations/*.sql")
	var n, distinct int
	conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT version) FROM schema_migrations").Scan(&n, &distinct)
	if n < 2 || n != distinct || n != len(files) {
		t.Fatalf("%d migrations recorded (%d distinct), %d files: want each applied once", n, distinct, len(files))
	}
	// Migrated reports each migration once in all, by whichever store applied it, and nothing
	// to a store opened afterwards.
	slices.Sort(applied)
	if len(applied) != n || len(slices.Compact(slices.Clone(applied))) != n ||
		applied[0] != "0001_init.sql" {
		t.Fatalf("Migrated reported %v; want each of the %d migrations once", applied, n)
	}
	if again := open(t, dsn).Migrated(); len(again) != 0 {
		t.Fatalf("a store opened on a migrated database reports %v", again)
	}
}

// TestWatch shows that a write on one instance reaches another's Watch, carrying the
// revocation itself, and that a dropped listen connection is re-established with a resync.
func TestWatch(t *testing.T) {
	postgres.ReconnectDelay = 100 * time.Millisecond
	dsn := pgtest.NewDatabase(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := make(chan rescind.Event, 100)
	go b.Watch(ctx, func(e rescind.Event) { events <- e })
	next := func(kind rescind.EventKind) rescind.Event {
		t.Helper()
		for {
			select {
			case e := <-events:
				if e.Kind == kind {
					return e
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no event of kind %d", kind)
			}
		}
	}
	next(rescind.EventResync)
	now := time.Now()
	if err := a.Revoke(ctx, []rescind.Revocation{{Kind: rescind.RevokeToken, Key: "jti1", ClientID: "c", RevokedAt: now, ExpiresAt: now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if e := next(rescind.EventRevoked); len(e.Revocations) != 1 || e.Revocations[0].Key != "jti1" || !e.Revocations[0].ExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("event = %+v", e)
	}
	// A new client tells every instance too (the origins and scopes derived from all clients).
	if err := a.CreateClient(ctx, rescind.Client{ID: "c0", Name: "c0", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if e := next(rescind.EventClientChanged); e.ClientID != "c0" {
		t.Fatalf("event after create = %+v", e)
	}
	a.CreateClient(ctx, rescind.Client{ID: "c1", Name: "c1", CreatedAt: now})
	next(rescind.EventClientChanged)
	// An update tells every instance, so none keeps a stale client (a rotated secret, a ttl).
	renamed := "renamed"
	if _, err := a.UpdateClient(ctx, "c1", rescind.ClientUpdate{Name: &renamed}); err != nil {
		t.Fatal(err)
	}
	if e := next(rescind.EventClientChanged); e.ClientID != "c1" {
		t.Fatalf("event after update = %+v", e)
	}
	if _, err := a.RotateClientSecret(ctx, "c1", "new-hash", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if e := next(rescind.EventClientChanged); e.ClientID != "c1" {
		t.Fatalf("event after rotation = %+v", e)
	}
	a.DeleteClient(ctx, "c1", now, rescind.Revocation{Kind: rescind.RevokeClient, Key: "c1", ClientID: "c1", RevokedAt: now, ExpiresAt: now.Add(time.Hour)})
	if e := next(rescind.EventClientChanged); e.ClientID != "c1" {
		t.Fatalf("event = %+v", e)
	}
	a.CreateKey(ctx, rescind.Key{ID: "k", Use: "seal", Algorithm: "x", Sealed: []byte{1}, CreatedAt: now})
	next(rescind.EventKeysChanged)

	// Cut the listen connection: Watch reconnects and says to resync.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()", postgres.ListenApplicationName); err != nil {
		t.Fatal(err)
	}
	next(rescind.EventResync)
}

// TestMigration0005 upgrades a database of the previous version, where grant records were
// sized from the ttl configured at revocation time: existing grants are bounded by the 30-day
// cap on access token lifetimes, and the records of recently revoked grants, cut short or
// already deleted, are in force again until that bound.
func TestMigration0005(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`)
	files, _ := filepath.Glob("migrations/000[1-4]_*.sql")
	for i, f := range files {
		body, _ := os.ReadFile(f)
		if err := conn.PgConn().Exec(ctx, string(body)).Close(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		exec(`INSERT INTO schema_migrations VALUES ($1, $2, 0)`, i+1, filepath.Base(f))
	}
	now := time.Now()
	const month = 30 * 24 * time.Hour
	grant := func(id string, revoked int64) {
		exec(`INSERT INTO grants (id, client_id, user_id, created_at, last_used_at, revoked_at) VALUES ($1, 'c', 'u', 0, 0, $2)`, id, revoked)
	}
	grant("active", 0)
	grant("lost", now.Add(-time.Hour).UnixNano())      // revoked an hour ago; the janitor deleted its record
	grant("short", now.Add(-time.Hour).UnixNano())     // its record ends in a minute
	grant("old", now.Add(-40*24*time.Hour).UnixNano()) // revoked long ago: every token of it is dead
	exec(`INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at) VALUES ('grant', 'short', 'c', $1, $2)`,
		now.Add(-time.Hour).UnixNano(), now.Add(time.Minute).UnixNano())

	s := open(t, dsn)
	g, err := s.GetGrant(ctx, "active")
	if err != nil || g.TokensExpireAt.Before(now.Add(month-time.Second)) || g.TokensExpireAt.After(time.Now().Add(month+time.Second)) {
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

// TestNewerSchemaRefused: a database that a newer release migrated (a migration this binary does
// not know) is refused, so an old instance never serves data it may misread.
func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(context.Background(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future.sql', 0)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(context.Background())
	if _, err := postgres.Open(context.Background(), dsn); !errors.Is(err, rescind.ErrNewerSchema) || !strings.Contains(err.Error(), "9999_future.sql") {
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
	dsn := pgtest.NewDatabase(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	exec(`CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`)
	files, _ := filepath.Glob("migrations/000[1-7]_*.sql")
	for i, f := range files {
		body, _ := os.ReadFile(f)
		if err := conn.PgConn().Exec(ctx, string(body)).Close(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		exec(`INSERT INTO schema_migrations VALUES ($1, $2, 0)`, i+1, filepath.Base(f))
	}
	now := time.Now()
	const month = 30 * 24 * time.Hour
	rec := func(kind, key string, revoked, expires time.Time) {
		exec(`INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at) VALUES ($1, $2, 'c', $3, $4)`, kind, key, revoked.UnixNano(), expires.UnixNano())
	}
	rec("client", "cut", now.Add(-time.Hour), now.Add(10*time.Minute))         // revoke-all --client of a 1h client
	rec("client", "deleted", now.Add(70*time.Minute), now.Add(70*time.Minute)) // deleted an hour ago, longest ttl 1h
	rec("client", "long", now.Add(-time.Hour), now.Add(40*24*time.Hour))       // already long enough
	rec("client", "gone", now.Add(-2*time.Hour), now.Add(-time.Minute))        // expired: its tokens are dead
	rec("status", "list:1", now.Add(-time.Minute), now.Add(time.Hour))         // flipped by the grant's revocation
	exec(`INSERT INTO grants (id, client_id, user_id, created_at, last_used_at, revoked_at) VALUES ('g', 'c', 'u', 0, 0, $1), ('a', 'c', 'u', 0, 0, 0)`,
		now.Add(-time.Minute).UnixNano())
	for _, e := range []struct {
		grant string
		idx   int
		exp   time.Time
	}{{"g", 1, now.Add(time.Hour)}, {"g", 2, now.Add(2 * time.Hour)}, {"g", 3, now.Add(-time.Minute)}, {"a", 4, now.Add(time.Hour)}} {
		exec(`INSERT INTO grant_token_status (grant_id, status_list, status_idx, expires_at) VALUES ($1, 'list', $2, $3)`, e.grant, e.idx, e.exp.UnixNano())
	}
	seqs := map[string]int64{}
	rows, _ := conn.Query(ctx, `SELECT key, seq FROM revocations`)
	for rows.Next() {
		var k string
		var s int64
		rows.Scan(&k, &s)
		seqs[k] = s
	}
	rows.Close()

	s := open(t, dsn)
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
