-- People, their grants, and the stateful credentials of the authorization code flow.
CREATE TABLE users (
    id            text PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    created_at    bigint NOT NULL
);

CREATE TABLE grants (
    id           text PRIMARY KEY,
    client_id    text NOT NULL,
    user_id      text NOT NULL,
    scopes       jsonb NOT NULL DEFAULT '[]',
    created_at   bigint NOT NULL,
    last_used_at bigint NOT NULL,
    revoked_at   bigint NOT NULL DEFAULT 0
);
CREATE INDEX grants_user ON grants (user_id, revoked_at);
CREATE INDEX grants_client ON grants (client_id, revoked_at);

-- Refresh tokens and codes are stored as SHA-256 hashes only.
CREATE TABLE refresh_tokens (
    hash       text PRIMARY KEY,
    grant_id   text NOT NULL,
    client_id  text NOT NULL,
    scope      text NOT NULL,
    created_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    used_at    bigint NOT NULL DEFAULT 0
);
CREATE INDEX refresh_tokens_grant ON refresh_tokens (grant_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

CREATE TABLE auth_codes (
    hash               text PRIMARY KEY,
    client_id          text NOT NULL,
    user_id            text NOT NULL,
    grant_id           text NOT NULL,
    redirect_uri       text NOT NULL,
    redirect_uri_given boolean NOT NULL,
    scope              text NOT NULL,
    challenge          text NOT NULL,
    challenge_method   text NOT NULL,
    created_at         bigint NOT NULL,
    expires_at         bigint NOT NULL,
    used_at            bigint NOT NULL DEFAULT 0
);
CREATE INDEX auth_codes_grant ON auth_codes (grant_id);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

-- Who revoked what, why and when; never a token.
CREATE TABLE audit (
    id     bigserial PRIMARY KEY,
    at     bigint NOT NULL,
    actor  text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    reason text NOT NULL
);

-- Clients may opt in to the "plain" PKCE method (RFC 7636 §4.2); S256 is required otherwise.
ALTER TABLE clients ADD COLUMN allow_plain_pkce boolean NOT NULL DEFAULT false;
