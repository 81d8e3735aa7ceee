package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rescind/rescind"
)

// Shared Signals streams, subjects and events (rescind.SSFStream, signals.go), the same SQL on
// both backends, and EnqueueSignals, the step every change that ends access runs in its own
// transaction.

// SignalWindow is how long the outbox keeps trying to fan a Signal out to the streams.
const SignalWindow = 7 * 24 * time.Hour

// EnqueueSignals writes each signal to the outbox (kind rescind.OutboxSignal) in tx, if at
// least one stream is not disabled: the step by which a change that ends access tells the
// Shared Signals transmitter, in the change's own transaction. It fills in each signal's ID
// and, where empty, a Txn common to the call and At (now).
func EnqueueSignals(ctx context.Context, tx Querier, sigs ...rescind.Signal) error {
	if len(sigs) == 0 {
		return nil
	}
	var n int64
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM ssf_streams WHERE status <> 'disabled' LIMIT 1) s`).Scan(&n); err != nil {
		return fmt.Errorf("looking for Shared Signals streams: %w", err)
	}
	if n == 0 {
		return nil
	}
	txn, err := randomID()
	if err != nil {
		return err
	}
	msgs := make([]rescind.OutboxMessage, 0, len(sigs))
	for _, sg := range sigs {
		if sg.ID, err = randomID(); err != nil {
			return err
		}
		if sg.Txn == "" {
			sg.Txn = txn
		}
		if sg.At.IsZero() {
			sg.At = time.Now()
		}
		sg.At = sg.At.UTC()
		payload, err := json.Marshal(sg)
		if err != nil {
			return fmt.Errorf("encoding a signal: %w", err)
		}
		msgs = append(msgs, rescind.OutboxMessage{Kind: rescind.OutboxSignal, Key: string(sg.Kind), Payload: payload,
			CreatedAt: sg.At, Deadline: sg.At.Add(SignalWindow)})
	}
	_, err = EnqueueOutbox(ctx, tx, msgs...)
	return err
}

// randomID returns 128 random bits, base64url.
func randomID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("reading random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

const ssfStreamColumns = `id, client_id, description, method, endpoint_url, auth_header, events_requested, events_delivered,
	status, status_reason, all_subjects, created_at, updated_at`

func scanSSFStream(row Row) (rescind.SSFStream, error) {
	var st rescind.SSFStream
	var req, del, status string
	var created, updated int64
	if err := row.Scan(&st.ID, &st.ClientID, &st.Description, &st.Method, &st.EndpointURL, &st.AuthHeader, &req, &del,
		&status, &st.StatusReason, &st.AllSubjects, &created, &updated); err != nil {
		return st, err
	}
	var err error
	if st.EventsRequested, err = ParseList(req); err != nil {
		return st, err
	}
	if st.EventsDelivered, err = ParseList(del); err != nil {
		return st, err
	}
	if st.EventsDelivered == nil {
		st.EventsDelivered = []string{}
	}
	if len(st.AuthHeader) == 0 {
		st.AuthHeader = nil
	}
	st.Status = rescind.SSFStatus(status)
	st.CreatedAt, st.UpdatedAt = FromNanos(created), FromNanos(updated)
	return st, nil
}

// requestedList encodes EventsRequested: null when the receiver named none.
func requestedList(v []string) string {
	if v == nil {
		return "null"
	}
	return JSONList(v)
}

func bytesOrEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// CreateSSFStream implements rescind.Store.
func (s *Store) CreateSSFStream(ctx context.Context, st rescind.SSFStream, maxPerClient int) error {
	err := s.db.InTx(ctx, func(tx Querier) error {
		// The count and the insert hold the receiver's lock: concurrent creations do not both
		// see room for one more.
		if err := s.lock(ctx, tx, "ssf_streams", st.ClientID); err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM ssf_streams WHERE client_id = $1`, st.ClientID).Scan(&n); err != nil {
			return err
		}
		if maxPerClient > 0 && n >= int64(maxPerClient) {
			return rescind.ErrLimit
		}
		_, err := tx.Exec(ctx, `INSERT INTO ssf_streams (`+ssfStreamColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			st.ID, st.ClientID, st.Description, st.Method, st.EndpointURL, bytesOrEmpty(st.AuthHeader), requestedList(st.EventsRequested),
			JSONList(st.EventsDelivered), string(st.Status), st.StatusReason, st.AllSubjects, Nanos(st.CreatedAt), Nanos(st.UpdatedAt))
		if s.d.IsUniqueViolation(err) {
			return rescind.ErrAlreadyExists
		}
		return err
	})
	if err != nil {
		return s.errorf("creating stream: %w", err)
	}
	return nil
}

