-- Audit 11a: records that an earlier version cut short. Times are Unix nanoseconds.
--
-- Client cut-offs (revoke-all --client, client deletion) were sized from the token lifetimes
-- configured at the moment (revoke-all: the client's ttl plus 10 minutes; deletion: the longest
-- ttl plus 10 minutes), while a token issued earlier, under another configuration, may live up
-- to 30 days. Every token a cut-off covers was issued at or before its revoked_at: the record now
-- lives until 30 days and an hour past it (the hour: the largest --clock-skew, for tokens an
-- instance ahead of the others issued while a deletion propagated). Records the janitor already
-- deleted are gone; those clients' tokens die by their own exp.
-- The extended records get a new seq, so that pollers and event subscribers that hold the
-- shorter record receive it again. Revocation writers serialize on this lock (see
-- revocationBatch in revoke.go), so seq order stays commit order.
SELECT pg_advisory_xact_lock(125839914303490);
UPDATE revocations SET seq = nextval(pg_get_serial_sequence('revocations', 'seq')),
        expires_at = revoked_at + 2595600000000000
    WHERE kind = 'client' AND expires_at >= (extract(epoch FROM now()) * 1000000000)::bigint
        AND expires_at < revoked_at + 2595600000000000;

-- The status list entry of a grant's JWT was recorded after the redemption or refresh that
-- preceded the token, without looking at the grant: an entry recorded after the grant's
-- revocation was never flipped. Flip every unexpired entry of a revoked grant that has no
-- record.
INSERT INTO revocations (kind, key, client_id, revoked_at, expires_at, status_list, status_idx)
    SELECT 'status', s.status_list || ':' || s.status_idx, g.client_id, g.revoked_at, s.expires_at, s.status_list, s.status_idx
    FROM grant_token_status s JOIN grants g ON g.id = s.grant_id
    WHERE g.revoked_at <> 0 AND s.expires_at >= (extract(epoch FROM now()) * 1000000000)::bigint
    ON CONFLICT (kind, key) DO NOTHING;
