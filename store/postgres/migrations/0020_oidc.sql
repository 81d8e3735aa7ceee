-- OpenID Connect: people's profile claims, each client's ID token algorithm and logout endpoints,
-- when the person last authenticated in a session, the nonce and authentication time a code
-- carries to its ID token, the session a refresh token's chain started in, and which clients
-- were given codes in each session (whom a session's end must tell: back-channel logout).
ALTER TABLE users ADD COLUMN name text NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN email text NOT NULL DEFAULT '';

ALTER TABLE clients ADD COLUMN id_token_alg text NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris jsonb NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri text NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN backchannel_logout_session_required boolean NOT NULL DEFAULT false;

-- Unix nanoseconds; 0 means the session's created_at.
ALTER TABLE sessions ADD COLUMN auth_time bigint NOT NULL DEFAULT 0;

ALTER TABLE auth_codes ADD COLUMN nonce text NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN auth_time bigint NOT NULL DEFAULT 0;
CREATE INDEX auth_codes_session ON auth_codes (session_id) WHERE session_id <> '';

ALTER TABLE refresh_tokens ADD COLUMN session_id text NOT NULL DEFAULT '';
ALTER TABLE refresh_tokens ADD COLUMN auth_time bigint NOT NULL DEFAULT 0;

-- A row per (session, client) given a code in the session; it goes with the session.
CREATE TABLE session_clients (
    session_id text NOT NULL,
    client_id  text NOT NULL,
    grant_id   text NOT NULL,
    user_id    text NOT NULL,
    created_at bigint NOT NULL,
    PRIMARY KEY (session_id, client_id)
);
CREATE INDEX session_clients_client ON session_clients (client_id);

-- Whom an outbox message concerns (a user id), for the account pages.
ALTER TABLE outbox ADD COLUMN subject text NOT NULL DEFAULT '';
CREATE INDEX outbox_subject ON outbox (subject, kind) WHERE subject <> '';
