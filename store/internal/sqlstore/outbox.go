package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rescind/rescind"
)

// The durable outbox (rescind.OutboxMessage), the same SQL on both backends. A claim runs in a
// transaction whose read takes the rows it leases with Dialect.SkipLocked; every other change is
// one statement that names the lease's owner, so a worker whose lease lapsed and was claimed
// again changes nothing.

const outboxColumns = `id, kind, key, payload, created_at, next_attempt_at, deadline, attempts, last_error, state, finished_at,
	lease_owner, lease_expires_at, subject`

func scanOutbox(row Row) (rescind.OutboxMessage, error) {
	var m rescind.OutboxMessage
	var state string
	var created, next, deadline, finished, lease int64
	if err := row.Scan(&m.ID, &m.Kind, &m.Key, &m.Payload, &created, &next, &deadline, &m.Attempts, &m.LastError, &state,
		&finished, &m.LeaseOwner, &lease, &m.Subject); err != nil {
		return m, err
	}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	m.State = rescind.OutboxState(state)
	m.CreatedAt, m.NextAttemptAt, m.Deadline = FromNanos(created), FromNanos(next), FromNanos(deadline)
	m.FinishedAt, m.LeaseExpiresAt = OptionalTime(finished), OptionalTime(lease)
	return m, nil
}

