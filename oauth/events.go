package oauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rescind/rescind"
)

// Events wakes the revocation event streams when revocations commit, on this instance or
// another, and ends them when the server shuts down. The zero value is ready to use. It exists
// apart from the Server so that what commits revocations can be built before the Server.
type Events struct {
	mu     sync.Mutex
	ch     chan struct{}
	closed chan struct{}
	once   sync.Once
}

func (h *Events) done() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed == nil {
		h.closed = make(chan struct{})
	}
	return h.closed
}

func (h *Events) close() {
	h.done()
	h.once.Do(func() { close(h.closed) })
}

func (h *Events) wait() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ch == nil {
		h.ch = make(chan struct{})
	}
	return h.ch
}

func (h *Events) notify() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ch != nil {
		close(h.ch)
		h.ch = nil
	}
}

// Notify wakes the event streams: call it after revocations commit or arrive from another
// instance.
func (h *Events) Notify() { h.notify() }

// Close ends every event stream, now and from now on.
func (h *Events) Close() { h.close() }

// CloseStreams ends every event stream, so a graceful shutdown need not wait for them. Register
// it with http.Server.RegisterOnShutdown.
func (s *Server) CloseStreams() { s.events.close() }

// NotifyRevocations wakes the event streams: call it after revocations commit or arrive from
// another instance.
func (s *Server) NotifyRevocations() { s.events.notify() }

// Event is the JSON of one revocation event on GET /oauth2/revocations/events. Exactly one of
// JTI, GrantID and RevokedBefore says what was revoked; StatusList, when set, is the Token
// Status List entry that flipped.
type Event struct {
	// Type is "token", "grant", "client" (every token of the client issued before
	// RevokedBefore) or "status" (a status list entry of a revoked grant's token).
	Type     string `json:"type"`
	JTI      string `json:"jti,omitempty"`
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
	}
	if r.StatusList != "" && r.StatusIdx >= 0 {
		e.StatusList = &struct {
			URI string `json:"uri"`
			Idx int64  `json:"idx"`
		}{s.statusBase + r.StatusList, r.StatusIdx}
	}
	return e
}

// mayReceive reports whether subscriber may see the revocation record r on the event stream:
// the rule of introspection (rescind.MayReceive), decided per record. A resource server sees
// the records of tokens for its audiences (all, with no resources registered) and client-wide
// cut-offs; any other client sees only the records of its own tokens.
func (s *Server) mayReceive(subscriber rescind.Client, r rescind.Revocation) bool {
	return rescind.MayReceive(subscriber, r, s.issuer)
}

// handleEvents streams revocations as Server-Sent Events, in commit order, each with its
// sequence number as id; a receiver that reconnects with Last-Event-ID (header, or the
// last_event_id query parameter) misses nothing that has not expired. The caller authenticates
// as a confidential client (HTTP Basic) and receives only the records it may see (mayReceive).
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	sub, perr := s.authenticateClient(r, nil, false)
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
	rc := http.NewResponseController(w) // sees through wrappers (metrics) to the connection
	rc.SetWriteDeadline(time.Time{})    // a stream outlives the server's write timeout
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("Rescind-Events-Scope", eventsScope(sub))
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: 1000\n: rescind revocation events from %d for %s\n\n", after, eventsScope(sub))
	rc.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	ok := true
	for {
		wake := s.events.wait()
		if sub, ok = s.subscriberNow(r, sub); !ok {
			return
		}
		for {
			revs, err := s.store.RevocationsSince(r.Context(), after, s.now(), 500)
			if err != nil {
				if r.Context().Err() == nil {
					s.log.WarnContext(r.Context(), "reading revocations for events", "err", err)
				}
				return
			}
			for _, rev := range revs {
				after = rev.Seq
				if !s.mayReceive(sub, rev) {
					continue
				}
				b, _ := json.Marshal(s.eventOf(rev))
				fmt.Fprintf(w, "id: %d\nevent: revocation\ndata: %s\n\n", rev.Seq, b)
			}
			if len(revs) < 500 {
				break
			}
		}
		rc.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-s.events.done():
			return
		case <-wake:
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			rc.Flush()
		}
	}
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
