package postgres

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/rescind/rescind"
)

// ScanRevocations implements rescind.Store. Each row is read from the connection's buffer as it
// arrived (pgx RawValues), without copying or allocating; ranges scanned at once use connections
// of their own from the pool.
func (s *Store) ScanRevocations(ctx context.Context, afterSeq, uptoSeq int64, now time.Time, fn func(*rescind.RevocationEntry) error) error {
	rows, err := s.pool.Query(ctx, `SELECT seq, kind, key, revoked_at, expires_at, status_list, status_idx
		FROM revocations WHERE seq > $1 AND seq <= $2 AND expires_at >= $3 ORDER BY seq`, afterSeq, uptoSeq, nanos(now))
	if err != nil {
		return fmt.Errorf("postgres: scanning revocations: %w", err)
	}
	defer rows.Close()
	fds := rows.FieldDescriptions()
	if len(fds) != 7 {
		return fmt.Errorf("postgres: scanning revocations: %d columns", len(fds))
	}
	var e rescind.RevocationEntry
	for rows.Next() {
		v := rows.RawValues()
		if e.Seq, err = int8Value(fds[0], v[0]); err == nil {
			if e.RevokedAt, err = int8Value(fds[3], v[3]); err == nil {
				if e.ExpiresAt, err = int8Value(fds[4], v[4]); err == nil {
					e.StatusIdx, err = int8Value(fds[6], v[6])
				}
			}
		}
		if err != nil {
			return fmt.Errorf("postgres: scanning revocations: %w", err)
		}
		// text columns are the same in both formats
		e.Kind, e.Key, e.StatusList = rescind.ParseRevocationKind(v[1]), v[2], v[5]
		if err := fn(&e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: scanning revocations: %w", err)
	}
	return nil
}

// int8Value decodes a bigint column of a row in either wire format.
func int8Value(fd pgconn.FieldDescription, b []byte) (int64, error) {
	if fd.Format == pgx.BinaryFormatCode {
		if len(b) != 8 {
			return 0, errors.New("a bigint of the wrong size")
		}
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return strconv.ParseInt(string(b), 10, 64)
}
