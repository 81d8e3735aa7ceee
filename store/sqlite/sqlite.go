// Package sqlite is Rescind's embedded storage backend: SQLite through modernc.org/sqlite (pure
// Go, no cgo) in WAL mode with synchronous=FULL, so a committed revocation survives a crash or
// power loss. Migrations are embedded .sql files applied in order at Open.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/rescind/rescind"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a rescind.Store backed by one SQLite database file.
type Store struct {
	db      *sql.DB
	path    string
	applied []string
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
	if err := s.migrate(ctx); err != nil {
		db.Close()
		var se *sqlite.Error
		if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_NOTADB || se.Code() == sqlite3.SQLITE_CORRUPT) {
			return nil, fmt.Errorf("%w: %w", ErrNotDatabase, err)
		}
		return nil, err
	}
	return s, nil
}

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
		var se *sqlite.Error
		if errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_NOTADB || se.Code() == sqlite3.SQLITE_CORRUPT) {
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

// Migrated returns the names of the migrations Open applied, in order; none if the database
// was up to date.
func (s *Store) Migrated() []string { return s.applied }

func (s *Store) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("sqlite: creating schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("sqlite: listing migrations: %w", err)
	}
	sort.Strings(names)
	if err := checkNotNewer(ctx, names, func(ctx context.Context) ([][2]string, error) {
		rows, err := s.db.QueryContext(ctx, `SELECT version, name FROM schema_migrations`)
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
		return fmt.Errorf("sqlite: %w", err)
	}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("sqlite: migration %s has no numeric prefix", base)
		}
		if err := s.applyMigration(ctx, version, base, name); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) applyMigration(ctx context.Context, version int, base, name string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", base, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", base, err)
	}
	if n > 0 {
		return nil
	}
	body, err := migrations.ReadFile(name)
	if err != nil {
		return fmt.Errorf("sqlite: migration %s: %w", base, err)
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("sqlite: applying migration %s: %w", base, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		version, base, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("sqlite: recording migration %s: %w", base, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: committing migration %s: %w", base, err)
	}
	s.applied = append(s.applied, base)
	return nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the database connection.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
}

// tokenFormat stores an empty format as opaque.
func tokenFormat(f string) string {
	if f == "" {
		return rescind.TokenFormatOpaque
	}
	return f
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}

func parseList(s string) ([]string, error) {
	var v []string
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	return v, nil
}

func nanos(t time.Time) int64 { return t.UnixNano() }

// optionalNanos stores the zero time as 0.
func optionalNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

// CreateClient implements rescind.Store.
func (s *Store) CreateClient(ctx context.Context, c rescind.Client) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO clients
		(id, name, secret_hash, public, grant_types, scopes, redirect_uris, token_ttl_ns, created_at, allow_plain_pkce, token_format,
		resource_server, resources, allow_insecure_redirect, previous_secret_hash, previous_secret_expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.SecretHash, c.Public, jsonList(c.GrantTypes), jsonList(c.Scopes), jsonList(c.RedirectURIs),
		int64(c.TokenTTL), nanos(c.CreatedAt), c.AllowPlainPKCE, tokenFormat(c.TokenFormat),
		c.ResourceServer, jsonList(c.Resources), c.AllowInsecureRedirect, c.PreviousSecretHash, optionalNanos(c.PreviousSecretExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: client %q: %w", c.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: creating client: %w", err)
	}
	return nil
}

const clientColumns = `id, name, secret_hash, public, grant_types, scopes, redirect_uris, token_ttl_ns, created_at, allow_plain_pkce, token_format,
	resource_server, resources, allow_insecure_redirect, previous_secret_hash, previous_secret_expires_at`

func scanClient(row interface{ Scan(...any) error }) (rescind.Client, error) {
	var c rescind.Client
	var gt, sc, ru, res string
	var ttl, created, prevExp int64
	if err := row.Scan(&c.ID, &c.Name, &c.SecretHash, &c.Public, &gt, &sc, &ru, &ttl, &created, &c.AllowPlainPKCE, &c.TokenFormat,
		&c.ResourceServer, &res, &c.AllowInsecureRedirect, &c.PreviousSecretHash, &prevExp); err != nil {
		return c, err
	}
	if prevExp != 0 {
		c.PreviousSecretExpiresAt = fromNanos(prevExp)
	}
	var err error
	if c.GrantTypes, err = parseList(gt); err != nil {
		return c, fmt.Errorf("grant_types: %w", err)
	}
	if c.Scopes, err = parseList(sc); err != nil {
		return c, fmt.Errorf("scopes: %w", err)
	}
	if c.RedirectURIs, err = parseList(ru); err != nil {
		return c, fmt.Errorf("redirect_uris: %w", err)
	}
	if c.Resources, err = parseList(res); err != nil {
		return c, fmt.Errorf("resources: %w", err)
	}
	c.TokenTTL = time.Duration(ttl)
	c.CreatedAt = fromNanos(created)
	return c, nil
}

