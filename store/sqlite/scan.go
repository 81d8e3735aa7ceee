package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/store/internal/sqlstore"
)

// scanConns is how many connections the readers of ScanRevocations may use at once.
const scanConns = 4

// scanner is a pool of read-only connections for ScanRevocations, opened on first use, so that
// scans of disjoint ranges run in parallel beside the store's one writing connection (WAL lets
// readers proceed during a write).
type scanner struct {
	once sync.Once
	db   *sql.DB
	err  error
}

func (s *Store) scanDB() (*sql.DB, error) {
	s.scan.once.Do(func() {
		db, err := sql.Open("sqlite", dsn(s.path, "rw")+"&_pragma=query_only(1)")
		if err != nil {
			s.scan.err = fmt.Errorf("sqlite: opening %s for reading: %w", s.path, err)
			return
		}
		db.SetMaxOpenConns(scanConns)
		db.SetMaxIdleConns(scanConns)
		db.SetConnMaxIdleTime(time.Minute)
		s.scan.db = db
	})
	return s.scan.db, s.scan.err
}

// ScanRevocations implements rescind.Store. Rows are read into buffers reused from one row to
// the next (sql.RawBytes), on a read-only connection of their own.
func (s *Store) ScanRevocations(ctx context.Context, afterSeq, uptoSeq int64, now time.Time, fn func(*rescind.RevocationEntry) error) error {
	db, err := s.scanDB()
	if err != nil {
		return err
	}
	rows, err := db.QueryContext(ctx, `SELECT seq, kind, key, revoked_at, expires_at, status_list, status_idx
		FROM revocations WHERE seq > ? AND seq <= ? AND expires_at >= ? ORDER BY seq`, afterSeq, uptoSeq, sqlstore.Nanos(now))
	if err != nil {
		return fmt.Errorf("sqlite: scanning revocations: %w", err)
	}
	defer rows.Close()
	var e rescind.RevocationEntry
	var kind, key, list sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&e.Seq, &kind, &key, &e.RevokedAt, &e.ExpiresAt, &list, &e.StatusIdx); err != nil {
			return fmt.Errorf("sqlite: scanning revocations: %w", err)
		}
		e.Kind, e.Key, e.StatusList = rescind.ParseRevocationKind(kind), key, list
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: scanning revocations: %w", err)
	}
	return nil
}
