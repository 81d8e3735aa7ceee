-- The durable outbox (package internal/outbox): messages written in the transaction of the change
-- that causes them, delivered with retries by whichever instance claims them. Times are Unix
-- nanoseconds, 0 for "never". A claim sets lease_owner and lease_expires_at (its read takes the
-- rows FOR UPDATE SKIP LOCKED, so concurrent claimers never wait for each other); a pending row
-- whose lease_expires_at has passed is claimable again. Delivered and failed rows keep no payload.
CREATE TABLE outbox (
    id               bigserial PRIMARY KEY,
    kind             text NOT NULL,
    key              text NOT NULL,
    payload          bytea NOT NULL,
    created_at       bigint NOT NULL,
    next_attempt_at  bigint NOT NULL,
    deadline         bigint NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text NOT NULL DEFAULT '',
    state            text NOT NULL DEFAULT 'pending',
    finished_at      bigint NOT NULL DEFAULT 0,
    lease_owner      text NOT NULL DEFAULT '',
    lease_expires_at bigint NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX outbox_finished ON outbox (finished_at) WHERE state <> 'pending';
