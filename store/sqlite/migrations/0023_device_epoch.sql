-- A person's device epoch: the login page's device cookies (a browser the person signed in on
-- is remembered, and keeps its own rate-limit bucket) are bound to it. Signing out everywhere
-- and an operator's user logout move it; a new password does not.
ALTER TABLE users ADD COLUMN device_epoch INTEGER NOT NULL DEFAULT 0;
