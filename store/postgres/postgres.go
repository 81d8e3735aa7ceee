// Package postgres is Rescind's storage backend for several server instances sharing one
// PostgreSQL database (or a wire-compatible one), through github.com/jackc/pgx/v5.
//
// Migrations are embedded .sql files applied at Open under an advisory lock, so instances that
// start together do not race. Every write that other instances must learn of sends a
// notification (pg_notify) in the same transaction, delivered by Watch through LISTEN;
// revocation writers serialize on a transaction-scoped advisory lock so that Seq order is commit
// order and a poller of RevocationsSince never skips a record.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/rescind/rescind"
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
	pool    *pgxpool.Pool
	dsn     string
	applied []string
}

var (
	_ rescind.Store   = (*Store)(nil)
	_ rescind.Watcher = (*Store)(nil)
)

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
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrating: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockMigrate)); err != nil {
		return fmt.Errorf("postgres: taking migration lock: %w", err)
	}
	defer conn.Exec(context.Background(), "SELECT pg_advisory_unlock($1)", int64(lockMigrate))
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: creating schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: listing migrations: %w", err)
	}
	sort.Strings(names)
	if err := checkNotNewer(ctx, names, func(ctx context.Context) ([][2]string, error) {
		rows, err := conn.Query(ctx, `SELECT version, name FROM schema_migrations`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out [][2]string
		for rows.Next() {
			var v int
			var n string
			if err := rows.Scan(&v, &n); err != nil {
				return nil, err
			}
			out = append(out, [2]string{strconv.Itoa(v), n})
		}
		return out, rows.Err()
	}); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("postgres: migration %s has no numeric prefix", base)
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM schema_migrations WHERE version = $1", version).Scan(&n); err != nil {
			return fmt.Errorf("postgres: migration %s: %w", base, err)
		}
		if n > 0 {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return fmt.Errorf("postgres: migration %s: %w", base, err)
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if err := tx.Conn().PgConn().Exec(ctx, string(body)).Close(); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				version, base, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: applying migration %s: %w", base, err)
		}
		s.applied = append(s.applied, base)
	}
	return nil
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

func nanos(t time.Time) int64 { return t.UnixNano() }

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// optionalNanos stores the zero time as 0.
func optionalNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// tokenFormat stores an empty format as opaque.
func tokenFormat(f string) string {
	if f == "" {
		return rescind.TokenFormatOpaque
	}
	return f
}

