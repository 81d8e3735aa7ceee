-- People, their grants, and the stateful credentials of the authorization code flow.
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE grants (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    scopes       TEXT NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX grants_user ON grants (user_id, revoked_at);
CREATE INDEX grants_client ON grants (client_id, revoked_at);

-- Refresh tokens and codes are stored as SHA-256 hashes only.
CREATE TABLE refresh_tokens (
    hash       TEXT PRIMARY KEY,
    grant_id   TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE auth_codes (
    hash               TEXT PRIMARY KEY,
    client_id          TEXT NOT NULL,
    user_id            TEXT NOT NULL,
    grant_id           TEXT NOT NULL,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_given INTEGER NOT NULL,
    scope              TEXT NOT NULL,
    challenge          TEXT NOT NULL,
    challenge_method   TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX auth_codes_grant ON auth_codes (grant_id);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- Who revoked what, why and when; never a token.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL
);

-- Clients may opt in to the "plain" PKCE method (RFC 7636 §4.2); S256 is required otherwise.
ALTER TABLE clients ADD COLUMN allow_plain_pkce INTEGER NOT NULL DEFAULT 0;
