-- Shared Signals Framework streams (package ssf). Times are Unix nanoseconds, 0 for "never";
-- lists are JSON arrays; events_requested is null (JSON) when the receiver named none. auth_header is
-- the receiver's push Authorization header sealed under the secrets key, empty if none.
CREATE TABLE ssf_streams (
    id               text PRIMARY KEY,
    client_id        text NOT NULL,
    description      text NOT NULL DEFAULT '',
    method           text NOT NULL,
    endpoint_url     text NOT NULL DEFAULT '',
    auth_header      bytea NOT NULL,
    events_requested jsonb NOT NULL,
    events_delivered jsonb NOT NULL,
    status           text NOT NULL,
    status_reason    text NOT NULL DEFAULT '',
    all_subjects     boolean NOT NULL DEFAULT false,
    created_at       bigint NOT NULL,
    updated_at       bigint NOT NULL,
    verified_at      bigint NOT NULL DEFAULT 0
);
CREATE INDEX ssf_streams_client ON ssf_streams (client_id, created_at);

-- The subjects added to streams: one row per lookup key of each subject (a complex subject, or
-- aliases, has several), so that the streams wanting an event are found by its keys.
CREATE TABLE ssf_subjects (
    stream_id  text NOT NULL,
    subject_id text NOT NULL,
    match_key  text NOT NULL,
    subject    text NOT NULL,
    added_at   bigint NOT NULL,
    PRIMARY KEY (stream_id, subject_id, match_key)
);
CREATE INDEX ssf_subjects_key ON ssf_subjects (match_key);

-- Events queued on streams: the claims of each SET but iss and aud. A stream gets one event per
-- source (the signal or request that caused it) and type, so a repeated fan-out adds nothing.
CREATE TABLE ssf_events (
    stream_id  text NOT NULL,
    jti        text NOT NULL,
    source     text NOT NULL,
    event_type text NOT NULL,
    claims     bytea NOT NULL,
    created_at bigint NOT NULL,
    acked_at   bigint NOT NULL DEFAULT 0,
    error      text NOT NULL DEFAULT '',
    PRIMARY KEY (stream_id, jti),
    UNIQUE (stream_id, source, event_type)
);
CREATE INDEX ssf_events_pending ON ssf_events (stream_id, created_at) WHERE acked_at = 0;
CREATE INDEX ssf_events_acked ON ssf_events (acked_at) WHERE acked_at <> 0;
