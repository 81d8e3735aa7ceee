-- Server-side sessions: the browser's cookie holds a random secret, the store only its SHA-256
-- (hash), beside the session's public id. A user's epoch moves whenever all their sessions end
-- (a new password, signing out everywhere), so that a sign-in racing it cannot outlive it.
ALTER TABLE users ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    hash            TEXT NOT NULL UNIQUE,
    user_id         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_seen_at    INTEGER NOT NULL,
    idle_expires_at INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    user_agent      TEXT NOT NULL DEFAULT '',
    address         TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);

-- Grants and codes record the session they were made in (OpenID Connect's sid, logout).
ALTER TABLE grants ADD COLUMN session_id TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN session_id TEXT NOT NULL DEFAULT '';

-- A public client registered by an operator as first-party skips consent for scopes already
-- granted; any other public client is asked every time.
ALTER TABLE clients ADD COLUMN first_party INTEGER NOT NULL DEFAULT 0;