func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// CreateClient implements rescind.Store.
func (s *Store) CreateClient(ctx context.Context, c rescind.Client) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO clients
		(id, name, secret_hash, public, grant_types, scopes, redirect_uris, token_ttl_ns, created_at, allow_plain_pkce, token_format,
		resource_server, resources, allow_insecure_redirect, previous_secret_hash, previous_secret_expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)`,
		c.ID, c.Name, c.SecretHash, c.Public, list(c.GrantTypes), list(c.Scopes), list(c.RedirectURIs),
		int64(c.TokenTTL), nanos(c.CreatedAt), c.AllowPlainPKCE, tokenFormat(c.TokenFormat),
		c.ResourceServer, list(c.Resources), c.AllowInsecureRedirect, c.PreviousSecretHash, optionalNanos(c.PreviousSecretExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: client %q: %w", c.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: creating client: %w", err)
	}
	return nil
}

const clientColumns = `id, name, secret_hash, public, grant_types, scopes, redirect_uris, token_ttl_ns, created_at, allow_plain_pkce, token_format,
	resource_server, resources, allow_insecure_redirect, previous_secret_hash, previous_secret_expires_at`

func scanClient(row pgx.Row) (rescind.Client, error) {
	var c rescind.Client
	var ttl, created, prevExp int64
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &c.GrantTypes, &c.Scopes, &c.RedirectURIs, &ttl, &created, &c.AllowPlainPKCE, &c.TokenFormat,
		&c.ResourceServer, &c.Resources, &c.AllowInsecureRedirect, &c.PreviousSecretHash, &prevExp); err != nil {
		return c, err
	}
	if prevExp != 0 {
		c.PreviousSecretExpiresAt = fromNanos(prevExp)
	}
	c.TokenTTL = time.Duration(ttl)
	c.CreatedAt = fromNanos(created)
	return c, nil
}

// GetClient implements rescind.Store.
func (s *Store) GetClient(ctx context.Context, id string) (rescind.Client, error) {
	c, err := scanClient(s.pool.QueryRow(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("postgres: client %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("postgres: reading client %q: %w", id, err)
	}
	return c, nil
}

// ListClients implements rescind.Store.
func (s *Store) ListClients(ctx context.Context) ([]rescind.Client, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing clients: %w", err)
	}
	defer rows.Close()
	out := []rescind.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: listing clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing clients: %w", err)
	}
	return out, nil
}

// UpdateClient implements rescind.Store.
func (s *Store) UpdateClient(ctx context.Context, id string, u rescind.ClientUpdate) (rescind.Client, error) {
	var sets []string
	args := []any{id}
	set := func(col string, v any) {
		args = append(args, v)
		sets = append(sets, fmt.Sprintf("%s = $%d", col, len(args)))
	}
	if u.Name != nil {
		set("name", *u.Name)
	}
	if u.Scopes != nil {
		set("scopes", list(*u.Scopes))
	}
	if u.RedirectURIs != nil {
		set("redirect_uris", list(*u.RedirectURIs))
	}
	if u.TokenTTL != nil {
		set("token_ttl_ns", int64(*u.TokenTTL))
	}
	if len(sets) == 0 {
		return s.GetClient(ctx, id)
	}
	return s.changeClient(ctx, id, `UPDATE clients SET `+strings.Join(sets, ", ")+` WHERE id = $1 RETURNING `+clientColumns, args...)
}

// RotateClientSecret implements rescind.Store.
func (s *Store) RotateClientSecret(ctx context.Context, id, hash string, previousUntil time.Time) (rescind.Client, error) {
	// The right-hand sides read the row as it was (under its lock): the replaced secret is the
	// stored one.
	return s.changeClient(ctx, id, `UPDATE clients SET previous_secret_hash = CASE WHEN $2 THEN secret_hash ELSE '' END,
		previous_secret_expires_at = $3, secret_hash = $4 WHERE id = $1 RETURNING `+clientColumns,
		id, !previousUntil.IsZero(), optionalNanos(previousUntil), hash)
}

// changeClient runs the update query, which returns the client's columns, and tells every
// instance at commit.
func (s *Store) changeClient(ctx context.Context, id, query string, args ...any) (rescind.Client, error) {
	var c rescind.Client
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		c, err = scanClient(tx.QueryRow(ctx, query, args...))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: client %q: %w", id, rescind.ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("postgres: updating client %q: %w", id, err)
		}
		// Every instance drops its cached copy and verified secrets at commit.
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, chanClients, id); err != nil {
			return fmt.Errorf("postgres: notifying: %w", err)
		}
		return nil
	})
	return c, err
}

// DeleteClient implements rescind.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time, rev rescind.Revocation) ([]rescind.Revocation, error) {
	var revs []rescind.Revocation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM clients WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("postgres: deleting client %q: %w", id, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: client %q: %w", id, rescind.ErrNotFound)
		}
		// One audit entry for the deletion, dated now (the cut-off is later), not one per grant.
		if rev.Actor != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)`,
				nanos(now), rev.Actor, "revoke_"+string(rev.Kind), rev.Key, rev.Reason); err != nil {
				return fmt.Errorf("postgres: writing audit entry: %w", err)
			}
		}
		rev.Actor = ""
		if revs, _, err = revokeGrants(ctx, tx, rescind.GrantFilter{ClientID: id}, rescind.Revocation{RevokedAt: now, Subject: rev.Subject}); err != nil {
			return err
		}
		if err := writeRevocations(ctx, tx, []rescind.Revocation{rev}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, chanClients, id); err != nil {
			return fmt.Errorf("postgres: notifying: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return append(revs, rev), nil
}

// Revoke implements rescind.Store.
func (s *Store) Revoke(ctx context.Context, revs []rescind.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return writeRevocations(ctx, tx, revs)
	})
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

