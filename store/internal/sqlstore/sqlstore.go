package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rescind/rescind"
)

// Querier runs statements on a database handle or inside a transaction: what the shared code
// needs of a driver. Each backend adapts its own (database/sql, pgx).
type Querier interface {
	// Exec runs a statement and returns how many rows it changed. Without arguments the query
	// may hold several statements (a migration).
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// Query runs a query that returns rows. Read them with All.
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	// QueryRow runs a query that returns at most one row; Scan returns an error wrapping
	// sql.ErrNoRows if there is none.
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Row is one row of a result.
type Row interface {
	Scan(dest ...any) error
}

// Rows is the result of Query, read one row at a time (the contract of database/sql's Rows).
type Rows interface {
	Row
	Next() bool
	Err() error
	Close() error
}

// DB is a database handle that can also run a transaction.
type DB interface {
	Querier
	// InTx runs fn in a transaction and commits it if fn returns nil; otherwise it rolls it
	// back and returns fn's error.
	InTx(ctx context.Context, fn func(tx Querier) error) error
}

// Change says what Dialect.Notify announces.
type Change int

const (
	// ClientChanged says that the client whose id is given changed or was deleted.
	ClientChanged Change = iota + 1
	// KeysChanged says that keys were added or changed (the id is one of them).
	KeysChanged
)

// Dialect is what a backend tells the shared code about its database.
type Dialect struct {
	// Name starts every error message ("sqlite", "postgres").
	Name string
	// IsUniqueViolation reports whether err is the database refusing a duplicate key.
	IsUniqueViolation func(err error) bool
	// Notify, if not nil, tells the other instances sharing the database, inside tx, that
	// something changed: they learn of it when tx commits. It is nil for a database that only
	// one instance uses.
	Notify func(ctx context.Context, tx Querier, c Change, id string) error
	// SkipLocked is appended to the read of an outbox claim (ClaimOutbox): " FOR UPDATE SKIP
	// LOCKED" on PostgreSQL, so that concurrent claimers take different rows without waiting for
	// each other; empty on SQLite, whose transactions take the write lock when they begin.
	SkipLocked string
	// ShareLock is appended to the read of a row that must not change until the transaction
	// commits: a grant's (RecordGrantTokenStatus), a Shared Signals stream's (AddSSFSubject,
	// AppendSSFEvents): " FOR SHARE" on PostgreSQL, so that a concurrent revocation of the grant
	// or change of the stream, which reads it FOR UPDATE, is ordered with it; empty on SQLite,
	// whose write statements are serialised.
	ShareLock string
	// RowLock is appended to the read of a row that its transaction changes from what it read
	// (UpdateSSFStream): " FOR UPDATE" on PostgreSQL, so that a concurrent change of the row
	// waits for this one's commit and then reads what it wrote; empty on SQLite, whose
	// transactions take the write lock when they begin.
	RowLock string
	// Lock, if not nil, takes a lock on (scope, key) held until tx ends, so that a count and the
	// insert it allows are not interleaved with another transaction's (an advisory lock on
	// PostgreSQL). It is nil on SQLite, whose transactions take the write lock when they begin.
	Lock func(ctx context.Context, tx Querier, scope, key string) error
}

// lock calls Dialect.Lock, if there is one.
func (s *Store) lock(ctx context.Context, tx Querier, scope, key string) error {
	if s.d.Lock == nil {
		return nil
	}
	return s.d.Lock(ctx, tx, scope, key)
}

// Store implements the methods of rescind.Store whose SQL is the same on every backend. A
// backend embeds it and adds the methods whose transactions it controls itself (see the
// package doc).
type Store struct {
	db DB
	d  Dialect
}

// New returns a Store that runs its statements on db.
func New(db DB, d Dialect) *Store { return &Store{db: db, d: d} }

// errorf formats an error that starts with the backend's name.
func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf(s.d.Name+": "+format, args...)
}

// notify calls Dialect.Notify, if there is one.
func (s *Store) notify(ctx context.Context, tx Querier, c Change, id string) error {
	if s.d.Notify == nil {
		return nil
	}
	if err := s.d.Notify(ctx, tx, c, id); err != nil {
		return fmt.Errorf("notifying: %w", err)
	}
	return nil
}

// All runs query on q and returns what scan makes of each row, in order (an empty, non-nil
// slice if there are none). If the query, a row, the iteration or closing the rows fails, it
// returns that error and no rows: a caller never acts on part of a result.
func All[T any](ctx context.Context, q Querier, scan func(Row) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

// isNoRows reports whether err says that a query returned no row.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// Nanos encodes a time as Unix nanoseconds, the way every time is stored.
func Nanos(t time.Time) int64 { return t.UnixNano() }

// OptionalNanos encodes a time that may be zero ("never"): the zero time is stored as 0.
func OptionalNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// FromNanos decodes a time stored by Nanos, in UTC.
func FromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// OptionalTime decodes a time stored by OptionalNanos: 0 is the zero time.
func OptionalTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return FromNanos(n)
}

// JSONList encodes a list as the JSON array it is stored as; nil is stored as [].
func JSONList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

// OptionalJSONList encodes a list that may be absent: nil as JSON null (ParseList gives nil
// back), any other as JSONList does (ParseList gives a non-nil list back, empty included).
func OptionalJSONList(v []string) string {
	if v == nil {
		return "null"
	}
	return JSONList(v)
}

// ParseList decodes a list stored by JSONList or OptionalJSONList.
func ParseList(s string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, fmt.Errorf("a stored list: %w", err)
	}
	return v, nil
}

// AuditAction names the audit action of a revocation record.
func AuditAction(k rescind.RevocationKind) string { return "revoke_" + string(k) }

// writeAudit writes the audit entry of rev (its Actor, Reason and Key) dated at, in tx.
func writeAudit(ctx context.Context, tx Querier, at time.Time, rev rescind.Revocation) error {
	if _, err := tx.Exec(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)`,
		Nanos(at), rev.Actor, AuditAction(rev.Kind), rev.Key, rev.Reason); err != nil {
		return fmt.Errorf("writing audit entry: %w", err)
	}
	return nil
}