// GetClient implements rescind.Store.
func (s *Store) GetClient(ctx context.Context, id string) (rescind.Client, error) {
	c, err := scanClient(s.db.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("sqlite: client %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: reading client %q: %w", id, err)
	}
	return c, nil
}

// ListClients implements rescind.Store.
func (s *Store) ListClients(ctx context.Context) ([]rescind.Client, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+clientColumns+` FROM clients ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing clients: %w", err)
	}
	defer rows.Close()
	out := []rescind.Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listing clients: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing clients: %w", err)
	}
	return out, nil
}

// UpdateClient implements rescind.Store.
func (s *Store) UpdateClient(ctx context.Context, id string, u rescind.ClientUpdate) (rescind.Client, error) {
	var sets []string
	var args []any
	if u.Name != nil {
		sets, args = append(sets, "name = ?"), append(args, *u.Name)
	}
	if u.Scopes != nil {
		sets, args = append(sets, "scopes = ?"), append(args, jsonList(*u.Scopes))
	}
	if u.RedirectURIs != nil {
		sets, args = append(sets, "redirect_uris = ?"), append(args, jsonList(*u.RedirectURIs))
	}
	if u.TokenTTL != nil {
		sets, args = append(sets, "token_ttl_ns = ?"), append(args, int64(*u.TokenTTL))
	}
	if len(sets) == 0 {
		return s.GetClient(ctx, id)
	}
	return s.changeClient(ctx, id, `UPDATE clients SET `+strings.Join(sets, ", ")+` WHERE id = ?`, append(args, id)...)
}

// RotateClientSecret implements rescind.Store.
func (s *Store) RotateClientSecret(ctx context.Context, id, hash string, previousUntil time.Time) (rescind.Client, error) {
	// The right-hand sides read the row as it was: the replaced secret is the stored one.
	return s.changeClient(ctx, id, `UPDATE clients SET previous_secret_hash = CASE WHEN ? THEN secret_hash ELSE '' END,
		previous_secret_expires_at = ?, secret_hash = ? WHERE id = ?`, !previousUntil.IsZero(), optionalNanos(previousUntil), hash, id)
}

// changeClient runs the update query (its last argument the client's id) and returns the client
// as it then is, in one transaction.
func (s *Store) changeClient(ctx context.Context, id, query string, args ...any) (rescind.Client, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return rescind.Client{}, fmt.Errorf("sqlite: updating client %q: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return rescind.Client{}, fmt.Errorf("sqlite: updating client %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return rescind.Client{}, fmt.Errorf("sqlite: updating client %q: %w", id, err)
	} else if n == 0 {
		return rescind.Client{}, fmt.Errorf("sqlite: client %q: %w", id, rescind.ErrNotFound)
	}
	c, err := scanClient(tx.QueryRowContext(ctx, `SELECT `+clientColumns+` FROM clients WHERE id = ?`, id))
	if err != nil {
		return c, fmt.Errorf("sqlite: reading client %q: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return c, fmt.Errorf("sqlite: updating client %q: commit: %w", id, err)
	}
	return c, nil
}

// DeleteClient implements rescind.Store.
func (s *Store) DeleteClient(ctx context.Context, id string, now time.Time, rev rescind.Revocation) ([]rescind.Revocation, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("sqlite: deleting client: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("sqlite: deleting client %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, fmt.Errorf("sqlite: deleting client %q: %w", id, err)
	} else if n == 0 {
		return nil, fmt.Errorf("sqlite: client %q: %w", id, rescind.ErrNotFound)
	}
	// One audit entry for the deletion, dated now (the cut-off is later), not one per grant.
	if rev.Actor != "" {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES (?, ?, ?, ?, ?)`,
			nanos(now), rev.Actor, auditAction(rev.Kind), rev.Key, rev.Reason); err != nil {
			return nil, fmt.Errorf("sqlite: writing audit entry: %w", err)
		}
	}
	rev.Actor = ""
	revs, _, err := revokeGrants(ctx, tx, rescind.GrantFilter{ClientID: id}, rescind.Revocation{RevokedAt: now, Subject: rev.Subject})
	if err != nil {
		return nil, err
	}
	if err := upsertRevocation(ctx, tx, rev); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("sqlite: deleting client %q: commit: %w", id, err)
	}
	return append(revs, rev), nil
}

// Revoke implements rescind.Store.
func (s *Store) Revoke(ctx context.Context, revs []rescind.Revocation) error {
	if len(revs) == 0 {
		return nil
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: revoking: %w", err)
	}
	defer tx.Rollback()
	w, err := newRevWriter(ctx, tx)
	if err != nil {
		return err
	}
	for _, r := range revs {
		if err := w.write(ctx, r); err != nil {
			w.Close()
			return err
		}
	}
	w.Close()
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: revoking: commit: %w", err)
	}
	return nil
}