// writeRevocations upserts revs and queues their notifications, inside tx. It first takes the
// revocation writers' advisory lock, held until tx ends, so Seq order is commit order.
func writeRevocations(ctx context.Context, tx pgx.Tx, revs []rescind.Revocation) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(lockRevocator)); err != nil {
		return fmt.Errorf("postgres: taking revocation lock: %w", err)
	}
	b := &pgx.Batch{}
	for _, r := range revs {
		// A record that already exists keeps the later RevokedAt and ExpiresAt and, if either
		// moved, gets a new Seq so that pollers see it again.
		idx := r.StatusIdx
		if r.StatusList == "" {
			idx = -1
		}
		// The record keeps the audience it was first written with: a merge moves times, never
		// who may receive the record.
		b.Queue(`INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (kind, key) DO UPDATE SET
				seq = nextval(pg_get_serial_sequence('revocations', 'seq')),
				revoked_at = GREATEST(revocations.revoked_at, EXCLUDED.revoked_at),
				expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at)
			WHERE revocations.revoked_at < EXCLUDED.revoked_at OR revocations.expires_at < EXCLUDED.expires_at`,
			string(r.Kind), r.Key, r.ClientID, nanos(r.RevokedAt), nanos(r.ExpiresAt), r.Subject, r.StatusList, idx, list(r.Audience))
	}
	for _, r := range revs {
		if r.Actor != "" {
			b.Queue(`INSERT INTO audit (at, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)`,
				nanos(r.RevokedAt), r.Actor, "revoke_"+string(r.Kind), r.Key, r.Reason)
		}
	}
	var payloads []string
	for _, r := range revs {
		if len(revs) > maxNotifiedRecords {
			break
		}
		p, _ := json.Marshal(notice{r.Kind, r.Key, r.ClientID, nanos(r.RevokedAt), nanos(r.ExpiresAt), r.Subject, r.StatusList, r.StatusIdx, r.Audience})
		if len(p) > maxPayload {
			payloads = nil // too large to carry (a long audience): listeners reload instead
			break
		}
		payloads = append(payloads, string(p))
	}
	if payloads == nil {
		b.Queue(`SELECT pg_notify($1, '')`, chanRevocations)
	}
	for _, p := range payloads {
		b.Queue(`SELECT pg_notify($1, $2)`, chanRevocations, p)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("postgres: writing revocations: %w", err)
	}
	return nil
}

// RevocationsSince implements rescind.Store.
func (s *Store) RevocationsSince(ctx context.Context, afterSeq int64, now time.Time, limit int) ([]rescind.Revocation, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience
		FROM revocations WHERE seq > $1 AND expires_at >= $2 ORDER BY seq LIMIT $3`, afterSeq, nanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading revocations: %w", err)
	}
	defer rows.Close()
	var out []rescind.Revocation
	for rows.Next() {
		var r rescind.Revocation
		var kind string
		var revokedAt, expiresAt int64
		if err := rows.Scan(&r.Seq, &kind, &r.Key, &r.ClientID, &revokedAt, &expiresAt, &r.Subject, &r.StatusList, &r.StatusIdx, &r.Audience); err != nil {
			return nil, fmt.Errorf("postgres: reading revocations: %w", err)
		}
		if len(r.Audience) == 0 {
			r.Audience = nil
		}
		r.Kind = rescind.RevocationKind(kind)
		r.RevokedAt, r.ExpiresAt = fromNanos(revokedAt), fromNanos(expiresAt)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading revocations: %w", err)
	}
	return out, nil
}

// LastRevocationSeq implements rescind.Store.
func (s *Store) LastRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM revocations`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: reading last revocation: %w", err)
	}
	return seq, nil
}

// DeleteExpiredRevocations implements rescind.Store.
func (s *Store) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM revocations WHERE expires_at < $1`, nanos(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: deleting expired revocations: %w", err)
	}
	return tag.RowsAffected(), nil
}

// CountRevocations implements rescind.Store.
func (s *Store) CountRevocations(ctx context.Context) (int64, error) {
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM revocations`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: counting revocations: %w", err)
	}
	return n, nil
}

