-- JWT access tokens: the token format per client, and what Token Status List and push need.
ALTER TABLE clients ADD COLUMN token_format TEXT NOT NULL DEFAULT 'opaque';
ALTER TABLE revocations ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE revocations ADD COLUMN status_list TEXT NOT NULL DEFAULT '';
ALTER TABLE revocations ADD COLUMN status_idx INTEGER NOT NULL DEFAULT -1;

-- The status list entries of the access tokens issued under each grant, so that revoking the
-- grant flips their bits. Kept until the token expires.
CREATE TABLE grant_token_status (
    grant_id    TEXT NOT NULL,
    status_list TEXT NOT NULL,
    status_idx  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (status_list, status_idx)
);
CREATE INDEX grant_token_status_grant ON grant_token_status (grant_id);
CREATE INDEX grant_token_status_expires_at ON grant_token_status (expires_at);
