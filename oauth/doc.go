// Package oauth implements Rescind's OAuth 2.0 protocol endpoints:
//
//   - POST /oauth2/token: the token endpoint, RFC 6749 §3.2 and §4.4 (client credentials);
//   - POST /oauth2/revoke: token revocation, RFC 7009;
//   - POST /oauth2/introspect: token introspection, RFC 7662;
//   - GET /.well-known/oauth-authorization-server (and /.well-known/openid-configuration):
//     authorization server metadata, RFC 8414.
//
// Access tokens requested with a DPoP proof (RFC 9449) are bound to the proof's key (dpop.go:
// proof checks, server nonces, the binding of public clients' refresh tokens).
//
// Client authentication follows RFC 6749 §2.3 (client_secret_basic with the §2.3.1 form-encoding,
// client_secret_post). Errors are rendered in one place, as RFC 6749 §5.2 JSON. All routes are in
// routes.go.
package oauth
