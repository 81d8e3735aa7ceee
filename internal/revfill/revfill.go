// Package revfill writes large numbers of revocation records straight into a Rescind database
// (SQLite or PostgreSQL), with SQL that generates them server-side, for tests and benchmarks of
// a large revocation state (rescind bench --preload-revocations). Writing a million records
// through Store.Revoke, one statement per record, takes minutes; this takes seconds.
//
// The records are like those of a deployment after a mass revocation: every 100th revokes a
// grant, the others one access token each, every other one of them a JWT with a status list
// entry (lists of 32,768 entries, as an instance allocates them). Ids are random, in the forms
// the server makes them (token ids: 16 bytes as unpadded base64url; grant ids: 16 bytes as
// lowercase base32), and every record expires within the hour after its ExpiresAfter.
package revfill

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Config says what to write.
type Config struct {
	// N is the number of records.
	N int
	// Now is the records' RevokedAt; they expire from ExpiresAfter past it, spread over an hour.
	Now          time.Time
	ExpiresAfter time.Duration
	// ClientID is the client the records name. If empty, "bench".
	ClientID string
}

// rowsPerStatement bounds one INSERT (one transaction each).
const rowsPerStatement = 100_000

const (
	b64url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	b32low = "abcdefghijklmnopqrstuvwxyz234567"
)

// dialect is what differs between the two databases.
type dialect struct {
	series func(from, to int) string // a FROM clause yielding i from..to
	random string                    // a random 64-bit integer
	// digit is the character of alphabet (whose length is a power of two) at bits shift.. of
	// the integer expression n.
	digit       func(alphabet, n string, shift int) string
	placeholder func(n int) string
}

var sqliteDialect = dialect{
	series: func(from, to int) string {
		return fmt.Sprintf("(WITH RECURSIVE s(i) AS (SELECT %d UNION ALL SELECT i + 1 FROM s WHERE i < %d) SELECT i FROM s)", from, to)
	},
	random: "random()",
	digit: func(a, n string, shift int) string {
		return fmt.Sprintf("substr('%s', ((%s >> %d) & %d) + 1, 1)", a, n, shift, len(a)-1)
	},
	placeholder: func(int) string { return "?" },
}

var postgresDialect = dialect{
	series: func(from, to int) string {
		return fmt.Sprintf("(SELECT i FROM generate_series(%d, %d) AS g(i))", from, to)
	},
	random: "(floor(random() * 4294967296)::bigint << 32 | floor(random() * 4294967296)::bigint)",
	digit: func(a, n string, shift int) string {
		return fmt.Sprintf("substr('%s', ((%s >> %d) & %d)::int + 1, 1)", a, n, shift, len(a)-1)
	},
	placeholder: func(n int) string { return fmt.Sprintf("$%d", n) },
}

// insert returns the statement that writes records from..to.
func (d dialect) insert(from, to int) string {
	// 128 random bits each, from three random integers r1, r2, r3 per row: 21 base64url
	// characters and one whose 4 low bits are zero; 25 base32 characters and one whose 2 low
	// bits are zero.
	var token, grant, list []string
	for c := range 21 {
		token = append(token, d.digit(b64url, fmt.Sprintf("r%d", 1+c/10), 6*(c%10)))
	}
	token = append(token, d.digit("AQgw", "r3", 0))
	for c := range 25 {
		grant = append(grant, d.digit(b32low, fmt.Sprintf("r%d", 1+c/12), 5*(c%12)))
	}
	grant = append(grant, d.digit("aeimquy4", "r3", 10))
	// A list id (26 base32 characters) per 32,768 JWT entries (65,536 records).
	list = append(list, "'listlistlistlistlistli'")
	for _, shift := range []int{15, 10, 5, 0} {
		list = append(list, d.digit(b32low, "(i / 65536)", shift))
	}
	p := d.placeholder
	// The random integers are drawn once per row (MATERIALIZED): a flattened subquery would
	// draw one per character.
	return `WITH g AS MATERIALIZED (SELECT i, ` + d.random + ` AS r1, ` + d.random + ` AS r2, ` + d.random + ` AS r3 FROM ` + d.series(from, to) + ` AS s)
		INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience)
		SELECT CASE WHEN i % 100 = 99 THEN 'grant' ELSE 'token' END,
			CASE WHEN i % 100 = 99 THEN ` + strings.Join(grant, " || ") + ` ELSE ` + strings.Join(token, " || ") + ` END,
			` + p(1) + `, ` + p(2) + `, CAST(` + p(3) + ` AS BIGINT) + CAST(i % 3600 AS BIGINT) * 1000000000,
			'',
			CASE WHEN i % 2 = 1 AND i % 100 <> 99 THEN ` + strings.Join(list, " || ") + ` ELSE '' END,
			CASE WHEN i % 2 = 1 AND i % 100 <> 99 THEN ((i / 2) % 32768) * 4 ELSE -1 END,
			'[]'
		FROM g
		WHERE 1 = 1 -- so that SQLite reads ON as the upsert clause, not a join constraint
		ON CONFLICT (kind, key) DO NOTHING`
}

// FillSQLite writes the records to the SQLite database file at path (a Rescind database, already
// migrated), in transactions of 100,000.
func FillSQLite(ctx context.Context, path string, cfg Config) error {
	// Test data: no fsync; a page cache large enough for the indexes, which random keys touch
	// all over.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)")
	if err != nil {
		return fmt.Errorf("revfill: opening %s: %w", path, err)
	}
	defer db.Close()
	return fill(cfg, func(from, to int, client string, now, exp int64) error {
		_, err := db.ExecContext(ctx, sqliteDialect.insert(from, to), client, now, exp)
		return err
	})
}

// FillPostgres writes the records to the PostgreSQL database at dsn (a Rescind database,
// already migrated), in transactions of 100,000.
func FillPostgres(ctx context.Context, dsn string, cfg Config) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("revfill: connecting: %w", err)
	}
	defer conn.Close(context.Background())
	return fill(cfg, func(from, to int, client string, now, exp int64) error {
		_, err := conn.Exec(ctx, postgresDialect.insert(from, to), client, now, exp)
		return err
	})
}

func fill(cfg Config, exec func(from, to int, client string, now, exp int64) error) error {
	client := cfg.ClientID
	if client == "" {
		client = "bench"
	}
	for from := 0; from < cfg.N; from += rowsPerStatement {
		to := min(from+rowsPerStatement, cfg.N) - 1
		if err := exec(from, to, client, cfg.Now.UnixNano(), cfg.Now.Add(cfg.ExpiresAfter).UnixNano()); err != nil {
			return fmt.Errorf("revfill: writing records %d-%d: %w", from, to, err)
		}
	}
	return nil
}
