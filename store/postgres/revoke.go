package postgres

import (
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind"
)

// The statements that write a batch of revocation records. Each carries the whole batch as
// arrays (unnest), so a batch is the same four statements whatever its size: prepared once per
// connection, then sent together with one Sync, one round trip.
const (
	lockRevocationsSQL = `SELECT pg_advisory_xact_lock($1)`
	// A record that already exists keeps the later RevokedAt and ExpiresAt and, if either moved,
	// gets a new Seq so that pollers see it again; it keeps the audience it was first written
	// with (a merge moves times, never who may receive the record).
	insertRevocationsSQL = `INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience)
		SELECT kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience::jsonb
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::text[])
			AS r(kind, key, client_id, revoked_at, expires_at, subject, status_list, status_idx, audience)
		ON CONFLICT (kind, key) DO UPDATE SET
			seq = nextval(pg_get_serial_sequence('revocations', 'seq')),
			revoked_at = GREATEST(revocations.revoked_at, EXCLUDED.revoked_at),
			expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at)
		WHERE revocations.revoked_at < EXCLUDED.revoked_at OR revocations.expires_at < EXCLUDED.expires_at`
	insertAuditSQL = `INSERT INTO audit (at, actor, action, target, reason)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])`
	notifyEachSQL   = `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`
	notifyReloadSQL = `SELECT pg_notify($1, '')`
)

// revocationBatch returns the statements that write revs, in the order they must run: the
// revocation writers' advisory lock (held until the transaction ends, so that Seq order is
// commit order), the records, their audit entries, their notifications. Sent outside a
// transaction they run as one implicit transaction (everything up to the Sync), so they commit
// together or not at all, and the commit waits for the WAL flush as any other.
//
// A batch may hold several records of one kind and key (concurrent requests revoking one
// token): they are merged first, as the store would merge them one after the other, since one
// INSERT may not touch a row twice. Audit entries and notifications stay one per record.
func revocationBatch(revs []rescind.Revocation) *pgx.Batch {
	type key struct {
		kind rescind.RevocationKind
		key  string
	}
	n := len(revs)
	var (
		kinds, keys, clients, subjects, lists, auds = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n),
			make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
		revokedAt, expiresAt, idxs = make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		at                         = map[key]int{}
	)
	for _, r := range revs {
		k := key{r.Kind, r.Key}
		if i, ok := at[k]; ok {
			revokedAt[i], expiresAt[i] = max(revokedAt[i], nanos(r.RevokedAt)), max(expiresAt[i], nanos(r.ExpiresAt))
			continue
		}
		at[k] = len(kinds)
		idx := r.StatusIdx
		if r.StatusList == "" {
			idx = -1
		}
		aud, _ := json.Marshal(list(r.Audience))
		kinds, keys, clients = append(kinds, string(r.Kind)), append(keys, r.Key), append(clients, r.ClientID)
		revokedAt, expiresAt = append(revokedAt, nanos(r.RevokedAt)), append(expiresAt, nanos(r.ExpiresAt))
		subjects, lists, idxs, auds = append(subjects, r.Subject), append(lists, r.StatusList), append(idxs, idx), append(auds, string(aud))
	}
	b := &pgx.Batch{}
	b.Queue(lockRevocationsSQL, int64(lockRevocator))
	b.Queue(insertRevocationsSQL, kinds, keys, clients, revokedAt, expiresAt, subjects, lists, idxs, auds)

	var aAt []int64
	var aActor, aAction, aTarget, aReason []string
	for _, r := range revs {
		if r.Actor != "" {
			aAt, aActor = append(aAt, nanos(r.RevokedAt)), append(aActor, r.Actor)
			aAction, aTarget, aReason = append(aAction, "revoke_"+string(r.Kind)), append(aTarget, r.Key), append(aReason, r.Reason)
		}
	}
	if len(aAt) > 0 {
		b.Queue(insertAuditSQL, aAt, aActor, aAction, aTarget, aReason)
	}

	if payloads := notices(revs); payloads == nil {
		b.Queue(notifyReloadSQL, chanRevocations)
	} else {
		b.Queue(notifyEachSQL, chanRevocations, payloads)
	}
	return b
}

// notices returns the notification payload of each record, or nil if they are too many or one
// is too large: listeners then reload from the store (an empty payload).
func notices(revs []rescind.Revocation) []string {
	if len(revs) > maxNotifiedRecords {
		return nil
	}
	payloads := make([]string, 0, len(revs))
	for _, r := range revs {
		p, _ := json.Marshal(notice{r.Kind, r.Key, r.ClientID, nanos(r.RevokedAt), nanos(r.ExpiresAt), r.Subject, r.StatusList, r.StatusIdx, r.Audience})
		if len(p) > maxPayload {
			return nil // too large to carry (a long audience)
		}
		payloads = append(payloads, string(p))
	}
	return payloads
}