// revWriter writes revocation records in one transaction with statements prepared once.
type revWriter struct {
	tx            *sql.Tx
	insert, audit *sql.Stmt
}

func newRevWriter(ctx context.Context, tx *sql.Tx) (*revWriter, error) {
	ins, err := tx.PrepareContext(ctx, `INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (kind, key) DO NOTHING`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: preparing revocation insert: %w", err)
	}
	aud, err := tx.PrepareContext(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		ins.Close()
		return nil, fmt.Errorf("sqlite: preparing audit insert: %w", err)
	}
	return &revWriter{tx: tx, insert: ins, audit: aud}, nil
}

func (w *revWriter) Close() {
	w.insert.Close()
	w.audit.Close()
}

// write stores r, merging it with an existing record of the same kind and key: the merged
// record keeps the later RevokedAt and ExpiresAt and, if either moved, gets a new Seq so that
// readers of RevocationsSince see the change. A new record (the common case) is one statement.
func (w *revWriter) write(ctx context.Context, r rescind.Revocation) error {
	if r.Actor != "" {
		if _, err := w.audit.ExecContext(ctx, nanos(r.RevokedAt), r.Actor, auditAction(r.Kind), r.Key, r.Reason); err != nil {
			return fmt.Errorf("sqlite: writing audit entry: %w", err)
		}
	}
	if r.StatusList == "" {
		r.StatusIdx = -1
	}
	aud := jsonList(r.Audience)
	res, err := w.insert.ExecContext(ctx, string(r.Kind), r.Key, r.ClientID, nanos(r.RevokedAt), nanos(r.ExpiresAt), r.Subject, r.StatusList, r.StatusIdx, aud)
	if err != nil {
		return fmt.Errorf("sqlite: writing revocation: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return nil
	}
	var revokedAt, expiresAt int64
	var oldAud string
	if err := w.tx.QueryRowContext(ctx, `SELECT revoked_at, expires_at, audience FROM revocations WHERE kind = ? AND key = ?`,
		string(r.Kind), r.Key).Scan(&revokedAt, &expiresAt, &oldAud); err != nil {
		return fmt.Errorf("sqlite: reading revocation: %w", err)
	}
	if nanos(r.RevokedAt) <= revokedAt && nanos(r.ExpiresAt) <= expiresAt {
		return nil // already covered
	}
	if _, err := w.tx.ExecContext(ctx, `DELETE FROM revocations WHERE kind = ? AND key = ?`, string(r.Kind), r.Key); err != nil {
		return fmt.Errorf("sqlite: replacing revocation: %w", err)
	}
	// The record keeps the audience it was first written with: a merge moves times, never who
	// may receive the record.
	_, err = w.insert.ExecContext(ctx, string(r.Kind), r.Key, r.ClientID, max(revokedAt, nanos(r.RevokedAt)),
		max(expiresAt, nanos(r.ExpiresAt)), r.Subject, r.StatusList, r.StatusIdx, oldAud)
	if err != nil {
		return fmt.Errorf("sqlite: writing revocation: %w", err)
	}
	return nil
}

// upsertRevocation writes one record in tx (see revWriter.write).
func upsertRevocation(ctx context.Context, tx *sql.Tx, r rescind.Revocation) error {
	w, err := newRevWriter(ctx, tx)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.write(ctx, r)
}

// RevocationsSince implements rescind.Store.
func (s *Store) RevocationsSince(ctx context.Context, afterSeq int64, now time.Time, limit int) ([]rescind.Revocation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience
		FROM revocations WHERE seq > ? AND expires_at >= ? ORDER BY seq LIMIT ?`, afterSeq, nanos(now), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading revocations: %w", err)
	}
	defer rows.Close()
	var out []rescind.Revocation
	for rows.Next() {
		var r rescind.Revocation
		var kind string
		var revokedAt, expiresAt int64
		var aud string
		if err := rows.Scan(&r.Seq, &kind, &r.Key, &r.ClientID, &revokedAt, &expiresAt, &r.Subject, &r.StatusList, &r.StatusIdx, &aud); err != nil {
			return nil, fmt.Errorf("sqlite: reading revocations: %w", err)
		}
		if r.Audience, err = parseList(aud); err != nil {
			return nil, fmt.Errorf("sqlite: reading revocations: audience: %w", err)
		}
		if len(r.Audience) == 0 {
			r.Audience = nil
		}
		r.Kind = rescind.RevocationKind(kind)
		r.RevokedAt, r.ExpiresAt = fromNanos(revokedAt), fromNanos(expiresAt)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reading revocations: %w", err)
	}
	return out, nil
}

// LastRevocationSeq implements rescind.Store.
func (s *Store) LastRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM revocations`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: reading last revocation: %w", err)
	}
	return seq, nil
}

