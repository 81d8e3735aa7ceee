-- Server-side sessions: the browser's cookie holds a random secret, the store only its SHA-256
-- (hash), beside the session's public id. A user's epoch moves whenever all their sessions end
-- (a new password, signing out everywhere), so that a sign-in racing it cannot outlive it.
ALTER TABLE users ADD COLUMN epoch bigint NOT NULL DEFAULT 0;

CREATE TABLE sessions (
    id              text PRIMARY KEY,
    hash            text NOT NULL UNIQUE,
    user_id         text NOT NULL,
    created_at      bigint NOT NULL,
    last_seen_at    bigint NOT NULL,
    idle_expires_at bigint NOT NULL,
    expires_at      bigint NOT NULL,
    user_agent      text NOT NULL DEFAULT '',
    address         text NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at);

-- Grants and codes record the session they were made in (OpenID Connect's sid, logout).
ALTER TABLE grants ADD COLUMN session_id text NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN session_id text NOT NULL DEFAULT '';

-- A public client registered by an operator as first-party skips consent for scopes already
-- granted; any other public client is asked every time.
ALTER TABLE clients ADD COLUMN first_party boolean NOT NULL DEFAULT false;
