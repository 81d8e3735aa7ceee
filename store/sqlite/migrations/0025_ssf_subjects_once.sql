-- Shared Signals subjects stored once (audit of issue 19): the subject's JSON in one row per
-- (stream, subject), its lookup keys (at most 10 per subject) in a table of their own, instead of
-- one row per key that repeated the whole subject.
CREATE TABLE ssf_stream_subjects (
    stream_id  TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    subject    TEXT NOT NULL,
    added_at   INTEGER NOT NULL,
    PRIMARY KEY (stream_id, subject_id)
);
CREATE TABLE ssf_subject_keys (
    stream_id  TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    match_key  TEXT NOT NULL,
    PRIMARY KEY (stream_id, subject_id, match_key)
);
CREATE INDEX ssf_subject_keys_key ON ssf_subject_keys (match_key);
INSERT INTO ssf_stream_subjects (stream_id, subject_id, subject, added_at)
    SELECT stream_id, subject_id, min(subject), min(added_at) FROM ssf_subjects GROUP BY stream_id, subject_id;
INSERT INTO ssf_subject_keys (stream_id, subject_id, match_key) SELECT stream_id, subject_id, match_key FROM ssf_subjects;
DROP TABLE ssf_subjects;
