-- The durable outbox (package internal/outbox): messages written in the transaction of the change
-- that causes them, delivered with retries by whichever instance claims them. Times are Unix
-- nanoseconds, 0 for "never". AUTOINCREMENT: an id is never assigned again, even after the
-- newest row is deleted. A claim sets lease_owner and lease_expires_at; a pending row whose
-- lease_expires_at has passed is claimable again. Delivered and failed rows keep no payload.
CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    kind             TEXT NOT NULL,
    key              TEXT NOT NULL,
    payload          BLOB NOT NULL,
    created_at       INTEGER NOT NULL,
    next_attempt_at  INTEGER NOT NULL,
    deadline         INTEGER NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT NOT NULL DEFAULT '',
    state            TEXT NOT NULL DEFAULT 'pending',
    finished_at      INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT NOT NULL DEFAULT '',
    lease_expires_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_finished ON outbox (finished_at) WHERE state <> 'pending';
