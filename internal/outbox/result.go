package outbox

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rescind/rescind"
)

// Deliverer delivers the messages of one kind (Dispatcher.Handle). Deliver makes one attempt
// and says how it went through its error:
//
//   - nil: delivered (the receiver accepted the message); the message is done.
//   - an error made by Permanent: retrying cannot help (the receiver refused the message, the
//     client is gone); the message is given up at once, and the failure audited.
//   - an error made by Later: not a failure, the receiver cannot take it now (a paused
//     stream); the message is looked at again at the time given, no attempt is counted and
//     its retry deadline does not apply.
//   - an error made by RetryAfter: a failure after which the receiver asked to wait (HTTP
//     Retry-After); it is retried no sooner than asked, and no later than its deadline.
//   - any other error: a failure that may pass (a timeout, a 5xx, a refused connection); the
//     message is retried with exponential backoff until its deadline, then given up.
//
// ctx ends when the attempt has taken too long (Config.DeliveryTimeout) or the instance stops.
// The error text is stored and audited: it must hold no secret (no credentials, no URL query).
// Deliver is called concurrently, and for one message at a time by one instance only, but a
// message can reach it again after the receiver accepted it (see rescind.ErrLeaseLost), so what
// it sends should let the receiver recognise a repeat (a jti taken from the payload).
type Deliverer interface {
	Deliver(ctx context.Context, m rescind.OutboxMessage) error
}

// DelivererFunc is a function as a Deliverer.
type DelivererFunc func(ctx context.Context, m rescind.OutboxMessage) error

// Deliver calls f.
func (f DelivererFunc) Deliver(ctx context.Context, m rescind.OutboxMessage) error { return f(ctx, m) }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as a failure that retrying cannot mend: the message is given up at once.
func Permanent(err error) error {
	if err == nil {
		err = errors.New("permanent failure")
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or an error it wraps, was made by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

type retryAfterError struct {
	after time.Duration
	err   error
}

func (e *retryAfterError) Error() string { return e.err.Error() }
func (e *retryAfterError) Unwrap() error { return e.err }

// RetryAfter marks err as a failure after which the receiver asked to wait at least d (HTTP
// Retry-After, RFC 9110 §10.2.3): the next attempt is no sooner than d from now, or the backoff
// if that is longer, and never after the message's deadline.
func RetryAfter(d time.Duration, err error) error {
	if err == nil {
		err = errors.New("the receiver asked to retry later")
	}
	return &retryAfterError{after: d, err: err}
}

// retryAfter returns the wait an error made by RetryAfter asks for, or 0.
func retryAfter(err error) time.Duration {
	var r *retryAfterError
	if errors.As(err, &r) {
		return r.after
	}
	return 0
}

// laterError is not a failure: the receiver cannot take the message now.
type laterError struct {
	at     time.Time
	reason string
}

func (e *laterError) Error() string {
	return fmt.Sprintf("not now (%s): again at %s", e.reason, e.at.Format(time.RFC3339))
}

// Later says the message cannot be delivered now but is not failing (an SSF stream its receiver
// paused: events queue until it is enabled): it is looked at again at at (no sooner than the
// next poll, no later than a day from now), without counting an attempt, and its retry deadline does not apply, so a deliverer that defers must itself bound
// how long it keeps doing so (returning Permanent in the end). reason is logged.
func Later(at time.Time, reason string) error { return &laterError{at: at, reason: reason} }
