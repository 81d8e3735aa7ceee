// Package ssf is Rescind's Shared Signals transmitter: OpenID Shared Signals Framework 1.0
// (SSF), with the events of CAEP 1.0 (Continuous Access Evaluation Profile) and RISC 1.0 (Risk
// Incident Sharing and Coordination), delivered as Security Event Tokens (RFC 8417) by push
// (RFC 8935) or poll (RFC 8936).
//
// # Endpoints
//
//   - GET /.well-known/ssf-configuration: the transmitter configuration metadata (SSF 1.0 §7.1).
//   - /ssf/stream: POST creates a stream, GET reads one (?stream_id=) or all of the receiver's,
//     PATCH updates, PUT replaces, DELETE (?stream_id=) deletes (SSF 1.0 §8.1.1).
//   - /ssf/status: GET reads, POST sets enabled, paused (events held) or disabled (events
//     dropped) (§8.1.2).
//   - POST /ssf/subjects:add and /ssf/subjects:remove (§8.1.3): subjects per RFC 9493 (account,
//     email, iss_sub, opaque, phone_number, did, uri, aliases) or complex subjects (§3.2). A
//     stream created with "default_subjects": "ALL" gets events about every subject.
//   - POST /ssf/verify (§8.1.4.2): a verification event carrying the receiver's state.
//   - POST /ssf/poll/{stream_id} (RFC 8936): ack, setErrs, maxEvents, returnImmediately.
//
// Receivers authenticate with an access token of the server's, from the client credentials
// grant (authorization_schemes urn:ietf:rfc:6749), with scope ssf.manage (everything) or
// ssf.read (reads and polls). A receiver owns the streams it creates: another receiver's stream
// is answered 404, as if it did not exist. Each SET's aud is the receiver's client_id.
//
// # Events
//
// Every change that ends access writes a rescind.Signal to the durable outbox in its own
// transaction (see signals.go at the root). DeliverSignal, the outbox deliverer of those, turns
// each into events (CAEP session-revoked for an ended session or a revoked grant,
// credential-change for a password set or a client secret changed, RISC account-disabled and
// account-purged for a deleted user) and appends one per stream that wants it, idempotently: a
// stream gets one event per signal and type, whatever the retries. Push streams get one outbox
// message per event (PushDeliverer: retried with backoff, held while the stream is paused);
// poll streams keep the event until it is acknowledged. A SET is signed when it is delivered,
// with the key in force then; its jti is chosen at the append, so every delivery repeats it.
//
// SETs carry iss, aud, iat, jti, txn, sub_id and events (one event per SET), never sub or exp
// (RFC 8417 §2.2, SSF 1.0 §4), and each event a non-empty reason_admin.
package ssf
