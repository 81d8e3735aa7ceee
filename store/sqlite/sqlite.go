// Package sqlite is Rescind's embedded storage backend: SQLite through modernc.org/sqlite (pure
// Go, no cgo) in WAL mode with synchronous=FULL, so a committed revocation survives a crash or
// power loss. Migrations are embedded .sql files applied in order at Open.
//
// The SQL it shares with store/postgres is in store/internal/sqlstore; this package adapts
// database/sql to it and holds what is SQLite's own: opening and backing up the file, writing
// revocation records, and the methods whose transactions matter (tx.go), which rely on every
// transaction taking the database's write lock when it begins (_txlock=immediate).
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/internal/sqlstore"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a rescind.Store backed by one SQLite database file.
type Store struct {
	*sqlstore.Store
	db      *sql.DB
	path    string
	applied []string
	fault   sqlstore.RowsFault // disarmed but in the conformance suite (export_test.go)
	scan    scanner            // read-only connections for ScanRevocations (scan.go)
}

// ErrNotDatabase is returned by Open for a file that is not a SQLite database, or is corrupt.
var ErrNotDatabase = errors.New("sqlite: not a database, or corrupt")

var _ rescind.Store = (*Store)(nil)

// dsn is the connection string for the database at path; mode "rw" opens only an existing
// database, "rwc" creates it if needed.
func dsn(path, mode string) string {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	q.Set("mode", mode)
	return "file:" + path + "?" + q.Encode()
}

// Open opens (creating if needed) the database at path and applies pending migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := sql.Open("sqlite", dsn(path, "rwc"))
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and reads are rare (clients are cached and
	// tokens are not stored). This also keeps every write strictly ordered.
	db.SetMaxOpenConns(1)
	db.SetConnMaxLifetime(0)
	s := &Store{db: db, path: path}
	h := handle{querier{db, &s.fault}, db}
	s.Store = sqlstore.New(h, sqlstore.Dialect{Name: "sqlite", IsUniqueViolation: isUniqueViolation})
	files, _ := fs.Sub(migrations, "migrations") // a valid path: no error
	if s.applied, err = sqlstore.Migrate(ctx, h, files); err != nil {
		db.Close()
		if isNotDatabase(err) {
			return nil, fmt.Errorf("%w: %w", ErrNotDatabase, err)
		}
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	return s, nil
}

// isNotDatabase reports whether err is SQLite finding a file that is not a database, or is
// corrupt.
func isNotDatabase(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_NOTADB || se.Code() == sqlite3.SQLITE_CORRUPT)
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

// Migrated returns the names of the migrations Open applied, in order; none if the database
// was up to date.
func (s *Store) Migrated() []string { return s.applied }

// Close closes the database.
func (s *Store) Close() error {
	// After this, scan.db is set for good, or never will be.
	s.scan.once.Do(func() { s.scan.err = errors.New("sqlite: the store is closed") })
	if s.scan.db != nil {
		s.scan.db.Close()
	}
	return s.db.Close()
}

// Ping checks the database connection.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// querier adapts a *sql.DB or *sql.Tx to sqlstore.Querier, passing the rows of every query
// through the store's fault (see sqlstore.RowsFault).
type querier struct {
	c interface {
		ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
		QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
		QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	}
	fault *sqlstore.RowsFault
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := q.c.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	rows, err := q.c.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return q.fault.Wrap(rows), nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.c.QueryRowContext(ctx, query, args...)
}

// handle is the database as a sqlstore.DB.
type handle struct {
	querier
	db *sql.DB
}

func (h handle) InTx(ctx context.Context, fn func(tx sqlstore.Querier) error) error {
	return inTx(ctx, h.db, func(tx *sql.Tx) error { return fn(querier{tx, h.fault}) })
}

// inTx runs fn in a transaction, which holds the database's write lock from its start
// (_txlock=immediate): every transaction of the store is serialized with every other writer,
// of this process or another.
func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// q is tx as a sqlstore.Querier.
func (s *Store) q(tx *sql.Tx) sqlstore.Querier { return querier{tx, &s.fault} }

// Backup writes a consistent copy of the database to dest, a file that must not exist (it is
// created 0600), while the store stays in use: it reads a snapshot on a connection of its own,
// so writers are not held up. See BackupFile.
func (s *Store) Backup(ctx context.Context, dest string) (int64, error) {
	return BackupFile(ctx, s.path, dest)
}

// BackupFile writes a consistent copy of the existing database at src to dest with VACUUM INTO
// (a snapshot in one read transaction; WAL content included), then syncs it. dest must not
// exist: it is created 0600 with O_EXCL, so nothing is ever overwritten, and removed again if the
// copy fails. It returns the size of the copy. The source is not migrated or otherwise changed.
func BackupFile(ctx context.Context, src, dest string) (int64, error) {
	if _, err := os.Stat(src); err != nil {
		return 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	f.Close()
	size, err := backupInto(ctx, src, dest)
	if err != nil {
		os.Remove(dest)
		return 0, err
	}
	return size, nil
}

func backupInto(ctx context.Context, src, dest string) (int64, error) {
	db, err := sql.Open("sqlite", dsn(src, "rw"))
	if err != nil {
		return 0, fmt.Errorf("sqlite: backup: opening %s: %w", src, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	// VACUUM INTO accepts the empty file made above as its output.
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dest); err != nil {
		if isNotDatabase(err) {
			return 0, fmt.Errorf("%w: %w", ErrNotDatabase, err)
		}
		return 0, fmt.Errorf("sqlite: backup of %s: %w", src, err)
	}
	f, err := os.OpenFile(dest, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sqlite: backup: syncing %s: %w", dest, err)
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("sqlite: backup: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dest)); err == nil { // the new file's directory entry
		d.Sync()
		d.Close()
	}
	return fi.Size(), nil
}
