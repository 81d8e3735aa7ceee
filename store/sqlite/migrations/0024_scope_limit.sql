-- An operator's limit on a self-registered client's scopes, kept apart from the scopes the
-- client asserts itself (RFC 7592, its metadata document), so that the client's own updates
-- never undo it. A JSON array; JSON null for none.
ALTER TABLE clients ADD COLUMN scope_limit TEXT NOT NULL DEFAULT 'null';
