-- Agents and browser apps: the resources (RFC 8707) a client may ask for, how a client was
-- registered (by an operator, dynamically per RFC 7591, or by a Client ID Metadata Document)
-- and the hash of its registration access token (RFC 7592); the audiences a grant's tokens may
-- have, and the resources each code and refresh token was issued for; initial access tokens
-- for dynamic registration, stored as hashes. Lists are JSON arrays, times Unix nanoseconds.
ALTER TABLE clients ADD COLUMN allowed_resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN registration TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN registration_token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE grants ADD COLUMN audience TEXT NOT NULL DEFAULT '[]';
ALTER TABLE auth_codes ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE refresh_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';

CREATE TABLE registration_tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX registration_tokens_expires_at ON registration_tokens (expires_at);