// DeleteExpiredRevocations implements rescind.Store.
func (s *Store) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM revocations WHERE expires_at < ?`, nanos(now))
	if err != nil {
		return 0, fmt.Errorf("sqlite: deleting expired revocations: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("sqlite: deleting expired revocations: %w", err)
	}
	return n, nil
}

// CountRevocations implements rescind.Store.
func (s *Store) CountRevocations(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM revocations`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: counting revocations: %w", err)
	}
	return n, nil
}

// CreateKey implements rescind.Store.
func (s *Store) CreateKey(ctx context.Context, k rescind.Key) error {
	act := k.ActivatesAt
	if act.IsZero() {
		act = k.CreatedAt
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO keys (id, use, algorithm, sealed, created_at, activates_at) VALUES (?, ?, ?, ?, ?, ?)`,
		k.ID, k.Use, k.Algorithm, k.Sealed, nanos(k.CreatedAt), nanos(act))
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: key %q: %w", k.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: creating key: %w", err)
	}
	return nil
}

// ListKeys implements rescind.Store.
func (s *Store) ListKeys(ctx context.Context, use string) ([]rescind.Key, error) {
	return listKeys(ctx, s.db, use)
}

// querier is what listKeys needs of a *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func listKeys(ctx context.Context, q querier, use string) ([]rescind.Key, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, use, algorithm, sealed, created_at, activates_at, retired_at FROM keys
		WHERE use = ?`, use)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing keys: %w", err)
	}
	defer rows.Close()
	var out []rescind.Key
	for rows.Next() {
		var k rescind.Key
		var created, activates, retired int64
		if err := rows.Scan(&k.ID, &k.Use, &k.Algorithm, &k.Sealed, &created, &activates, &retired); err != nil {
			return nil, fmt.Errorf("sqlite: listing keys: %w", err)
		}
		k.CreatedAt, k.ActivatesAt = fromNanos(created), fromNanos(activates)
		if retired != 0 {
			k.RetiredAt = fromNanos(retired)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing keys: %w", err)
	}
	rescind.SortKeys(out)
	return out, nil
}

// CreateStatusList implements rescind.Store.
func (s *Store) CreateStatusList(ctx context.Context, l rescind.StatusList) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO status_lists (id, created_at, expires_at) VALUES (?, ?, ?)`,
		l.ID, nanos(l.CreatedAt), nanos(l.ExpiresAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("sqlite: status list %q: %w", l.ID, rescind.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: recording status list: %w", err)
	}
	return nil
}

// GetStatusList implements rescind.Store.
func (s *Store) GetStatusList(ctx context.Context, id string) (rescind.StatusList, error) {
	l := rescind.StatusList{ID: id}
	var created, expires int64
	err := s.db.QueryRowContext(ctx, `SELECT created_at, expires_at FROM status_lists WHERE id = ?`, id).Scan(&created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return l, fmt.Errorf("sqlite: status list %q: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return l, fmt.Errorf("sqlite: reading status list: %w", err)
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

// RetireKey implements rescind.Store. The transaction takes SQLite's write lock at its start
// (_txlock=immediate), so concurrent retirements are serialized.
func (s *Store) RetireKey(ctx context.Context, id string, rev rescind.Revocation) (string, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return "", fmt.Errorf("sqlite: retiring key: %w", err)
	}
	defer tx.Rollback()
	var use string
	if err := tx.QueryRowContext(ctx, `SELECT use FROM keys WHERE id = ?`, id).Scan(&use); errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sqlite: key %q: %w", id, rescind.ErrNotFound)
	} else if err != nil {
		return "", fmt.Errorf("sqlite: retiring key: %w", err)
	}
	keys, err := listKeys(ctx, tx, use)
	if err != nil {
		return "", err
	}
	i, j, err := rescind.PlanRetirement(keys, id, rev.RevokedAt)
	if err != nil {
		return "", fmt.Errorf("sqlite: retiring key %q: %w", id, err)
	}
	if !keys[i].RetiredAt.IsZero() {
		return "", nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE keys SET retired_at = ? WHERE id = ?`, nanos(rev.RevokedAt), id); err != nil {
		return "", fmt.Errorf("sqlite: retiring key: %w", err)
	}
	activated := ""
	if j >= 0 {
		activated = keys[j].ID
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET activates_at = min(activates_at, ?) WHERE id = ?`,
			nanos(rev.RevokedAt), activated); err != nil {
			return "", fmt.Errorf("sqlite: activating key: %w", err)
		}
	}
	if err := upsertRevocation(ctx, tx, rev); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", fmt.Errorf("sqlite: retiring key: commit: %w", err)
	}
	return activated, nil
}