// GetSSFStream implements rescind.Store.
func (s *Store) GetSSFStream(ctx context.Context, id string) (rescind.SSFStream, error) {
	st, err := scanSSFStream(s.db.QueryRow(ctx, `SELECT `+ssfStreamColumns+` FROM ssf_streams WHERE id = $1`, id))
	if isNoRows(err) {
		return st, s.errorf("stream: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return st, s.errorf("reading stream: %w", err)
	}
	return st, nil
}

// ListSSFStreams implements rescind.Store.
func (s *Store) ListSSFStreams(ctx context.Context, clientID string) ([]rescind.SSFStream, error) {
	q, args := `SELECT `+ssfStreamColumns+` FROM ssf_streams ORDER BY created_at, id`, []any{}
	if clientID != "" {
		q, args = `SELECT `+ssfStreamColumns+` FROM ssf_streams WHERE client_id = $1 ORDER BY created_at, id`, []any{clientID}
	}
	out, err := All(ctx, s.db, scanSSFStream, q, args...)
	if err != nil {
		return nil, s.errorf("listing streams: %w", err)
	}
	return out, nil
}

// UpdateSSFStream implements rescind.Store. The stream is read with Dialect.RowLock, in the
// transaction that writes it: a concurrent change of it (PostgreSQL: on any instance) waits
// for this one's commit and is then made to what this one wrote; SQLite's transactions are
// serialized whole.
func (s *Store) UpdateSSFStream(ctx context.Context, id string, change func(*rescind.SSFStream) error) (rescind.SSFStream, error) {
	var st rescind.SSFStream
	err := s.db.InTx(ctx, func(tx Querier) error {
		old, err := scanSSFStream(tx.QueryRow(ctx, `SELECT `+ssfStreamColumns+` FROM ssf_streams WHERE id = $1`+s.d.RowLock, id))
		if isNoRows(err) {
			return rescind.ErrNotFound
		}
		if err != nil {
			return err
		}
		st = old
		if err := change(&st); err != nil {
			return err
		}
		st.ID, st.ClientID, st.CreatedAt = old.ID, old.ClientID, old.CreatedAt
		if _, err := tx.Exec(ctx, `UPDATE ssf_streams SET description = $2, method = $3, endpoint_url = $4, auth_header = $5,
			events_requested = $6, events_delivered = $7, status = $8, status_reason = $9, all_subjects = $10, updated_at = $11
			WHERE id = $1`, st.ID, st.Description, st.Method, st.EndpointURL, bytesOrEmpty(st.AuthHeader), requestedList(st.EventsRequested),
			JSONList(st.EventsDelivered), string(st.Status), st.StatusReason, st.AllSubjects, Nanos(st.UpdatedAt)); err != nil {
			return err
		}
		if err := switchSSFMethod(ctx, tx, st, old.Method); err != nil {
			return err
		}
		switch {
		case st.Status == rescind.SSFDisabled && old.Status != rescind.SSFDisabled:
			// SSF 1.0 §8.1.2: a disabled stream holds nothing.
			if _, err := tx.Exec(ctx, `DELETE FROM ssf_events WHERE stream_id = $1 AND acked_at = 0`, st.ID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE kind = $1 AND key = $2 AND state = 'pending' AND lease_owner = ''`,
				rescind.OutboxSSFPush, st.ID); err != nil {
				return err
			}
		case st.Status == rescind.SSFEnabled && old.Status != rescind.SSFEnabled:
			if _, err := tx.Exec(ctx, `UPDATE outbox SET next_attempt_at = $3 WHERE kind = $1 AND key = $2 AND state = 'pending'
				AND next_attempt_at > $3`, rescind.OutboxSSFPush, st.ID, Nanos(st.UpdatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return rescind.SSFStream{}, s.errorf("updating stream: %w", err)
	}
	return st, nil
}

// SSFPushWindow is how long the pushes of the events a stream held are retried when it becomes
// a push stream (the transmitter's default PushWindow).
const SSFPushWindow = 72 * time.Hour

// switchSSFMethod, in tx, follows a change of st's delivery method from oldMethod: a stream that
// stops being push drops its pushes not yet claimed (its events wait for a poll); one that
// becomes push gets a push for every event it holds, due now, so that nothing it held while
// polled (or before an earlier switch) is stranded.
func switchSSFMethod(ctx context.Context, tx Querier, st rescind.SSFStream, oldMethod string) error {
	if st.Method == oldMethod {
		return nil
	}
	if _, err := tx.Exec(ctx, `DELETE FROM outbox WHERE kind = $1 AND key = $2 AND state = 'pending' AND lease_owner = ''`,
		rescind.OutboxSSFPush, st.ID); err != nil {
		return err
	}
	if st.Method != rescind.SSFPush || st.Status == rescind.SSFDisabled {
		return nil
	}
	jtis, err := All(ctx, tx, func(row Row) (string, error) {
		var jti string
		return jti, row.Scan(&jti)
	}, `SELECT jti FROM ssf_events WHERE stream_id = $1 AND acked_at = 0 ORDER BY created_at, jti`, st.ID)
	if err != nil {
		return err
	}
	now := st.UpdatedAt
	if now.IsZero() {
		now = time.Now()
	}
	for _, jti := range jtis {
		payload, _ := json.Marshal(map[string]string{"jti": jti}) // a map of strings always marshals
		if _, err := EnqueueOutbox(ctx, tx, rescind.OutboxMessage{Kind: rescind.OutboxSSFPush, Key: st.ID,
			Payload: payload, CreatedAt: now, Deadline: now.Add(SSFPushWindow)}); err != nil {
			return err
		}
	}
	return nil
}

// DeleteSSFStream implements rescind.Store. The stream's row goes first: that waits for the
// subjects being added to it (AddSSFSubject holds a share lock on the row), whose rows the
// deletions after it then see, and an addition that comes later finds no stream.
func (s *Store) DeleteSSFStream(ctx context.Context, id string) error {
	err := s.db.InTx(ctx, func(tx Querier) error {
		n, err := tx.Exec(ctx, `DELETE FROM ssf_streams WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return rescind.ErrNotFound
		}
		for _, q := range []string{`DELETE FROM ssf_stream_subjects WHERE stream_id = $1`, `DELETE FROM ssf_subject_keys WHERE stream_id = $1`,
			`DELETE FROM ssf_events WHERE stream_id = $1`} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM outbox WHERE kind = $1 AND key = $2 AND state = 'pending' AND lease_owner = ''`,
			rescind.OutboxSSFPush, id)
		return err
	})
	if err != nil {
		return s.errorf("deleting stream: %w", err)
	}
	return nil
}

// AddSSFSubject implements rescind.Store.
func (s *Store) AddSSFSubject(ctx context.Context, sub rescind.SSFSubject, maxPerStream int) error {
	if len(sub.Keys) == 0 {
		return s.errorf("adding a subject: no keys")
	}
	err := s.db.InTx(ctx, func(tx Querier) error {
		if err := s.lock(ctx, tx, "ssf_subjects", sub.StreamID); err != nil {
			return err
		}
		// The stream's row stays locked (shared) until the subject and its keys are committed:
		// a deletion of the stream, or of its client, waits for them, then deletes them too
		// (re-audit 3B #4: they outlived their stream).
		var streamID string
		err := tx.QueryRow(ctx, `SELECT id FROM ssf_streams WHERE id = $1`+s.d.ShareLock, sub.StreamID).Scan(&streamID)
		if isNoRows(err) {
			return rescind.ErrNotFound
		}
		if err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM ssf_stream_subjects WHERE stream_id = $1 AND subject_id = $2`,
			sub.StreamID, sub.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if maxPerStream > 0 {
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM ssf_stream_subjects WHERE stream_id = $1`, sub.StreamID).Scan(&n); err != nil {
				return err
			}
			if n >= int64(maxPerStream) {
				return rescind.ErrLimit
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ssf_stream_subjects (stream_id, subject_id, subject, added_at) VALUES ($1, $2, $3, $4)`,
			sub.StreamID, sub.ID, string(sub.Subject), Nanos(sub.AddedAt)); err != nil {
			return err
		}
		for _, k := range sub.Keys {
			if _, err := tx.Exec(ctx, `INSERT INTO ssf_subject_keys (stream_id, subject_id, match_key) VALUES ($1, $2, $3)
				ON CONFLICT DO NOTHING`, sub.StreamID, sub.ID, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.errorf("adding a subject: %w", err)
	}
	return nil
}

// RemoveSSFSubject implements rescind.Store.
func (s *Store) RemoveSSFSubject(ctx context.Context, streamID, id string) (bool, error) {
	var n int64
	err := s.db.InTx(ctx, func(tx Querier) error {
		var err error
		if n, err = tx.Exec(ctx, `DELETE FROM ssf_stream_subjects WHERE stream_id = $1 AND subject_id = $2`, streamID, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM ssf_subject_keys WHERE stream_id = $1 AND subject_id = $2`, streamID, id)
		return err
	})
	if err != nil {
		return false, s.errorf("removing a subject: %w", err)
	}
	return n > 0, nil
}

// CountSSFSubjects implements rescind.Store.
func (s *Store) CountSSFSubjects(ctx context.Context, streamID string) (int64, error) {
	var n int64
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM ssf_stream_subjects WHERE stream_id = $1`, streamID).Scan(&n); err != nil {
		return 0, s.errorf("counting subjects: %w", err)
	}
	return n, nil
}

// SSFSubjectsMatching implements rescind.Store.
func (s *Store) SSFSubjectsMatching(ctx context.Context, keys []string) ([]rescind.SSFSubject, error) {
	if len(keys) == 0 {
		return []rescind.SSFSubject{}, nil
	}
	marks, args := make([]string, len(keys)), make([]any, len(keys))
	for i, k := range keys {
		marks[i], args[i] = "$"+strconv.Itoa(i+1), k
	}
	rows, err := All(ctx, s.db, func(row Row) (rescind.SSFSubject, error) {
		var sub rescind.SSFSubject
		var subject string
		var added int64
		err := row.Scan(&sub.StreamID, &sub.ID, &subject, &added)
		sub.Subject, sub.AddedAt = []byte(subject), FromNanos(added)
		return sub, err
	}, `SELECT s.stream_id, s.subject_id, s.subject, s.added_at FROM ssf_stream_subjects s WHERE EXISTS (SELECT 1 FROM ssf_subject_keys k
		WHERE k.stream_id = s.stream_id AND k.subject_id = s.subject_id AND k.match_key IN (`+strings.Join(marks, ", ")+`))
		ORDER BY s.stream_id, s.subject_id`, args...)
	if err != nil {
		return nil, s.errorf("finding subjects: %w", err)
	}
	return rows, nil
}

// AppendSSFEvents implements rescind.Store. Each stream is read, before anything is written,
// with Dialect.ShareLock, in the transaction that appends to it: a change of the stream
// (UpdateSSFStream holds it FOR UPDATE), a deletion or a verification claim waits for this
// append's commit, and an append waits for a change under way and then reads what it wrote. So
// an event is never appended to a stream as it was before a change that committed meanwhile
// (re-audit 7 #1: held with no push on a stream just switched to push, or held on a stream
// just disabled). The streams are locked in the order of their ids, as every other transaction
// that locks several streams does (deleteClientStreams), so that two never wait for each
// other; the events are then appended in that order too, each stream's in the order given.
// SQLite's transactions are serialized whole.
func (s *Store) AppendSSFEvents(ctx context.Context, evs []rescind.SSFEvent, pushWindow time.Duration) (int, error) {
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, func(a, b rescind.SSFEvent) int { return strings.Compare(a.StreamID, b.StreamID) })
	type stream struct{ method, status string }
	var added int
	err := s.db.InTx(ctx, func(tx Querier) error {
		added = 0
		streams := make(map[string]*stream) // nil: gone
		for _, ev := range sorted {
			if _, ok := streams[ev.StreamID]; ok {
				continue
			}
			var st stream
			err := tx.QueryRow(ctx, `SELECT method, status FROM ssf_streams WHERE id = $1`+s.d.ShareLock, ev.StreamID).Scan(&st.method, &st.status)
			if isNoRows(err) {
				streams[ev.StreamID] = nil
				continue
			}
			if err != nil {
				return err
			}
			streams[ev.StreamID] = &st
		}
		for _, ev := range sorted {
			st := streams[ev.StreamID]
			if st == nil || st.status == string(rescind.SSFDisabled) {
				continue
			}
			n, err := tx.Exec(ctx, `INSERT INTO ssf_events (stream_id, jti, source, event_type, claims, created_at)
				VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
				ev.StreamID, ev.JTI, ev.Source, ev.Type, bytesOrEmpty(ev.Claims), Nanos(ev.CreatedAt))
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			added++
			if st.method != rescind.SSFPush {
				continue
			}
			payload, _ := json.Marshal(map[string]string{"jti": ev.JTI}) // a map of strings always marshals
			if _, err := EnqueueOutbox(ctx, tx, rescind.OutboxMessage{Kind: rescind.OutboxSSFPush, Key: ev.StreamID,
				Payload: payload, CreatedAt: ev.CreatedAt, Deadline: ev.CreatedAt.Add(pushWindow)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, s.errorf("appending events: %w", err)
	}
	return added, nil
}

const ssfEventColumns = `stream_id, jti, source, event_type, claims, created_at, acked_at, error`

func scanSSFEvent(row Row) (rescind.SSFEvent, error) {
	var ev rescind.SSFEvent
	var created, acked int64
	err := row.Scan(&ev.StreamID, &ev.JTI, &ev.Source, &ev.Type, &ev.Claims, &created, &acked, &ev.Error)
	ev.CreatedAt, ev.AckedAt = FromNanos(created), OptionalTime(acked)
	return ev, err
}

// GetSSFEvent implements rescind.Store.
func (s *Store) GetSSFEvent(ctx context.Context, streamID, jti string) (rescind.SSFEvent, error) {
	ev, err := scanSSFEvent(s.db.QueryRow(ctx, `SELECT `+ssfEventColumns+` FROM ssf_events WHERE stream_id = $1 AND jti = $2`, streamID, jti))
	if isNoRows(err) {
		return ev, s.errorf("event: %w", rescind.ErrNotFound)
	}
	if err != nil {
		return ev, s.errorf("reading event: %w", err)
	}
	return ev, nil
}

// PendingSSFEvents implements rescind.Store.
func (s *Store) PendingSSFEvents(ctx context.Context, streamID string, limit int) ([]rescind.SSFEvent, error) {
	out, err := All(ctx, s.db, scanSSFEvent, `SELECT `+ssfEventColumns+` FROM ssf_events WHERE stream_id = $1 AND acked_at = 0
		ORDER BY created_at, jti LIMIT $2`, streamID, limit)
	if err != nil {
		return nil, s.errorf("reading pending events: %w", err)
	}
	return out, nil
}

// AckSSFEvents implements rescind.Store.
func (s *Store) AckSSFEvents(ctx context.Context, streamID string, acks []string, errs map[string]string, actor string, at time.Time) (int64, error) {
	var total int64
	err := s.db.InTx(ctx, func(tx Querier) error {
		total = 0
		for _, jti := range acks {
			n, err := tx.Exec(ctx, `UPDATE ssf_events SET acked_at = $3 WHERE stream_id = $1 AND jti = $2 AND acked_at = 0`,
				streamID, jti, Nanos(at))
			if err != nil {
				return err
			}
			total += n
		}
		for jti, msg := range errs {
			n, err := tx.Exec(ctx, `UPDATE ssf_events SET acked_at = $3, error = $4 WHERE stream_id = $1 AND jti = $2 AND acked_at = 0`,
				streamID, jti, Nanos(at), msg)
			if err != nil {
				return err
			}
			if n == 0 {
				continue
			}
			total += n
			if _, err := tx.Exec(ctx, `INSERT INTO audit (at, actor, action, target, reason) VALUES ($1, $2, $3, $4, $5)`,
				Nanos(at), actor, "ssf_set_error", "stream "+streamID+" event "+jti, msg); err != nil {
				return fmt.Errorf("writing audit entry: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, s.errorf("acknowledging events: %w", err)
	}
	return total, nil
}

// ClaimSSFVerification implements rescind.Store.
func (s *Store) ClaimSSFVerification(ctx context.Context, streamID string, now time.Time, interval time.Duration) (bool, error) {
	var ok bool
	err := s.db.InTx(ctx, func(tx Querier) error {
		var last int64
		err := tx.QueryRow(ctx, `SELECT verified_at FROM ssf_streams WHERE id = $1`, streamID).Scan(&last)
		if isNoRows(err) {
			return rescind.ErrNotFound
		}
		if err != nil {
			return err
		}
		if last != 0 && Nanos(now) < last+int64(interval) {
			return nil
		}
		n, err := tx.Exec(ctx, `UPDATE ssf_streams SET verified_at = $2 WHERE id = $1 AND verified_at = $3`, streamID, Nanos(now), last)
		ok = n == 1
		return err
	})
	if err != nil {
		return false, s.errorf("recording a verification: %w", err)
	}
	return ok, nil
}

// SSFBacklog implements rescind.Store.
func (s *Store) SSFBacklog(ctx context.Context) (int64, time.Time, error) {
	var n, oldest int64
	if err := s.db.QueryRow(ctx, `SELECT count(*), coalesce(min(created_at), 0) FROM ssf_events WHERE acked_at = 0`).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, s.errorf("counting pending events: %w", err)
	}
	return n, OptionalTime(oldest), nil
}

// DeleteSSFEvents implements rescind.Store.
func (s *Store) DeleteSSFEvents(ctx context.Context, acked, pending time.Time) (int64, error) {
	n, err := s.db.Exec(ctx, `DELETE FROM ssf_events WHERE (acked_at <> 0 AND acked_at < $1) OR (acked_at = 0 AND created_at < $2)`,
		Nanos(acked), Nanos(pending))
	if err != nil {
		return 0, s.errorf("deleting old events: %w", err)
	}
	return n, nil
}

// deleteClientStreams deletes, in tx, the streams of the client id with their subjects, events
// and pending pushes. The streams' rows go first, as in DeleteSSFStream: that waits for the
// subjects being added to them, which the deletions after it then see. lock is the clause that
// locks a row until commit (" FOR UPDATE" on PostgreSQL, empty on SQLite, as Dialect.RowLock):
// the rows are locked in the order of their ids, as AppendSSFEvents locks the streams it
// appends to, before the DELETE (which would take them in the table's order), so that a client
// deletion and an append to several of its streams never wait for each other (a deadlock,
// PostgreSQL 40P01).
func deleteClientStreams(ctx context.Context, tx Querier, clientID, lock string) error {
	ids, err := All(ctx, tx, func(row Row) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT id FROM ssf_streams WHERE client_id = $1 ORDER BY id`+lock, clientID)
	if err != nil {
		return fmt.Errorf("deleting the client's streams: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM ssf_streams WHERE client_id = $1`, clientID); err != nil {
		return fmt.Errorf("deleting the client's streams: %w", err)
	}
	for _, id := range ids {
		for _, q := range []string{
			`DELETE FROM ssf_stream_subjects WHERE stream_id = $1`,
			`DELETE FROM ssf_subject_keys WHERE stream_id = $1`,
			`DELETE FROM ssf_events WHERE stream_id = $1`,
			`DELETE FROM outbox WHERE kind = '` + rescind.OutboxSSFPush + `' AND state = 'pending' AND lease_owner = '' AND key = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("deleting the client's streams: %w", err)
			}
		}
	}
	return nil
}
