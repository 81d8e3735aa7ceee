// Package oauth implements Rescind's OAuth 2.0 protocol endpoints, and holds the one route table
// of the public surface (routes.go), where the pages of package web are mounted too.
//
//   - GET /oauth2/authorize: the authorization endpoint, RFC 6749 §3.1 and §4.1.1-§4.1.2, for
//     the authorization code grant with PKCE (RFC 7636, required: S256, plain only for a client allowed
//     it). The redirect URI must match a registered one exactly (RFC 9700 §4.1.3), but for the
//     port of a loopback URI (RFC 8252 §7.3); anything wrong with the client or its redirect URI
//     is an error page, anything else is an error sent to the client (§4.1.2.1); the response
//     carries iss (RFC 9207). POST /oauth2/authorize takes the answer of the consent page
//     (authorize.go). Who is signed in, and the login and consent pages, come from package web
//     through the Pages interface (pages.go): this package decides, the pages show. Consent is
//     skipped for scopes already granted only to a confidential or first-party client: a
//     public client's person is asked every time (RFC 8252 §8.6, RFC 9700 §2.1). Grants and
//     codes record the session they were made in.
//   - POST /oauth2/token: the token endpoint, RFC 6749 §3.2, with authorization_code (§4.1.3,
//     RFC 7636 §4.6: a code is redeemed once, by its client, and a replay revokes its grant),
//     refresh_token (§6, rotated at every use; reuse of a rotated one revokes the grant,
//     RFC 9700 §4.14.2) and client_credentials (§4.4). On every grant the resource parameter
//     (RFC 8707, repeatable, also at the authorization endpoint) names the token's audience
//     (indicators.go).
//   - POST /oauth2/revoke: token revocation, RFC 7009, answered only once the revocation is
//     durable; revoking a refresh token revokes its grant.
//   - POST /oauth2/introspect: token introspection, RFC 7662; a token is shown active only to its
//     own client and, for an access token, to resource servers of its audience (§4).
//   - GET /.well-known/oauth-authorization-server: authorization server metadata, RFC 8414
//     (with RFC 9207's iss parameter, RFC 7591's registration endpoint and the Client ID
//     Metadata Document draft's flag). /.well-known/openid-configuration is not served: this is
//     not OpenID Provider metadata.
//   - POST /oauth2/register, and GET, PUT, DELETE /oauth2/register/{client_id}: dynamic client
//     registration, RFC 7591, and its management, RFC 7592 (register.go), with
//     Config.Registration.
//   - An https URL as client_id: a Client ID Metadata Document (clientdoc.go), with
//     Config.ClientDocuments.
//   - CORS on token, revocation, registration, metadata, JWKS and status lists, for browser
//     apps (cors.go); never on pages, authorization or introspection.
//   - GET /.well-known/jwks.json: the JWT signing keys, RFC 7517.
//   - GET /oauth2/statuslists/{id}: the Token Status Lists (draft-ietf-oauth-status-list) of the
//     JWT access tokens, signed.
//   - GET /oauth2/revocations/events: revocations as they commit, as Server-Sent Events, to
//     clients that may know of the tokens concerned (events.go).
//   - GET /healthz and GET /readyz: liveness and readiness.
//
// Access tokens are opaque and sealed, or JWTs (RFC 9068), per client (package token); neither
// kind is stored, and every lifetime is capped at rescind.MaxAccessTokenTTL. Refresh tokens and
// codes are stored as hashes.
//
// Access tokens requested with a DPoP proof (RFC 9449) are bound to the proof's key (dpop.go:
// proof checks, server nonces, the binding of public clients' refresh tokens).
//
// Client authentication follows RFC 6749 §2.3 (client_secret_basic with the §2.3.1 form-encoding,
// client_secret_post, none for public clients), with failures rate-limited. Errors are rendered
// in one place, as RFC 6749 §5.2 JSON; a known path asked with another method is a 405.
package oauth
