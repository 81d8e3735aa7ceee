package rescind

import (
	"errors"
	"time"
)

// Shared Signals: what Rescind tells receivers of the OpenID Shared Signals Framework (SSF 1.0)
// about changes that end access, as CAEP and RISC security events (package ssf).
//
// The store is where every such change happens, so the store is where the fact is recorded: in
// the transaction of the change, each store method that ends a session (every way one ends,
// expiry included), revokes a grant, sets a password, deletes a user or changes a client's
// secret also writes one Signal per fact to the durable outbox (kind OutboxSignal), when at
// least one stream could receive it (a stream that is not disabled exists). Either both commit
// or neither does, so no path that ends access can forget to tell, and no crash can lose the
// telling. The outbox's deliverer of signals (package ssf) then finds the streams that want each
// one and appends one event per stream (AppendSSFEvents), idempotently; push streams get an
// outbox message of kind OutboxSSFPush per event, poll streams keep it until acknowledged.

// Outbox kinds of the Shared Signals transmitter.
const (
	// OutboxSignal is the kind of the outbox message that carries a Signal (its JSON) from the
	// transaction of a change to the transmitter's fan-out.
	OutboxSignal = "ssf_signal"
	// OutboxSSFPush is the kind of the outbox message that pushes one SSFEvent to its stream's
	// receiver (RFC 8935). Key is the stream id; the payload names the event.
	OutboxSSFPush = "ssf_push"
)

// SignalKind says what a Signal reports.
type SignalKind string

const (
	// SignalSessionEnded: the session SessionID of UserID ended (signed out, signed out by an
	// operator, password set, user deleted, idle or absolute expiry; Reason says which).
	SignalSessionEnded SignalKind = "session_ended"
	// SignalGrantRevoked: the grant GrantID of UserID to ClientID was revoked (Reason says how).
	SignalGrantRevoked SignalKind = "grant_revoked"
	// SignalPasswordSet: the password of UserID was set.
	SignalPasswordSet SignalKind = "password_set"
	// SignalUserDeleted: the user UserID was deleted.
	SignalUserDeleted SignalKind = "user_deleted"
	// SignalClientSecretChanged: the secret of ClientID was created, replaced or removed
	// (Change says which: "create", "update" or "delete").
	SignalClientSecretChanged SignalKind = "client_secret_changed"
)

// Signal is one security-relevant fact a change caused, as the store writes it to the outbox.
// It holds identifiers only, never a secret.
type Signal struct {
	// ID is random and unique: a stream receives at most one event per Signal and event type.
	ID   string     `json:"id"`
	Kind SignalKind `json:"kind"`
	// Txn is the same for every Signal of one change (RFC 8417 §2.2 "txn").
	Txn string `json:"txn"`
	// At is when the change took effect.
	At        time.Time `json:"at"`
	UserID    string    `json:"user_id,omitempty"`
	Username  string    `json:"username,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	ClientID  string    `json:"client_id,omitempty"`
	GrantID   string    `json:"grant_id,omitempty"`
	// Change is "create", "update" or "delete" for SignalClientSecretChanged.
	Change string `json:"change,omitempty"`
	// Actor and Reason are those of the change (the revocation template's), as audited.
	Actor  string `json:"actor,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// Delivery methods of a stream (SSF 1.0 §6.1).
const (
	// SSFPush is push delivery, RFC 8935: the transmitter POSTs each SET to the receiver.
	SSFPush = "urn:ietf:rfc:8935"
	// SSFPoll is poll delivery, RFC 8936: the receiver POSTs to the stream's poll endpoint.
	SSFPoll = "urn:ietf:rfc:8936"
)

// SSFStatus is a stream's status (SSF 1.0 §8.1.2).
type SSFStatus string

const (
	// SSFEnabled: events are transmitted.
	SSFEnabled SSFStatus = "enabled"
	// SSFPaused: events are held, and transmitted once the stream is enabled again.
	SSFPaused SSFStatus = "paused"
	// SSFDisabled: events are neither transmitted nor held.
	SSFDisabled SSFStatus = "disabled"
)

// ErrLimit means a bounded collection is full (the streams of a receiver, the subjects of a
// stream); nothing was written.
var ErrLimit = errors.New("limit reached")

// SSFStream is a Shared Signals event stream (SSF 1.0 §8.1.1), owned by the receiver client
// that created it.
type SSFStream struct {
	// ID is the stream_id, random.
	ID string
	// ClientID is the receiver's client id: the owner, and the SETs' aud.
	ClientID    string
	Description string
	// Method is SSFPush or SSFPoll.
	Method string
	// EndpointURL is the receiver's push endpoint (push streams only).
	EndpointURL string
	// AuthHeader is the Authorization header value the receiver asked its pushes to carry,
	// sealed under the secrets key (internal/secret.Box); empty if none. Never in plaintext.
	AuthHeader []byte
	// EventsRequested are the event types the receiver asked for, as given; nil if it named
	// none. EventsDelivered are those the stream carries: the ones requested that are
	// supported.
	EventsRequested, EventsDelivered []string
	Status                           SSFStatus
	StatusReason                     string
	// AllSubjects makes the stream carry events about every subject (default_subjects "ALL");
	// otherwise only about the subjects added to it.
	AllSubjects          bool
	CreatedAt, UpdatedAt time.Time
}

// SSFSubject is a subject added to a stream (SSF 1.0 §8.1.3), with the keys that find it.
type SSFSubject struct {
	StreamID string
	// ID identifies the subject within the stream: the hex SHA-256 of Subject.
	ID string
	// Subject is the subject identifier (RFC 9493, or a complex subject) as canonical JSON.
	Subject []byte
	// Keys are the lookup keys of the identifiers in the subject (package ssf makes them): an
	// event whose subject has one of them is a candidate for the stream. At least one.
	Keys    []string
	AddedAt time.Time
}

// SSFEvent is one event queued on one stream: the claims of its SET but iss and aud, which
// are added when it is signed for delivery.
type SSFEvent struct {
	StreamID string
	// JTI is the SET's jti, chosen when the event is appended: every delivery repeats it.
	JTI string
	// Source identifies what caused the event (a Signal's ID, a verification request): a stream
	// gets one event per Source and Type.
	Source string
	// Type is the event type URI.
	Type string
	// Claims is the JSON object of the SET's claims other than iss and aud.
	Claims []byte
	// CreatedAt is when the event was appended; AckedAt when the receiver acknowledged it (a
	// poll's ack or setErrs, a push's 2xx); zero while it is pending.
	CreatedAt, AckedAt time.Time
	// Error is the error the receiver reported for it (RFC 8936 setErrs), if any.
	Error string
}
