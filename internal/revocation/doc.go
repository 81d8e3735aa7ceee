// Package revocation holds the server's revocation state in memory, writes revocations durably
// with group commit, and deletes records once nothing they cover can be alive (the janitor).
//
// State answers "is this token revoked?" without I/O: every instance loads the stored records at
// start and applies each revocation it commits before acknowledging it. The Committer batches
// concurrent revocations into one store transaction, so durability (commit and fsync before the
// 200) does not cap throughput at one fsync per request. The Feed is an instance's one reader of
// newly committed records, whatever their origin, fanned out to its revocation event streams.
//
// # The invariant
//
// Once a revocation is acknowledged, every token it covers is refused by every instance, by
// introspection, by the status list and by the resource middleware, until that token's own exp
// plus the clock skew S (--clock-skew, one minute by default), whatever happens after:
// configuration changes (the server's default ttl, a client's ttl or scopes), restarts, crashes,
// janitor sweeps, key rotation, client deletion or update, which client or person triggered the
// revocation, and revoking it again. (The status list carries token and grant revocations, not
// client-wide cut-offs: see the last paragraph.)
//
// Why it holds:
//
//  1. Acknowledged means durable and applied: Committer.Revoke and Committer.RevokeGrants
//     return only after the store committed the records, and after applying them to this
//     instance's State. Every instance loads the stored records at start and learns of new
//     ones by notification and poll (package coherence).
//
//  2. A stored record is deleted only once its ExpiresAt is more than S in the past on the
//     janitor's clock (JanitorConfig.Sweep with Grace = S), and State.Prune drops it from memory
//     at the same point; loads read every record up to that point too, so a restart drops
//     nothing the janitor keeps. Writers merge, keeping the later RevokedAt and ExpiresAt (the
//     stores' Revoke, State.Apply), and no writer lowers a record, so revoking again extends a
//     record and never shortens it.
//
//  3. So it suffices that each record's ExpiresAt is no earlier than the exp of every token it
//     covers, fixed from facts that nothing later can change. Nothing in a record's lifetime
//     comes from the configuration of the moment or from whoever asked for the revocation.
//
// # Record lifetimes
//
//   - RevokeToken (one access token) and RevokeStatus (the status list entry of a grant's JWT):
//     the token's own exp, read from the token, or recorded with the entry when it was issued.
//   - RevokeGrant: the grant's TokensExpireAt, the latest exp of the access tokens issued under
//     it. Every access token of a grant is issued right after a store transaction that redeems
//     its code (Store.RedeemCode) or rotates its refresh token (Store.RotateRefreshToken): these
//     are the only two paths that issue grant tokens (package oauth; the pages and the admin API
//     issue none). That transaction raises TokensExpireAt to the exp the token is then issued
//     with (computed before, truncated to the second as the token carries it), and refuses a
//     revoked grant. Store.RevokeGrants reads TokensExpireAt in the transaction that marks the
//     grant revoked (on PostgreSQL under the grant's row lock, which redemption and rotation
//     take first too): a redemption that committed before is counted, one after finds the grant
//     revoked and issues nothing. So the bound it reads is final. The caller's template gives
//     RevokedAt, Actor and Reason, never the lifetime. A grant revoked again whose record is
//     missing or shorter (written by an older version) gets it written again until the bound.
//   - RevokeClient from revoke-all --client, a cut-off at RevokedAt = T: it covers the tokens
//     of the client issued at or before T, client credentials tokens included, whose issue
//     writes nothing. Every access token lives at most rescind.MaxAccessTokenTTL (30 days): the
//     server clamps every lifetime to it (oauth.Server.TokenTTL), whatever the settings say. A
//     token issued at t <= T expires by t + 30 days <= T + 30 days = ExpiresAt.
//   - RevokeKey (a key an operator retired): RetireAfter (30 days and an hour) past the
//     retirement. The key seals or signs nothing after it, and no token lives longer than 30
//     days. The retirement is also stored with the key, and final in every instance's keyring,
//     so this record only carries the news to event subscribers.
//   - RevokeSession (a person's sign-in session ended: signed out, user logout, a new
//     password, the person deleted): the session's absolute expiry, fixed when it was created
//     and stored with it (nothing extends it: not its use, not a later --session-max). Every
//     instance checks this state on each use of a session, after reading it from its cache or
//     the store, and refuses it past that expiry by its own clock; the store deletes the
//     session in the transaction that writes the record, so no read after the commit finds it.
//     The same clock argument as for tokens applies, with the session's expiry as its exp.
//   - RevokeClient from a client's deletion: RevokedAt = ExpiresAt = D + 30 days + 10 minutes,
//     D the deletion. Tokens issued before D expire within 30 days of it; an instance that has
//     not learnt of the deletion yet (its poll interval at most) may issue a few more, each at
//     some t < D + 10 minutes, so covered (t <= RevokedAt) and expiring before ExpiresAt.
//
// # Clocks
//
// Verifiers compare exp with their own clocks; the janitor deletes by its own. If no
// verifier's clock (another instance's, a resource server's using package resource, which
// checks exp without leeway) is more than S behind the janitor's, then when the janitor deletes
// a record (its clock at ExpiresAt + S or later) every verifier's clock is at or past ExpiresAt,
// hence past the exp of every token the record covers: each is refused by its own expiry
// before its record can go. A verifier that allows leeway past exp must count it in S.
//
// # What the status list cannot carry
//
// Client-wide cut-offs. Client credentials tokens' status
// entries are never recorded (issuing them writes nothing), so a resource server learns of a
// client's revocation or deletion by push (a "client" event) or introspection, not by the
// status list. Grant tokens of a revoked or deleted client are covered by their grant's status
// records.
package revocation
