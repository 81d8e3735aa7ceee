package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rescind/rescind"
)

// Migrate applies the migrations of files (its NNNN_name.sql files, in the order of their
// names) that db has not recorded in schema_migrations, each in a transaction with its
// record, and returns the names of those it applied. It first refuses a database that records
// a migration files does not hold (rescind.ErrNewerSchema): an older binary would misread or
// ignore what a newer one writes, and a revocation it cannot see is a revocation lost.
//
// db should be one connection, on which the backend holds whatever lock keeps other
// instances from migrating at the same time.
func Migrate(ctx context.Context, db DB, files fs.FS) ([]string, error) {
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`); err != nil {
		return nil, fmt.Errorf("creating schema_migrations: %w", err)
	}
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing migrations: %w", err)
	}
	slices.Sort(names)
	versions := map[int]bool{}
	for _, name := range names {
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("migration %s has no numeric prefix", name)
		}
		versions[v] = true
	}
	type record struct {
		version int
		name    string
	}
	recorded, err := All(ctx, db, func(r Row) (rec record, err error) {
		return rec, r.Scan(&rec.version, &rec.name)
	}, `SELECT version, name FROM schema_migrations`)
	if err != nil {
		return nil, fmt.Errorf("reading schema_migrations: %w", err)
	}
	for _, r := range recorded {
		if !versions[r.version] {
			return nil, fmt.Errorf("%w: it has migration %d (%s), which this release does not know: run the release that "+
				"migrated it, or a newer one", rescind.ErrNewerSchema, r.version, r.name)
		}
	}
	var applied []string
	for _, name := range names {
		v, _ := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return applied, fmt.Errorf("migration %s: %w", name, err)
		}
		done := false
		err = db.InTx(ctx, func(tx Querier) error {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM schema_migrations WHERE version = $1`, v).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			done = true
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				v, name, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("applying migration %s: %w", name, err)
		}
		if done {
			applied = append(applied, name)
		}
	}
	return applied, nil
}
