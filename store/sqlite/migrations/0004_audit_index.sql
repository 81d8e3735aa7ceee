-- The janitor deletes audit entries past their retention by time: index it, so the sweep does
-- not scan the whole log while holding the write lock.
CREATE INDEX audit_at ON audit (at);
