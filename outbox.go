package rescind

import (
	"errors"
	"time"
)

// The durable outbox: messages to other parties (a logout token for a relying party, a security
// event for a Shared Signals receiver) that a change causes, written in the transaction of that
// change and delivered afterwards, with retries, by whichever server instance claims them
// (package internal/outbox). A message is never lost once its transaction has committed:
// it stays pending until it is delivered or its retry deadline has passed, across restarts,
// crashes and instances.
//
// At most one instance works on a message at a time: a claim gives it a lease (an owner and an
// expiry), and only that owner may complete, retry or give up the message. A lease that expires
// (the instance crashed or hung) makes the message claimable again, so delivery is at least
// once: a receiver can see a message twice if an instance dies after the receiver accepted it
// and before the outbox recorded that. Payloads should therefore carry an identifier the
// receiver deduplicates by (a jti), chosen when the message is enqueued.
//
// Payloads hold no secret in plaintext: what a delivery needs that is secret (a receiver's
// credentials, a signing key) is produced at delivery time from sealed configuration.

// OutboxState is where a message is in its life.
type OutboxState string

const (
	// OutboxPending is a message waiting to be delivered (claimed or not).
	OutboxPending OutboxState = "pending"
	// OutboxDelivered is a message its receiver accepted. Its payload is no longer kept.
	OutboxDelivered OutboxState = "delivered"
	// OutboxFailed is a message given up: a permanent failure, or its retry deadline passed.
	// Its payload is no longer kept; the failure is in LastError and in the audit log.
	OutboxFailed OutboxState = "failed"
)

// ErrLeaseLost means an outbox message is not pending under the lease of the owner that tried
// to complete, retry, defer or give it up: the lease expired and another claim took the message,
// or it is already finished. The caller must leave the message alone.
var ErrLeaseLost = errors.New("the outbox message is not leased to this owner")

// OutboxMessage is one message of the durable outbox.
type OutboxMessage struct {
	// ID is assigned by the store at Enqueue, in enqueue order; ignored on input. It is unique
	// in the database, but a database restored from a backup can assign an ID again: an
	// identifier the receiver sees (a jti) belongs in the payload.
	ID int64
	// Kind selects the deliverer (for example "backchannel_logout", "ssf_push"). Required.
	Kind string
	// Key routes the message within its kind: the client id, the stream id.
	Key string
	// Subject is the id of the person the message concerns, if any (the user signed out): it
	// lets the account pages show a person what was sent about them (ListOutbox).
	Subject string
	// Payload is what the deliverer needs, in the deliverer's own format. Never a secret in
	// plaintext.
	Payload []byte
	// CreatedAt is when the message was enqueued. Required.
	CreatedAt time.Time
	// NextAttemptAt is when the message is next due; zero on input means CreatedAt.
	NextAttemptAt time.Time
	// Deadline is the end of the retry window: a delivery that fails at or after it is not
	// retried, and the message is given up. Required, not before CreatedAt.
	Deadline time.Time
	// Attempts counts the failed delivery attempts. A deferral ("not now") is not one.
	Attempts int
	// LastError says why the last attempt failed; empty if none did.
	LastError string
	// State is pending, delivered or failed; ignored on input (a message starts pending).
	State OutboxState
	// FinishedAt is when the message was delivered or given up; zero while pending.
	FinishedAt time.Time
	// LeaseOwner and LeaseExpiresAt are the current claim of a pending message: empty and zero
	// when it is not claimed. Ignored on input.
	LeaseOwner     string
	LeaseExpiresAt time.Time
}

// OutboxClaim is what ClaimOutbox takes.
type OutboxClaim struct {
	// Owner names the claim, and must be unique to it (an instance id and a sequence number,
	// not the instance id alone): it is what CompleteOutbox and the others check.
	Owner string
	// Kinds are the kinds the claimer can deliver; messages of other kinds are left alone.
	Kinds []string
	// Now is the claimer's time: messages due at or before it, and not leased beyond it, are
	// claimed.
	Now time.Time
	// LeaseUntil is when the claim lapses if the owner has not finished by then.
	LeaseUntil time.Time
	// Limit is the most messages to claim.
	Limit int
}

// OutboxStat describes the pending messages of one kind, for metrics.
type OutboxStat struct {
	Kind string
	// Pending counts the pending messages, claimed or not.
	Pending int64
	// OldestCreatedAt is when the oldest pending message was enqueued: now minus it is the
	// delivery lag.
	OldestCreatedAt time.Time
}

// OutboxFilter selects messages for ListOutbox: every field that is set must match.
type OutboxFilter struct {
	Kind, Key, Subject string
	// Since, if set, leaves out messages enqueued before it.
	Since time.Time
	// Limit is the most messages returned; if zero, 100.
	Limit int
}

// OutboxKindBackchannelLogout is the kind of the messages that carry OpenID Connect
// Back-Channel Logout tokens: one per relying party of an ended session, keyed by client id,
// with the person as Subject.
const OutboxKindBackchannelLogout = "backchannel_logout"
