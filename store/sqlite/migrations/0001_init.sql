-- Clients. Lists are JSON arrays; times are Unix nanoseconds.
CREATE TABLE clients (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    secret_hash   TEXT NOT NULL DEFAULT '',
    public        INTEGER NOT NULL DEFAULT 0,
    grant_types   TEXT NOT NULL DEFAULT '[]',
    scopes        TEXT NOT NULL DEFAULT '[]',
    redirect_uris TEXT NOT NULL DEFAULT '[]',
    token_ttl_ns  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- Revocation state: one row per revoked token id or revoked client, kept until expires_at.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    kind       TEXT NOT NULL,
    key        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    UNIQUE (kind, key)
);
CREATE INDEX revocations_expires_at ON revocations (expires_at);

-- Server keys, sealed under the secrets key.
CREATE TABLE keys (
    id         TEXT PRIMARY KEY,
    use        TEXT NOT NULL,
    algorithm  TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX keys_use ON keys (use, created_at);
