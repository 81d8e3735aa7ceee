-- Issue 11: a revoked grant's record lives until the latest expiry of the access tokens issued
-- under the grant, recorded as they are issued, never for a lifetime taken from the
-- configuration of the moment. Times are Unix nanoseconds.
ALTER TABLE grants ADD COLUMN tokens_expire_at INTEGER NOT NULL DEFAULT 0;

-- Grants that exist already: their tokens were issued before now, each with a lifetime of at
-- most 30 days (the cap on every access token lifetime); a revoked grant issued none after its
-- revocation.
UPDATE grants SET tokens_expire_at = CASE
    WHEN revoked_at = 0 THEN CAST(strftime('%s', 'now') AS INTEGER) * 1000000000 + 2592000000000000
    ELSE revoked_at + 2592000000000000 END;

-- Records of revoked grants that the earlier sizing may have cut short, or that the janitor
-- already deleted: in force again until that bound.
INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at)
    SELECT 'grant', id, client_id, revoked_at, tokens_expire_at FROM grants
    WHERE revoked_at <> 0 AND tokens_expire_at >= CAST(strftime('%s', 'now') AS INTEGER) * 1000000000
    ON CONFLICT (kind, key) DO UPDATE SET expires_at = excluded.expires_at
    WHERE revocations.expires_at < excluded.expires_at;

-- Client secret rotation with an overlap: the replaced secret's hash and when it stops working.
ALTER TABLE clients ADD COLUMN previous_secret_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER NOT NULL DEFAULT 0;
