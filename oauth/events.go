package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/revocation"
)

// MaxStreamsPerClient bounds the event streams one client holds open at once on one instance;
// one more is refused with 429. The bound is per instance, by design: it protects the
// instance's own resources (each stream is a connection, a goroutine, and a write in every
// fan-out round of that instance), which streams on other instances do not use; with N
// instances a client may hold N times as many streams, each instance serving at most this many.
const MaxStreamsPerClient = 8

// streamKeepAlive is how often an idle event stream sends a comment, so that proxies and the
// receiver know it is alive.
const streamKeepAlive = 15 * time.Second

// StreamMaxAge is how long an event stream lasts; then the server ends it, and the receiver
// reconnects with Last-Event-ID and misses nothing. A receiver that stopped reading cannot be
// told from one that reads (a socket's buffers take hours of keep-alives to fill), so this
// bounds how long such a stream holds one of its client's places.
const StreamMaxAge = 10 * time.Minute

// streamMaxAgeOverride, if positive, replaces StreamMaxAge (tests).
var streamMaxAgeOverride atomic.Int64

func streamMaxAge() time.Duration {
	if d := streamMaxAgeOverride.Load(); d > 0 {
		return time.Duration(d)
	}
	return StreamMaxAge
}

// CloseStreams ends every event stream, so a graceful shutdown need not wait for them. Register
// it with http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.feed.Close() }

// NotifyRevocations wakes the event streams' shared reader: call it after revocations commit on
// this instance or arrive from another (coherence.Config.OnRevoked).
func (s *Server) NotifyRevocations() { s.feed.Notify() }

// eventFilter is the one place that decides which revocation events a client's stream may carry:
// the records its subscriber, as registered now (sub is updated as the stream goes on), may see.
func (s *Server) eventFilter(sub *atomic.Pointer[rescind.Client]) func(rescind.Revocation) bool {
	return func(r rescind.Revocation) bool { return s.mayReceive(*sub.Load(), r) }
}

// mayReceive reports whether subscriber may see the revocation record r on the event stream:
// the rule of introspection (rescind.MayReceive), decided per record. A resource server sees
// the records of tokens for its audiences (all, with no resources registered), client-wide
// cut-offs and key retirements; any other client sees only the records of its own tokens (and
// key retirements).
func (s *Server) mayReceive(subscriber rescind.Client, r rescind.Revocation) bool {
	return rescind.MayReceive(subscriber, r, s.issuer)
}

// eventsScope names what a subscriber receives, in the Rescind-Events-Scope header and the
// stream's first comment: "resource-server" (the records of its audiences) or "own-tokens" (a
// client that is not a resource server). A resource server's middleware can tell from it that
// it was registered without --resource-server and is not told of other clients' revocations.
func eventsScope(sub rescind.Client) string {
	if sub.ResourceServer {
		return "resource-server"
	}
	return "own-tokens"
}

// subscriberNow returns the subscriber as it is registered now, so that a stream follows changes
// to what it may see; ok is false, and the stream must end, when the client is gone or its
// secret changed since it authenticated (within the client cache's lifetime, one minute).
func (s *Server) subscriberNow(r *http.Request, sub rescind.Client) (rescind.Client, bool) {
	cur, err := s.clients.Get(r.Context(), sub.ID)
	switch {
	case errors.Is(err, rescind.ErrNotFound):
		return sub, false
	case err != nil:
		return sub, true // a transient lookup failure: keep the permissions it authenticated with
	case cur.SecretHash != sub.SecretHash:
		return cur, false
	}
	return cur, true
}

// Event is the JSON of one revocation event on GET /oauth2/revocations/events. Exactly one of
// JTI, GrantID, RevokedBefore and KID says what was revoked; StatusList, when set, is the Token
// Status List entry that flipped.
type Event struct {
	// Type is "token", "grant", "client" (every token of the client issued before
	// RevokedBefore), "status" (a status list entry of a revoked grant's token) or "key" (a
	// retired key: every token it signed or sealed).
	Type string `json:"type"`
	JTI  string `json:"jti,omitempty"`
	// KID is set for type "key": the key was retired, and whatever it signed is refused.
	KID      string `json:"kid,omitempty"`
	GrantID  string `json:"grant_id,omitempty"`
	ClientID string `json:"client_id"`
	Subject  string `json:"sub,omitempty"`
	// RevokedBefore is set for type "client": tokens issued at or before it (Unix seconds) are revoked.
	RevokedBefore int64 `json:"revoked_before,omitempty"`
	StatusList    *struct {
		URI string `json:"uri"`
		Idx int64  `json:"idx"`
	} `json:"status_list,omitempty"`
	// Time is when the revocation took effect (Unix seconds); Exp when the record expires.
	Time int64 `json:"time"`
	Exp  int64 `json:"exp"`
}

func (s *Server) eventOf(r rescind.Revocation) Event {
	e := Event{Type: string(r.Kind), ClientID: r.ClientID, Subject: r.Subject, Time: r.RevokedAt.Unix(), Exp: r.ExpiresAt.Unix()}
	switch r.Kind {
	case rescind.RevokeToken:
		e.JTI = r.Key
	case rescind.RevokeGrant:
		e.GrantID = r.Key
	case rescind.RevokeClient:
		e.RevokedBefore = r.RevokedAt.Unix()
		e.Time = min(r.RevokedAt.Unix(), time.Now().Unix())
	case rescind.RevokeKey:
		e.KID = r.Key
	}
	if r.StatusList != "" && r.StatusIdx >= 0 {
		e.StatusList = &struct {
			URI string `json:"uri"`
			Idx int64  `json:"idx"`
		}{s.statusBase + r.StatusList, r.StatusIdx}
	}
	return e
}

