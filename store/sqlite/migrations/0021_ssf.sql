-- Shared Signals Framework streams (package ssf). Times are Unix nanoseconds, 0 for "never";
-- lists are JSON arrays; events_requested is null (JSON) when the receiver named none. auth_header is
-- the receiver's push Authorization header sealed under the secrets key, empty if none.
CREATE TABLE ssf_streams (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    description      TEXT NOT NULL DEFAULT '',
    method           TEXT NOT NULL,
    endpoint_url     TEXT NOT NULL DEFAULT '',
    auth_header      BLOB NOT NULL,
    events_requested TEXT NOT NULL,
    events_delivered TEXT NOT NULL,
    status           TEXT NOT NULL,
    status_reason    TEXT NOT NULL DEFAULT '',
    all_subjects     INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    verified_at      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX ssf_streams_client ON ssf_streams (client_id, created_at);

-- The subjects added to streams: one row per lookup key of each subject (a complex subject, or
-- aliases, has several), so that the streams wanting an event are found by its keys.
CREATE TABLE ssf_subjects (
    stream_id  TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    match_key  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (stream_id, subject_id, match_key)
);
CREATE INDEX ssf_subjects_key ON ssf_subjects (match_key);

-- Events queued on streams: the claims of each SET but iss and aud. A stream gets one event per
-- source (the signal or request that caused it) and type, so a repeated fan-out adds nothing.
CREATE TABLE ssf_events (
    stream_id  TEXT NOT NULL,
    jti        TEXT NOT NULL,
    source     TEXT NOT NULL,
    event_type TEXT NOT NULL,
    claims     BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    acked_at   INTEGER NOT NULL DEFAULT 0,
    error      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (stream_id, jti),
    UNIQUE (stream_id, source, event_type)
);
CREATE INDEX ssf_events_pending ON ssf_events (stream_id, created_at) WHERE acked_at = 0;
CREATE INDEX ssf_events_acked ON ssf_events (acked_at) WHERE acked_at <> 0;
