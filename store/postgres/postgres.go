// Package postgres is Rescind's storage backend for several server instances sharing one
// PostgreSQL database (or a wire-compatible one), through github.com/jackc/pgx/v5.
//
// Migrations are embedded .sql files applied at Open under an advisory lock, so instances that
// start together do not race. Every write that other instances must learn of sends a
// notification (pg_notify) in the same transaction, delivered by Watch through LISTEN;
// revocation writers serialize on a transaction-scoped advisory lock so that Seq order is commit
// order and a poller of RevocationsSince never skips a record.
//
// The SQL it shares with store/sqlite is in store/internal/sqlstore; this package adapts pgx
// to it and holds what is PostgreSQL's own: the pool, the migration lock, notifications and
// Watch, the batched revocation writer, and the methods whose transactions matter (tx.go),
// which take row locks (FOR UPDATE) and advisory locks.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/internal/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Advisory lock keys (arbitrary constants, "rscd" + n).
const (
	lockMigrate   = 0x72736364_0001
	lockRevocator = 0x72736364_0002
)

// Notification channels.
const (
	chanRevocations = "rescind_revocations"
	chanClients     = "rescind_clients"
	chanKeys        = "rescind_keys"
)

// maxNotifiedRecords is the most revocations sent in notifications per transaction; a larger
// batch sends one "reload" notification instead (payloads are limited to 8000 bytes each).
const maxNotifiedRecords = 64

// maxPayload bounds one notification's payload, below PostgreSQL's 8000-byte limit; a record
// that does not fit is announced by a "reload" notification instead.
const maxPayload = 7900

// Store is a rescind.Store and rescind.Watcher on PostgreSQL.
type Store struct {
	*sqlstore.Store
	pool    *pgxpool.Pool
	dsn     string
	applied []string
	fault   sqlstore.RowsFault // disarmed but in the conformance suite (export_test.go)
}

var (
	_ rescind.Store   = (*Store)(nil)
	_ rescind.Watcher = (*Store)(nil)
)

// dialect is PostgreSQL's, for the shared SQL.
var dialect = sqlstore.Dialect{Name: "postgres", IsUniqueViolation: isUniqueViolation, Notify: notify,
	SkipLocked: " FOR UPDATE SKIP LOCKED", ShareLock: " FOR SHARE", RowLock: forUpdate, Lock: advisoryLock}

// advisoryLock takes a transaction-scoped advisory lock on (scope, key).
func advisoryLock(ctx context.Context, tx sqlstore.Querier, scope, key string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))`, scope, key); err != nil {
		return fmt.Errorf("locking %s %s: %w", scope, key, err)
	}
	return nil
}

// Open connects to the database at dsn (a postgres:// URL or key=value string) and applies
// pending migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing DSN: %w", err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// Without connect_timeout in the DSN, an unreachable host would hold Open for the
		// operating system's TCP timeout (minutes).
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "rescind"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	s := &Store{pool: pool, dsn: dsn}
	s.Store = sqlstore.New(handle{querier{pool, &s.fault}, pool}, dialect)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// migrate applies pending migrations on one connection holding the migration lock, so that
// of several instances starting at once exactly one applies each migration.
func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockMigrate)); err != nil {
		return fmt.Errorf("taking migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(lockMigrate))
	files, _ := fs.Sub(migrations, "migrations") // a valid path: no error
	s.applied, err = sqlstore.Migrate(ctx, handle{querier{conn, &s.fault}, conn}, files)
	return err
}

// Migrated returns the names of the migrations Open applied, in order; none if the database
// was up to date (or another instance applied them first).
func (s *Store) Migrated() []string { return s.applied }

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks the connection.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// notify implements sqlstore.Dialect.Notify with pg_notify, delivered to every instance's
// Watch when tx commits.
func notify(ctx context.Context, tx sqlstore.Querier, c sqlstore.Change, id string) error {
	ch := chanClients
	if c == sqlstore.KeysChanged {
		ch = chanKeys
	}
	_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, ch, id)
	return err
}

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// Revoke implements rescind.Store: one round trip (revocationBatch, sent without BEGIN and
// COMMIT: its statements are one implicit transaction).
func (s *Store) Revoke(ctx context.Context, revs []rescind.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	if err := s.pool.SendBatch(ctx, revocationBatch(revs)).Close(); err != nil {
		return fmt.Errorf("postgres: writing revocations: %w", err)
	}
	return nil
}

// notice is the payload of a revocation notification.
type notice struct {
	Kind      rescind.RevocationKind `json:"k"`
	Key       string                 `json:"i"`
	ClientID  string                 `json:"c"`
	RevokedAt int64                  `json:"r"`
	ExpiresAt int64                  `json:"e"`
	Subject   string                 `json:"s,omitempty"`
	List      string                 `json:"l,omitempty"`
	Idx       int64                  `json:"x,omitempty"`
	Audience  []string               `json:"a,omitempty"`
}

// writeRevocations upserts revs and queues their notifications, inside tx (revocationBatch).
func writeRevocations(ctx context.Context, tx pgx.Tx, revs []rescind.Revocation) error {
	if err := tx.SendBatch(ctx, revocationBatch(revs)).Close(); err != nil {
		return fmt.Errorf("postgres: writing revocations: %w", err)
	}
	return nil
}

// querier adapts a pool, a connection or a transaction to sqlstore.Querier, passing the rows
// of every query through the store's fault (see sqlstore.RowsFault).
type querier struct {
	c interface {
		Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
		Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
		QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	}
	fault *sqlstore.RowsFault
}

func (q querier) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := q.c.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (q querier) Query(ctx context.Context, query string, args ...any) (sqlstore.Rows, error) {
	r, err := q.c.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return q.fault.Wrap(rows{r}), nil
}

func (q querier) QueryRow(ctx context.Context, query string, args ...any) sqlstore.Row {
	return q.c.QueryRow(ctx, query, args...)
}

// rows gives pgx.Rows the Close of sqlstore.Rows: it reports the error that ended the rows.
type rows struct{ pgx.Rows }

func (r rows) Close() error {
	r.Rows.Close()
	return r.Rows.Err()
}

// handle is a pool or connection as a sqlstore.DB.
type handle struct {
	querier
	b interface {
		Begin(ctx context.Context) (pgx.Tx, error)
	}
}

func (h handle) InTx(ctx context.Context, fn func(tx sqlstore.Querier) error) error {
	return pgx.BeginFunc(ctx, h.b, func(tx pgx.Tx) error { return fn(querier{tx, h.fault}) })
}

// q is tx as a sqlstore.Querier.
func (s *Store) q(tx pgx.Tx) sqlstore.Querier { return querier{tx, &s.fault} }
