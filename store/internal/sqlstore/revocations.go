package sqlstore

import (
	"context"
	"time"

	"github.com/rescind/rescind"
)

func scanRevocation(row Row) (rescind.Revocation, error) {
	var r rescind.Revocation
	var kind, aud string
	var revokedAt, expiresAt int64
	if err := row.Scan(&r.Seq, &kind, &r.Key, &r.ClientID, &revokedAt, &expiresAt, &r.Subject, &r.StatusList, &r.StatusIdx, &aud); err != nil {
		return r, err
	}
	var err error
	if r.Audience, err = ParseList(aud); err != nil {
		return r, err
	}
	if len(r.Audience) == 0 {
		r.Audience = nil
	}
	r.Kind = rescind.RevocationKind(kind)
	r.RevokedAt, r.ExpiresAt = FromNanos(revokedAt), FromNanos(expiresAt)
	return r, nil
}

// RevocationsSince implements rescind.Store.
func (s *Store) RevocationsSince(ctx context.Context, afterSeq int64, now time.Time, limit int) ([]rescind.Revocation, error) {
	out, err := All(ctx, s.db, scanRevocation, `SELECT seq, kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience
		FROM revocations WHERE seq > $1 AND expires_at >= $2 ORDER BY seq LIMIT $3`, afterSeq, Nanos(now), limit)
	if err != nil {
		return nil, s.errorf("reading revocations: %w", err)
	}
	return out, nil
}

// LastRevocationSeq implements rescind.Store.
func (s *Store) LastRevocationSeq(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM revocations`).Scan(&seq); err != nil {
		return 0, s.errorf("reading last revocation: %w", err)
	}
	return seq, nil
}

// DeleteExpiredRevocations implements rescind.Store.
func (s *Store) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM revocations WHERE expires_at < $1`, Nanos(now))
	if err != nil {
		return 0, s.errorf("deleting expired revocations: %w", err)
	}
	return n, nil
}

// CountRevocations implements rescind.Store.
func (s *Store) CountRevocations(ctx context.Context) (int64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM revocations`).Scan(&n); err != nil {
		return 0, s.errorf("counting revocations: %w", err)
	}
	return n, nil
}

// ListAudit implements rescind.Store.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]rescind.AuditEntry, error) {
	out, err := All(ctx, s.db, func(row Row) (rescind.AuditEntry, error) {
		var e rescind.AuditEntry
		var at int64
		err := row.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Reason)
		e.At = FromNanos(at)
		return e, err
	}, `SELECT id, at, actor, action, target, reason FROM audit ORDER BY id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, s.errorf("listing audit: %w", err)
	}
	return out, nil
}

// DeleteAuditBefore implements rescind.Store.
func (s *Store) DeleteAuditBefore(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM audit WHERE at < $1`, Nanos(t))
	if err != nil {
		return 0, s.errorf("deleting old audit entries: %w", err)
	}
	return n, nil
}
