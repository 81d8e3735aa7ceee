-- DPoP (RFC 9449): clients that must use it (§5), the key a public client's refresh tokens are
-- bound to (§5), the key an authorization code is bound to (dpop_jkt, §10), and single-use
-- values already used (the proofs' jti, §11.1), kept until they expire.
ALTER TABLE clients ADD COLUMN require_dpop INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT NOT NULL DEFAULT '';

CREATE TABLE used_once (
    id         BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX used_once_expires_at ON used_once (expires_at);
