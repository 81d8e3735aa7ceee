// Package client revokes, introspects and obtains OAuth 2.0 tokens at any authorization server
// that implements the standards: Rescind, Keycloak, Hydra, Okta, Google and others.
//
//   - Discover reads authorization server metadata (RFC 8414), falling back to OpenID Connect
//     discovery, and checks that the issuer matches (RFC 8414 §3.3).
//   - Client.Revoke revokes a token (RFC 7009); Client.RevokeToken revokes an *oauth2.Token's
//     refresh token, then its access token.
//   - Client.Introspect asks whether a token is active (RFC 7662).
//   - Client.ClientCredentials and Client.Refresh obtain tokens (RFC 6749 §4.4, §6), and
//     Client.Token sends any token request, as *oauth2.Token values for use with
//     golang.org/x/oauth2.
//   - With Client.DPoP set, token requests carry a DPoP proof, so the tokens are bound to its
//     key (RFC 9449 §5), with the server's nonce when it asks (§8); DPoPTransport then presents
//     such a token to a resource server with a proof per request (§7.1), and only to the origins
//     it is for, redirects included.
//
// Client authentication is client_secret_basic, with the client id and secret form-encoded
// before Basic encoding as RFC 6749 §2.3.1 requires (the step most hand-written clients get
// wrong), client_secret_post, or none for public clients; when not set, the method is picked
// from the server's metadata. Server errors are returned as *Error, mirroring RFC 6749 §5.2.
// A 503 answer is retried, honouring Retry-After, up to a limit (RFC 7009 §2.2.1).
package client
