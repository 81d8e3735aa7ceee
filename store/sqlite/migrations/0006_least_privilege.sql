-- Least privilege: resource-server clients and the resources they serve, the development
-- escape from the redirect URI rules, the audience of revoked tokens (who may receive their
-- events), and the status lists instances allocated (only those are published).
ALTER TABLE clients ADD COLUMN resource_server INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN allow_insecure_redirect INTEGER NOT NULL DEFAULT 0;
ALTER TABLE revocations ADD COLUMN audience TEXT NOT NULL DEFAULT '[]';

CREATE TABLE status_lists (
    id         TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX status_lists_expires_at ON status_lists (expires_at);

-- Lists allocated before this migration were not recorded: keep publishing the ones the
-- database still names (grant tokens' entries, revoked entries) until their tokens expire.
INSERT OR IGNORE INTO status_lists (id, created_at, expires_at)
    SELECT status_list, 0, max(expires_at) FROM grant_token_status GROUP BY status_list;
INSERT INTO status_lists (id, created_at, expires_at)
    SELECT status_list, 0, max(expires_at) FROM revocations WHERE status_list <> '' GROUP BY status_list
    ON CONFLICT (id) DO UPDATE SET expires_at = max(status_lists.expires_at, excluded.expires_at);
