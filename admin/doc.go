// Package admin is Rescind's administration API (JSON over HTTP) and the client the CLI uses to
// call it.
//
// The API listens on its own listener: by default a Unix socket (admin.sock in the data
// directory, mode 0600, so file permissions guard it), optionally TCP, where every request must
// carry "Authorization: Bearer <admin token>". Routes:
//
//	POST   /admin/v1/clients        register a client; the response carries client_secret, once
//	GET    /admin/v1/clients        list clients
//	GET    /admin/v1/clients/{id}   show one client
//	DELETE /admin/v1/clients/{id}   delete a client and revoke all its tokens
//	POST   /admin/v1/keys/rotate    add a new token-sealing key (old tokens keep working)
//	POST   /admin/v1/backup         copy the SQLite database to a new file (socket only)
//	GET    /metrics                 Prometheus metrics
package admin
