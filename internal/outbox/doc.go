// Package outbox delivers the messages of Rescind's durable outbox (rescind.OutboxMessage): what
// a change must tell another party, such as a logout token for each relying party of an ended
// session (OpenID Connect Back-Channel Logout 1.0) or a security event for a Shared Signals
// receiver (SSF 1.0, push delivery per RFC 8935). Both use this package; neither has a retry
// loop of its own.
//
// # Writing messages
//
// A message is written in the same transaction as the change that causes it, so that either
// both are committed or neither is: a store method calls store/internal/sqlstore.EnqueueOutbox
// with its transaction (the message a session's end causes is as durable as the end itself).
// Once the transaction has committed, the caller wakes this instance's Dispatcher (Wake), which
// then delivers at once; other instances find the message at their next poll. A caller with no
// other change to make uses Dispatcher.Enqueue. NewMessage fills in the times.
//
// The payload holds the facts the deliverer needs (a session id, a subject, an event), never a
// secret in plaintext: credentials, signatures and the receiver's current endpoint are produced
// at delivery time from the configuration of that moment. If the receiver deduplicates by an
// identifier (a logout token's or a SET's jti), choose it when enqueuing and put it in the
// payload, so that a repeated delivery repeats it.
//
// # Delivering them
//
// Every instance runs one Dispatcher (cmd/rescind starts it with the server). Each kind of
// message has one Deliverer, registered with Handle before the server serves. The dispatcher
// claims due messages of the kinds it knows, at most Concurrency at a time, each with a lease
// (rescind.OutboxClaim), hands each to its Deliverer and records the outcome the Deliverer's
// error gives: delivered; retried after an exponential backoff with jitter (1 s doubling to
// 5 min by default, or later if the receiver said Retry-After); looked at again later without
// counting an attempt (Later: a paused receiver); or given up, for a permanent failure
// (Permanent) or once the message's retry window (its Deadline) has ended, with an audit entry.
// HTTPDeliverer does the HTTP part for receivers that take a POST, SSRF-safe.
//
// # Guarantees
//
//   - Nothing committed is lost: a message stays pending until it is delivered or given up,
//     across restarts, SIGKILL and instances.
//   - One instance at a time works on a message: claims on PostgreSQL take rows FOR UPDATE SKIP
//     LOCKED, on SQLite in a transaction that holds the write lock; only the lease's owner can
//     record an outcome (rescind.ErrLeaseLost).
//   - At least once: an instance that dies during a delivery leaves its lease to lapse (Lease,
//     by default DeliveryTimeout + ClockSkew + 10 s), and another instance then delivers the
//     message. If the receiver had accepted it before the death, it gets it twice; that, and
//     the rare lease that lapses while its owner is still recording the outcome, are the only
//     repeats.
//   - No order is promised, even between messages of one key: messages are claimed earliest due
//     first, and delivered concurrently.
//   - A stopping instance lets deliveries in flight finish for DrainTimeout, then cancels them
//     and releases their messages without counting an attempt.
//
// Metrics (package internal/metrics, Outbox): rescind_outbox_pending_messages and
// rescind_outbox_oldest_pending_age_seconds (the delivery lag) per kind, and
// rescind_outbox_deliveries_total per kind and outcome.
//
// # Using it (back-channel logout, in outline)
//
// In the store, in the transaction that ends the session, one message per relying party:
//
//	_, err := sqlstore.EnqueueOutbox(ctx, tx, outbox.NewMessage("backchannel_logout", clientID,
//		payload /* {"jti":..., "sid":..., "sub":...} */, now, 24*time.Hour))
//
// In the handler, once the store method has returned: d.Wake(). At start, in cmd/rescind:
//
//	m.outbox.Handle("backchannel_logout", outbox.NewHTTPDeliverer(outbox.HTTPConfig{
//		Prepare: func(ctx context.Context, msg rescind.OutboxMessage) (outbox.HTTPRequest, error) {
//			c, err := store.GetClient(ctx, msg.Key)
//			if errors.Is(err, rescind.ErrNotFound) {
//				return outbox.HTTPRequest{}, outbox.Permanent(err) // the client is gone
//			}
//			... // on other errors, return them: retried
//			token, err := signLogoutToken(msg.Payload) // signed now, with the key in force now
//			return outbox.HTTPRequest{URL: c.BackchannelLogoutURI, ContentType: "application/x-www-form-urlencoded",
//				Body: []byte(url.Values{"logout_token": {token}}.Encode())}, err
//		},
//	}))
//
// The Example shows the whole cycle, with a receiver and a SQLite store.
package outbox