// EnqueueOutbox writes msgs, pending, in tx and returns their IDs in order: how a store
// method writes the messages its change causes in that change's own transaction, so that both
// commit or neither does. Any method of either backend can call it with its transaction (the
// backends' s.q(tx), or the tx of a shared step). Each message needs a Kind, a CreatedAt and a
// Deadline not before it (rescind.Store's Enqueue); a zero NextAttemptAt means CreatedAt. It
// checks them all before writing any.
func EnqueueOutbox(ctx context.Context, tx Querier, msgs ...rescind.OutboxMessage) ([]int64, error) {
	for i, m := range msgs {
		switch {
		case m.Kind == "":
			return nil, fmt.Errorf("outbox message %d: no kind", i)
		case m.CreatedAt.IsZero():
			return nil, fmt.Errorf("outbox message %d (%s): no creation time", i, m.Kind)
		case m.Deadline.IsZero() || m.Deadline.Before(m.CreatedAt):
			return nil, fmt.Errorf("outbox message %d (%s): its deadline %v is not after its creation %v", i, m.Kind, m.Deadline, m.CreatedAt)
		case !storable(m.CreatedAt) || !storable(m.NextAttemptAt) || !storable(m.Deadline):
			return nil, fmt.Errorf("outbox message %d (%s): a time beyond what Unix nanoseconds hold (years 1678 to 2262)", i, m.Kind)
		}
	}
	ids := make([]int64, 0, len(msgs))
	for _, m := range msgs {
		next := m.NextAttemptAt
		if next.IsZero() {
			next = m.CreatedAt
		}
		payload := m.Payload
		if payload == nil {
			payload = []byte{}
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO outbox (kind, key, payload, created_at, next_attempt_at, deadline, subject)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
			m.Kind, m.Key, payload, Nanos(m.CreatedAt), Nanos(next), Nanos(m.Deadline), m.Subject).Scan(&id); err != nil {
			return nil, fmt.Errorf("enqueuing an outbox message (%s): %w", m.Kind, err)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// storable reports whether t is zero or survives Nanos and FromNanos.
func storable(t time.Time) bool { return t.IsZero() || FromNanos(Nanos(t)).Equal(t) }

// Enqueue implements rescind.Store.
func (s *Store) Enqueue(ctx context.Context, msgs []rescind.OutboxMessage) ([]int64, error) {
	var ids []int64
	err := s.db.InTx(ctx, func(tx Querier) (err error) {
		ids, err = EnqueueOutbox(ctx, tx, msgs...)
		return err
	})
	if err != nil {
		return nil, s.errorf("%w", err)
	}
	return ids, nil
}

// ClaimOutbox implements rescind.Store. The read takes its rows with Dialect.SkipLocked
// (PostgreSQL: rows another claim holds are skipped, not waited for), and the update checks
// again that each row is pending and unleased, so that a row another claim took after this
// statement's snapshot is left to it. On SQLite the transaction holds the write lock from its
// start.
func (s *Store) ClaimOutbox(ctx context.Context, c rescind.OutboxClaim) ([]rescind.OutboxMessage, error) {
	if len(c.Kinds) == 0 || c.Limit <= 0 {
		return []rescind.OutboxMessage{}, nil
	}
	if c.Owner == "" {
		return nil, s.errorf("claiming outbox messages: no owner")
	}
	args := []any{c.Owner, Nanos(c.LeaseUntil), Nanos(c.Now), c.Limit}
	marks := make([]string, len(c.Kinds))
	for i, k := range c.Kinds {
		args = append(args, k)
		marks[i] = "$" + strconv.Itoa(len(args))
	}
	// The read is a materialized CTE: as a plain IN (subquery), PostgreSQL may run it again
	// for each row it updates, and its LIMIT then bounds each run, not the claim.
	query := `WITH due AS MATERIALIZED (SELECT id FROM outbox
			WHERE state = 'pending' AND next_attempt_at <= $3 AND lease_expires_at <= $3 AND kind IN (` + strings.Join(marks, ", ") + `)
			ORDER BY next_attempt_at, id LIMIT $4` + s.d.SkipLocked + `)
		UPDATE outbox SET lease_owner = $1, lease_expires_at = $2
		WHERE id IN (SELECT id FROM due) AND state = 'pending' AND lease_expires_at <= $3
		RETURNING ` + outboxColumns
	var out []rescind.OutboxMessage
	err := s.db.InTx(ctx, func(tx Querier) (err error) {
		out, err = All(ctx, tx, scanOutbox, query, args...)
		return err
	})
	if err != nil {
		return nil, s.errorf("claiming outbox messages: %w", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b rescind.OutboxMessage) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return out, nil
}

// settle runs one statement on the pending message id leased to owner (its first two
// arguments are $1 id and $2 owner) and maps "no such row" to rescind.ErrLeaseLost.
func (s *Store) settle(ctx context.Context, what string, id int64, owner, set string, args ...any) error {
	n, err := s.db.Exec(ctx, `UPDATE outbox SET `+set+` WHERE id = $1 AND lease_owner = $2 AND state = 'pending'`,
		append([]any{id, owner}, args...)...)
	if err != nil {
		return s.errorf("%s outbox message %d: %w", what, id, err)
	}
	if n == 0 {
		return s.errorf("%s outbox message %d: %w", what, id, rescind.ErrLeaseLost)
	}
	return nil
}

// CompleteOutbox implements rescind.Store.
func (s *Store) CompleteOutbox(ctx context.Context, id int64, owner string, at time.Time) error {
	return s.settle(ctx, "completing", id, owner,
		`state = 'delivered', finished_at = $3, payload = $4, lease_owner = '', lease_expires_at = 0`, Nanos(at), []byte{})
}

// RetryOutbox implements rescind.Store.
func (s *Store) RetryOutbox(ctx context.Context, id int64, owner string, next time.Time, lastErr string) error {
	return s.settle(ctx, "retrying", id, owner,
		`attempts = attempts + 1, next_attempt_at = $3, last_error = $4, lease_owner = '', lease_expires_at = 0`, Nanos(next), lastErr)
}

// DeferOutbox implements rescind.Store.
func (s *Store) DeferOutbox(ctx context.Context, id int64, owner string, next time.Time) error {
	return s.settle(ctx, "deferring", id, owner, `next_attempt_at = $3, lease_owner = '', lease_expires_at = 0`, Nanos(next))
}

// GiveUpOutbox implements rescind.Store: the message and its audit entry in one transaction.
func (s *Store) GiveUpOutbox(ctx context.Context, id int64, owner string, at time.Time, lastErr string) error {
	err := s.db.InTx(ctx, func(tx Querier) error {
		var kind, key string
		err := tx.QueryRow(ctx, `UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = $3, finished_at = $4,
			payload = $5, lease_owner = '', lease_expires_at = 0
			WHERE id = $1 AND lease_owner = $2 AND state = 'pending' RETURNING kind, key`,
			id, owner, lastErr, Nanos(at), []byte{}).Scan(&kind, &key)
		if isNoRows(err) {
			return rescind.ErrLeaseLost
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)`,
			Nanos(at), "outbox", "outbox_give_up", fmt.Sprintf("outbox message %d (%s for %s)", id, kind, key), lastErr); err != nil {
			return fmt.Errorf("writing audit entry: %w", err)
		}
		return nil
	})
	if err != nil {
		return s.errorf("giving up outbox message %d: %w", id, err)
	}
	return nil
}

// GetOutbox implements rescind.Store.
func (s *Store) GetOutbox(ctx context.Context, id int64) (rescind.OutboxMessage, error) {
	m, err := scanOutbox(s.db.QueryRow(ctx, `SELECT `+outboxColumns+` FROM outbox WHERE id = $1`, id))
	if isNoRows(err) {
		return m, s.errorf("outbox message %d: %w", id, rescind.ErrNotFound)
	}
	if err != nil {
		return m, s.errorf("reading outbox message %d: %w", id, err)
	}
	return m, nil
}

// ListOutbox implements rescind.Store.
func (s *Store) ListOutbox(ctx context.Context, f rescind.OutboxFilter) ([]rescind.OutboxMessage, error) {
	var conds []string
	var args []any
	for _, c := range []struct{ col, v string }{{"kind", f.Kind}, {"key", f.Key}, {"subject", f.Subject}} {
		if c.v != "" {
			args = append(args, c.v)
			conds = append(conds, c.col+" = $"+strconv.Itoa(len(args)))
		}
	}
	if !f.Since.IsZero() {
		args = append(args, Nanos(f.Since))
		conds = append(conds, "created_at >= $"+strconv.Itoa(len(args)))
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	out, err := All(ctx, s.db, scanOutbox, `SELECT `+outboxColumns+` FROM outbox`+where+` ORDER BY id DESC LIMIT $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return nil, s.errorf("listing outbox messages: %w", err)
	}
	return out, nil
}

// OutboxStats implements rescind.Store.
func (s *Store) OutboxStats(ctx context.Context) ([]rescind.OutboxStat, error) {
	out, err := All(ctx, s.db, func(row Row) (rescind.OutboxStat, error) {
		var st rescind.OutboxStat
		var oldest int64
		err := row.Scan(&st.Kind, &st.Pending, &oldest)
		st.OldestCreatedAt = FromNanos(oldest)
		return st, err
	}, `SELECT kind, count(*), min(created_at) FROM outbox WHERE state = 'pending' GROUP BY kind ORDER BY kind`)
	if err != nil {
		return nil, s.errorf("counting outbox messages: %w", err)
	}
	return out, nil
}

// DeleteFinishedOutbox implements rescind.Store.
func (s *Store) DeleteFinishedOutbox(ctx context.Context, t time.Time) (int64, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM outbox WHERE state <> 'pending' AND finished_at < $1`, Nanos(t))
	if err != nil {
		return 0, s.errorf("deleting finished outbox messages: %w", err)
	}
	return n, nil
}

// ReleaseOutboxLeases implements rescind.Store.
func (s *Store) ReleaseOutboxLeases(ctx context.Context) (int64, error) {
	n, err := s.db.Exec(ctx, `UPDATE outbox SET lease_owner = '', lease_expires_at = 0 WHERE state = 'pending' AND lease_owner <> ''`)
	if err != nil {
		return 0, s.errorf("releasing outbox leases: %w", err)
	}
	return n, nil
}
