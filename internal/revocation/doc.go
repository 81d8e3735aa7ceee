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
//     A grant's JWT is signed only after its entry is recorded (Store.RecordGrantTokenStatus),
//     which happens only while the grant is active, atomically with respect to RevokeGrants: a
//     revocation that commits first leaves the grant without the token (invalid_grant), one
//     that commits after finds the entry and flips it. So no token of a revoked grant is valid
//     in the status list.
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
//   - RevokeClient from revoke-all --client, a cut-off at RevokedAt = C: it covers the tokens
//     of the client issued at or before C, client credentials tokens included, whose issue
//     writes nothing, so the cut-off compares C with each token's iat, which the issuing
//     instance stamped from its own clock. C must cover every token delivered before the
//     acknowledgement, whichever instance issued it and however long the commit took. The
//     admin instance takes C = N + S + M (N its clock before the commit, M a margin of a
//     second), commits, reads its clock again, A, and acknowledges only if A + S <= C; otherwise
//     it writes the cut-off again from the clock of that moment with twice the margin (five
//     attempts, then an error: the records stay, unacknowledged). The bound on commit time is
//     thus explicit: A - N <= M. A token delivered before the acknowledgement was issued at a
//     moment when the admin instance's clock read at most A, by an instance whose clock was at
//     most S ahead (the clock bound below), so its iat is at most A + S <= C: covered. Every
//     access token lives at most rescind.MaxAccessTokenTTL (30 days): the server clamps every
//     lifetime to it (oauth.Server.TokenTTL), whatever the settings say. A covered token has
//     iat <= C, so it expires by C + 30 days = ExpiresAt. The price is that C lies up to
//     S + M in the future: tokens issued until then would be covered too, so the token
//     endpoint refuses the client (503 with Retry-After) until a token it issues would carry
//     an iat past C, instead of handing out dead tokens.
//   - RevokeKey (a key an operator retired): RetireAfter (30 days and an hour) past the
//     retirement. The key seals or signs nothing after it, and no token lives longer than 30
//     days. The retirement is also stored with the key, and final in every instance's keyring,
//     so this record only carries the news to event subscribers.
//   - RevokeSession (a person's sign-in session ended: signed out, user logout, a new
//     password, the person deleted): the earlier of the session's absolute expiry (fixed when
//     it was created, never extended) and its idle expiry as read in the transaction that ends
//     it. Every instance checks this state on each use of a session, after reading it from its
//     cache or the store, and refuses it past either expiry of its copy by its own clock. No
//     copy's idle expiry is later than the stored one: a copy is read from the store, or moved
//     only after Store.TouchSession moved the stored one (which only moves later), and a touch
//     after the end finds no session (ErrNotFound) and extends nothing; the store deletes the
//     session in the transaction that writes the record, so no read after the commit finds it.
//     The same clock argument as for tokens applies, with that bound as the session's exp.
//   - RevokeClient from a client's deletion: RevokedAt = ExpiresAt = D + 30 days + 10 minutes
//     plus S, D the deletion (the admin instance's clock before the commit). Tokens issued before
//     the deletion expire within 30 days of their iat; an instance that has not learnt of the
//     deletion yet (it stops issuing when its cached copy of the client expires, a minute at
//     most, or at once by notification) may issue a few more. Each such token was issued while
//     the admin instance's clock read at most D + 10 minutes (the commit and the cache's
//     staleness fit in those 10 minutes), by an instance whose clock was at most S ahead: its
//     iat is at most D + 10 minutes + S = RevokedAt - 30 days, so it is covered and expires
//     by ExpiresAt.
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
// Issuers stamp iat and exp from their own clocks. Client cut-offs compare one instance's clock
// (the cut-off) with another's (the iat): they rely on every instance's clock being within S
// of every other's, and place the cut-off S past the admin instance's clock (above).
//
// # What the status list cannot carry
//
// Client-wide cut-offs. Client credentials tokens' status
// entries are never recorded (issuing them writes nothing), so a resource server learns of a
// client's revocation or deletion by push (a "client" event) or introspection, not by the
// status list. Grant tokens of a revoked or deleted client are covered by their grant's status
// records.
package revocation
