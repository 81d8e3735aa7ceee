// Package admin is Rescind's administration API (JSON over HTTP) and the client the CLI uses to
// call it.
//
// The API listens on its own listener: by default a Unix socket (admin.sock in the data
// directory, mode 0600, so file permissions guard it), optionally TCP, where every request must
// carry "Authorization: Bearer <admin token>" (failures are rate-limited per address). Routes:
//
//	POST   /admin/v1/clients                    register a client; the answer carries client_secret, once
//	GET    /admin/v1/clients                    list clients
//	GET    /admin/v1/clients/{id}               show one client
//	PATCH  /admin/v1/clients/{id}               change its name, scope, redirect URIs or token_ttl
//	DELETE /admin/v1/clients/{id}               delete a client and revoke all its tokens
//	POST   /admin/v1/clients/{id}/rotate-secret give it a new secret (the old one works for the overlap)
//	GET    /admin/v1/keys                       list the sealing and signing keys and their states
//	POST   /admin/v1/keys/rotate                add a new sealing key and signing key
//	POST   /admin/v1/keys/{kid}/retire          retire a key: what it sealed or signed is refused
//	POST   /admin/v1/users                      create a local user
//	GET    /admin/v1/users                      list users
//	DELETE /admin/v1/users/{username}           delete a user and revoke all their grants
//	POST   /admin/v1/revoke-all                 revoke every grant of a user, a client, or both
//	GET    /admin/v1/audit                      the audit log of revocations, newest first
//	POST   /admin/v1/registration-tokens        make an initial access token (RFC 7591 §3); the answer carries it, once
//	GET    /admin/v1/registration-tokens        list them (never the tokens)
//	DELETE /admin/v1/registration-tokens/{id}   delete one: it registers nothing more
//	POST   /admin/v1/backup                     copy the SQLite database to a new file (socket only)
//	GET    /metrics                             Prometheus metrics
//
// Errors are ErrorResponse JSON: 400 invalid_request for a body that cannot be read, 400
// invalid_client_metadata or invalid_redirect_uri (RFC 7591 §3.2.2) for a client refused, 404
// not_found, 405 method_not_allowed (with Allow), 401 unauthorized over TCP. No answer shows a
// secret, a password or a hash, except the client secret in the answer that created it.
package admin
