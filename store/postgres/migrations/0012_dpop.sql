-- DPoP (RFC 9449): clients that must use it (§5), the key a public client's refresh tokens are
-- bound to (§5), the key an authorization code is bound to (dpop_jkt, §10), and single-use
-- values already used (the proofs' jti, §11.1), shared by every instance, kept until they expire.
ALTER TABLE clients ADD COLUMN require_dpop boolean NOT NULL DEFAULT false;
ALTER TABLE refresh_tokens ADD COLUMN jkt text NOT NULL DEFAULT '';
ALTER TABLE auth_codes ADD COLUMN dpop_jkt text NOT NULL DEFAULT '';

CREATE TABLE used_once (
    id         bytea PRIMARY KEY,
    expires_at bigint NOT NULL
);
CREATE INDEX used_once_expires_at ON used_once (expires_at);