// CreateKey implements rescind.Store.
func (s *Store) CreateKey(ctx context.Context, k rescind.Key) error {
	act := k.ActivatesAt
	if act.IsZero() {
		act = k.CreatedAt
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO keys (id, use, algorithm, sealed, created_at, activates_at) VALUES ($1, $2, $3, $4, $5, $6)`,
			k.ID, k.Use, k.Algorithm, k.Sealed, nanos(k.CreatedAt), nanos(act)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, chanKeys, k.ID)
		return err
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: key %q: %w", k.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: creating key: %w", err)
	}
	return nil
}

// ListKeys implements rescind.Store.
func (s *Store) ListKeys(ctx context.Context, use string) ([]rescind.Key, error) {
	return listKeys(ctx, s.pool, use, "")
}

// querier is what listKeys needs of a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// listKeys reads the keys of use; suffix is appended to the query (FOR UPDATE).
func listKeys(ctx context.Context, q querier, use, suffix string) ([]rescind.Key, error) {
	rows, err := q.Query(ctx, `SELECT id, use, algorithm, sealed, created_at, activates_at, retired_at FROM keys
		WHERE use = $1`+suffix, use)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing keys: %w", err)
	}
	defer rows.Close()
	var out []rescind.Key
	for rows.Next() {
		var k rescind.Key
		var created, activates, retired int64
		if err := rows.Scan(&k.ID, &k.Use, &k.Algorithm, &k.Sealed, &created, &activates, &retired); err != nil {
			return nil, fmt.Errorf("postgres: listing keys: %w", err)
		}
		k.CreatedAt, k.ActivatesAt = fromNanos(created), fromNanos(activates)
		if retired != 0 {
			k.RetiredAt = fromNanos(retired)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing keys: %w", err)
	}
	rescind.SortKeys(out)
	return out, nil
}

// CreateStatusList implements rescind.Store.
func (s *Store) CreateStatusList(ctx context.Context, l rescind.StatusList) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO status_lists (id, created_at, expires_at) VALUES ($1, $2, $3)`,
		l.ID, nanos(l.CreatedAt), nanos(l.ExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: status list %q: %w", l.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: recording status list: %w", err)
	}
	return nil
}

// GetStatusList implements rescind.Store.
func (s *Store) GetStatusList(ctx context.Context, id string) (rescind.StatusList, error) {
	l := rescind.StatusList{ID: id}
	var created, expires int64
	err := s.pool.QueryRow(ctx, `SELECT created_at, expires_at FROM status_lists WHERE id = $1`, id).Scan(&created, &expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, fmt.Errorf("postgres: status list %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("postgres: reading status list: %w", err)
	}
	l.CreatedAt, l.ExpiresAt = fromNanos(created), fromNanos(expires)
	return l, nil
}

// checkNotNewer refuses a database migrated by a newer release: one whose schema_migrations
// (read by applied: version and name) holds a migration this binary does not embed. An older
// binary would misread or ignore what a newer one writes (a revocation it cannot see is a
// revocation lost), so it must not serve such a database.
func checkNotNewer(ctx context.Context, embedded []string, applied func(context.Context) ([][2]string, error)) error {
	known := map[string]bool{}
	for _, name := range embedded {
		v, _, _ := strings.Cut(strings.TrimPrefix(name, "migrations/"), "_")
		n, _ := strconv.Atoi(v)
		known[strconv.Itoa(n)] = true
	}
	rows, err := applied(ctx)
	if err != nil {
		return fmt.Errorf("reading schema_migrations: %w", err)
	}
	for _, r := range rows {
		if !known[r[0]] {
			return fmt.Errorf("%w: it has migration %s (%s), which this release does not know: run the release that "+
				"migrated it, or a newer one", rescind.ErrNewerSchema, r[0], r[1])
		}
	}
	return nil
}

// RetireKey implements rescind.Store. The keys of the use are locked (FOR UPDATE) for the
// transaction, so concurrent retirements on any instances are serialized; the change is
// notified on the keys channel, and the record on the revocations channel.
func (s *Store) RetireKey(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
	activated := ""
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var use string
		if err := tx.QueryRow(ctx, `SELECT use FROM keys WHERE id = $1`, id).Scan(&use); errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: key %q: %w", id, rescind.ErrNotFound)
		} else if err != nil {
			return fmt.Errorf("postgres: retiring key: %w", err)
		}
		keys, err := listKeys(ctx, tx, use, " FOR UPDATE")
		if err != nil {
			return err
		}
		i, j, err := rescind.PlanRetirement(keys, id, rev.RevokedAt)
		if err != nil {
			return fmt.Errorf("postgres: retiring key %q: %w", id, err)
		}
		if !keys[i].RetiredAt.IsZero() {
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE keys SET retired_at = $1 WHERE id = $2`, nanos(rev.RevokedAt), id); err != nil {
			return fmt.Errorf("postgres: retiring key: %w", err)
		}
		if j >= 0 {
			activated = keys[j].ID
			if _, err := tx.Exec(ctx, `UPDATE keys SET activates_at = LEAST(activates_at, $1) WHERE id = $2`,
				nanos(rev.RevokedAt), activated); err != nil {
				return fmt.Errorf("postgres: activating key: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, chanKeys, id); err != nil {
			return fmt.Errorf("postgres: notifying: %w", err)
		}
		return writeRevocations(ctx, tx, []rescind.Revocation{rev})
	})
	if err != nil {
		return "", err
	}
	return activated, nil
}
