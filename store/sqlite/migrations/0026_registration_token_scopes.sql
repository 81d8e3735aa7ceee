-- The scopes the clients registered with an initial access token may hold (registration-token
-- create --scope), copied to each such client's scope_limit when it registers. A JSON array;
-- JSON null for none given (such clients get no scope by client credentials).
ALTER TABLE registration_tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT 'null';
