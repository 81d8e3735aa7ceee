// Package resource is net/http middleware for resource servers that accept access tokens from
// an OAuth 2.0 authorization server and honour revocation, including of self-contained JWTs,
// and publishes their OAuth 2.0 Protected Resource Metadata (RFC 9728).
//
// For JWT access tokens (RFC 9068) it verifies the token locally: the signature against the
// server's JWKS (fetched by discovery, RFC 8414, cached, refetched once for an unknown kid), with
// the algorithm pinned to the key's (so "none" and HMAC-with-the-public-key are impossible), and
// typ, iss, aud, exp and nbf. Then it checks revocation two ways:
//
//   - Token Status List (draft-ietf-oauth-status-list): the token's entry in its status list,
//     fetched and cached for the list's ttl. If the list cannot be refreshed past its ttl, the
//     middleware refuses tokens (fails closed) unless FailOpen is set.
//   - Push: with Push set, it subscribes to the server's revocation event stream (Server-Sent
//     Events) and refuses a revoked token as soon as the event arrives.
//
// The staleness bound is therefore: with a live push subscription, the event's delivery time;
// without, the status list's ttl. StalenessBound reports the current one.
//
// Keys: the JWKS is fetched again once its Cache-Control max-age has passed (in the background;
// requests go on with the keys held), so a key the server retired, which leaves its JWKS, is
// refused within that max-age. A JWKS that cannot be fetched again is trusted for 30 seconds
// more; then JWTs are refused (ErrStatusStale) until it can be, unless FailOpen. With push, a "key" event refuses the key at once and for good,
// even if a JWKS fetched later still lists it. Every request checks that the key that verified
// its token is still held and not retired, so no token a withdrawn key signed is accepted after
// the withdrawal, not even one whose verification was in flight when it happened.
//
// For opaque tokens it asks the introspection endpoint (RFC 7662), caching a positive answer
// briefly; push events drop cached answers (an answer asked for while an event arrived is not
// cached), and a Rescind opaque token sealed under a key announced retired is refused without
// asking (its key id is readable without opening it). Introspection and push use the resource server's own
// client, which a Rescind server must know as a resource server for the audience (RFC 7662 §4);
// a stream that carries only the client's own tokens (Rescind-Events-Scope: own-tokens) is not
// counted as push coverage.
//
// Sender-constrained tokens (DPoP, RFC 9449 §7): a token bound to a key (cnf.jkt in the JWT, or
// cnf in the introspection answer) is accepted only as "Authorization: DPoP <token>" with a DPoP
// header whose proof is made with that key, for this request's method and URL, with the token's
// hash (ath), not seen before (DPoPReplay), and with a current nonce when DPoPNonces is set. The
// URL is BaseURL followed by the request's path: BaseURL is required to accept bound tokens,
// since the Host header is the sender's to choose and would let a proof made for another origin
// pass. A bound token presented as Bearer is refused, so a copied token is useless without the
// key. Tokens that are not bound keep working as Bearer tokens. Verify, which sees a token
// without its request, takes it as a Bearer token and so refuses a bound one; VerifyRequest and
// Handler check the proof.
//
// Failures answer 401 with WWW-Authenticate: Bearer error="invalid_token" (RFC 6750 §3), or, for
// a request in the DPoP scheme, DPoP error="invalid_token", "invalid_dpop_proof" or
// "use_dpop_nonce" (with a DPoP-Nonce header), with algs naming the accepted algorithms, and a
// request without a token a 401 without error; a missing scope answers 403 insufficient_scope
// with the scopes required. Every such challenge names the resource's protected resource
// metadata (RFC 9728 §5.1, resource_metadata="..."), which MetadataHandler serves at
// MetadataPath: the resource identifier (the Audience), its authorization server, its scopes
// and how it takes tokens, for clients that discover all of it from one 401 (metadata.go). The
// verified claims are available to the next handler through ClaimsFrom.
package resource
