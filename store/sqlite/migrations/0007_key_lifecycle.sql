-- Key lifecycle: when a key starts sealing or signing (a stored fact every instance reads, so a
-- rotation takes effect everywhere at the same moment), and when an operator retired it.
-- Existing keys have always been in force from their creation. Times are Unix nanoseconds;
-- retired_at is 0 while a key is not retired.
ALTER TABLE keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE keys ADD COLUMN retired_at INTEGER NOT NULL DEFAULT 0;
UPDATE keys SET activates_at = created_at;
