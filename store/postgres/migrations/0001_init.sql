-- Clients. Lists are JSON arrays; times are Unix nanoseconds (as in the SQLite schema).
CREATE TABLE clients (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    secret_hash   text NOT NULL DEFAULT '',
    public        boolean NOT NULL DEFAULT false,
    grant_types   jsonb NOT NULL DEFAULT '[]',
    scopes        jsonb NOT NULL DEFAULT '[]',
    redirect_uris jsonb NOT NULL DEFAULT '[]',
    token_ttl_ns  bigint NOT NULL DEFAULT 0,
    created_at    bigint NOT NULL
);

-- Revocation state: one row per revoked token id or revoked client, kept until expires_at.
-- Writers serialize on an advisory lock, so seq order is commit order and pollers that read
-- "seq > last seen" miss nothing.
CREATE TABLE revocations (
    seq        bigserial PRIMARY KEY,
    kind       text NOT NULL,
    key        text NOT NULL,
    client_id  text NOT NULL,
    revoked_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    UNIQUE (kind, key)
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- Server keys, sealed under the secrets key that every instance shares.
CREATE TABLE keys (
    id         text PRIMARY KEY,
    use        text NOT NULL,
    algorithm  text NOT NULL,
    sealed     bytea NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX keys_use ON keys (use, created_at);