// handleEvents streams revocations as Server-Sent Events, in commit order, each with its
// sequence number as id; a receiver that reconnects with Last-Event-ID (header, or the
// last_event_id query parameter) misses nothing that has not expired. The caller authenticates
// as a confidential client (HTTP Basic), holds at most MaxStreamsPerClient streams on this
// instance, and receives only the records it may see (mayReceive), by its registration as it is
// at each wake-up.
//
// Every stream of this instance is fed by one shared reader (revocation.Feed), woken when
// revocations commit here or arrive from another instance. A stream whose receiver reads too
// slowly to keep up resumes from the store; one whose writes block for a minute is cut; every
// stream ends after StreamMaxAge. Its receiver then reconnects with Last-Event-ID.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	client, perr := s.authenticateClient(r, nil, false)
	if perr != nil {
		writeError(w, perr)
		return
	}
	var after int64
	last := r.Header.Get("Last-Event-ID")
	if last == "" {
		last = r.URL.Query().Get("last_event_id")
	}
	if last != "" {
		n, err := strconv.ParseInt(strings.TrimSpace(last), 10, 64)
		if err != nil || n < 0 {
			writeError(w, errorf(ErrInvalidRequest, http.StatusBadRequest, "Last-Event-ID must be an event id"))
			return
		}
		after = n
	} else if r.URL.Query().Get("from") != "start" {
		// A new subscriber starts from now unless it asks for everything still in force.
		n, err := s.store.LastRevocationSeq(r.Context())
		if err != nil {
			s.log.ErrorContext(r.Context(), "reading the last revocation", "err", err)
			writeError(w, errServer)
			return
		}
		after = n
	}
	var subscriber atomic.Pointer[rescind.Client]
	subscriber.Store(&client)
	sub, err := s.feed.Subscribe(r.Context(), client.ID, after, s.eventFilter(&subscriber))
	if errors.Is(err, revocation.ErrTooManySubscriptions) {
		writeError(w, &Error{Code: "slow_down", Status: http.StatusTooManyRequests, RetryAfter: 10,
			Description: fmt.Sprintf("this client already holds %d event streams on this instance; close one, or retry later", MaxStreamsPerClient)})
		return
	}
	if err != nil {
		if !errors.Is(err, revocation.ErrFeedClosed) && r.Context().Err() == nil {
			s.log.ErrorContext(r.Context(), "subscribing to revocations", "err", err)
		}
		writeError(w, &Error{Code: ErrServerError, Status: http.StatusServiceUnavailable, RetryAfter: 1,
			Description: "the event stream is not available; retry"})
		return
	}
	defer sub.Close()
	rc := http.NewResponseController(w) // sees through wrappers (metrics) to the connection
	// A stream outlives the server's write timeout; each write gets its own deadline instead.
	rc.SetWriteDeadline(time.Now().Add(time.Minute))
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Rescind-Events-Scope", eventsScope(client))
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n: rescind revocation events from %d for %s\n\n", after, eventsScope(client))
	if rc.Flush() != nil {
		return
	}
	var buf []byte
	maxAge := streamMaxAge()
	end := time.Now().Add(maxAge)
	for {
		wait := min(streamKeepAlive, time.Until(end))
		if wait <= 0 {
			// Long enough: the receiver reconnects (EventSource after the retry above) with
			// Last-Event-ID, and misses nothing.
			rc.SetWriteDeadline(time.Now().Add(time.Minute))
			fmt.Fprintf(w, ": this stream ends after %v; reconnect with Last-Event-ID\n\n", maxAge)
			rc.Flush()
			return
		}
		revs, err := sub.Next(r.Context(), wait)
		if err != nil {
			if !errors.Is(err, revocation.ErrFeedClosed) && r.Context().Err() == nil {
				s.log.WarnContext(r.Context(), "reading revocations for events", "err", err)
			}
			return
		}
		// The stream follows its subscriber: it ends when the client is deleted or its secret
		// changes, and what it may see follows the registration (for the next records; those
		// in hand were filtered under the registration of a moment ago).
		cur, ok := s.subscriberNow(r, *subscriber.Load())
		if !ok {
			return
		}
		subscriber.Store(&cur)
		buf = buf[:0]
		if len(revs) == 0 {
			buf = append(buf, ": ping\n\n"...)
		}
		for _, rev := range revs {
			buf = append(buf, s.encodeEvent(rev)...)
		}
		// A receiver that does not take a write within a minute is cut; it reconnects with
		// Last-Event-ID and misses nothing.
		rc.SetWriteDeadline(time.Now().Add(time.Minute))
		if _, err := w.Write(buf); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// encodeEvent returns the SSE text of one record. A record goes to every stream: it is encoded
// once, and the text kept for the other streams (a small cache, keyed by Seq).
func (s *Server) encodeEvent(r rescind.Revocation) []byte {
	s.eventsMu.Lock()
	b, ok := s.encoded[r.Seq]
	s.eventsMu.Unlock()
	if ok {
		return b
	}
	data, _ := json.Marshal(s.eventOf(r))
	b = fmt.Appendf(nil, "id: %d\nevent: revocation\ndata: %s\n\n", r.Seq, data)
	s.eventsMu.Lock()
	if len(s.encoded) >= 4096 {
		clear(s.encoded)
	}
	s.encoded[r.Seq] = b
	s.eventsMu.Unlock()
	return b
}
