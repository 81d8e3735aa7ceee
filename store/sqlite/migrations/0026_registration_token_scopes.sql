-- The scopes the clients registered with an initial access token may hold (registration-token
-- create --scope), copied to each such client's scope_limit when it registers. A JSON array;
-- JSON null for none given (such clients get no scope by client credentials).
ALTER TABLE registration_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'null';
-- The resources (RFC 8707) those clients may ask tokens for (registration-token create
-- --allowed-resource), copied to each one's allowed_resources. A JSON array; empty: any.
ALTER TABLE registration_tokens ADD COLUMN allowed_resources TEXT NOT NULL DEFAULT '[]';
