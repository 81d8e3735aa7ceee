package ssf

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/token"
)

// Poll delivery, RFC 8936.

// maxEventsCap bounds the SETs one poll returns (RFC 8936 §2.4: the transmitter may return
// fewer than maxEvents, with moreAvailable): each new one costs an RSA signature.
const maxEventsCap = 50

// maxAcks bounds the acknowledgements and errors one poll carries.
const maxAcks = 5000

// Concurrent polls, per instance: a stream may be polled by two requests at once (a receiver
// and its standby), a receiver by as many as it may have streams. Beyond, 429.
const maxPollsPerStream = 2

// pollRequest is RFC 8936 §2.4's request.
type pollRequest struct {
	MaxEvents         *int                `json:"maxEvents,omitempty"`
	ReturnImmediately bool                `json:"returnImmediately,omitempty"`
	Ack               []string            `json:"ack,omitempty"`
	SetErrs           map[string]setError `json:"setErrs,omitempty"`
}

// setError is one entry of setErrs (RFC 8936 §2.4: err and description, as RFC 8935 §2.3).
type setError struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

// pollResponse is RFC 8936 §2.5's response.
type pollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable"`
}

// handlePoll is a stream's poll endpoint (RFC 8936 §2): it records the acknowledgements and
// errors the receiver sends (an acknowledged event never returns; an error acknowledges too,
// and is audited), then returns up to maxEvents pending SETs, waiting for some, at most
// LongPoll, unless returnImmediately. A paused stream returns none (its events are held).
func (t *Transmitter) handlePoll(w http.ResponseWriter, r *http.Request) {
	tok, err := t.authenticate(r, ScopeRead, ScopeManage)
	if err != nil {
		t.writeError(w, err)
		return
	}
	st, err := t.ownStream(r.Context(), tok, r.PathValue("id"))
	if err != nil {
		t.writeError(w, err)
		return
	}
	if st.Method != rescind.SSFPoll {
		t.writeError(w, badRequest("the stream is delivered by push (RFC 8935), not poll"))
		return
	}
	var req pollRequest
	if err := t.decode(w, r, &req); err != nil {
		t.writeError(w, err)
		return
	}
	if len(req.Ack)+len(req.SetErrs) > maxAcks {
		t.writeError(w, badRequest("too many acknowledgements in one poll: at most %d", maxAcks))
		return
	}
	release, ok := t.polls.acquire(tok.ClientID, st.ID, t.cfg.MaxStreamsPerClient)
	if !ok {
		w.Header().Set("Retry-After", "1")
		t.writeError(w, errorf(http.StatusTooManyRequests, "too_many_requests",
			"too many polls at once: at most %d per stream and %d per receiver", maxPollsPerStream, t.cfg.MaxStreamsPerClient))
		return
	}
	defer release()
	max := maxEventsCap
	if req.MaxEvents != nil {
		if *req.MaxEvents < 0 {
			t.writeError(w, badRequest("maxEvents must not be negative"))
			return
		}
		max = min(*req.MaxEvents, maxEventsCap)
	}
	if len(req.Ack) > 0 || len(req.SetErrs) > 0 {
		errs := make(map[string]string, len(req.SetErrs))
		for jti, e := range req.SetErrs {
			errs[jti] = e.Err + ": " + e.Description
		}
		if _, err := t.cfg.Store.AckSSFEvents(r.Context(), st.ID, req.Ack, errs, "client:"+tok.ClientID, t.now()); err != nil {
			t.writeError(w, err)
			return
		}
	}
	resp := pollResponse{Sets: map[string]string{}}
	if max == 0 || st.Status != rescind.SSFEnabled {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	evs, err := t.pending(r.Context(), st.ID, max+1, !req.ReturnImmediately)
	if err != nil {
		t.writeError(w, err)
		return
	}
	if len(evs) > max {
		evs, resp.MoreAvailable = evs[:max], true
	}
	for _, ev := range evs {
		if r.Context().Err() != nil {
			return // the receiver is gone: sign nothing more for it
		}
		set, err := t.signCached(st, ev, false)
		if errors.Is(err, token.ErrNoSigningKey) {
			// The RS256 chain's first key is published but not in force yet (a deployment
			// upgraded from a release that made it on first need): the events wait.
			w.Header().Set("Retry-After", "60")
			t.writeError(w, errorf(http.StatusServiceUnavailable, "temporarily_unavailable",
				"the key that signs security event tokens is not in force yet; poll again later"))
			return
		}
		if err != nil {
			t.writeError(w, err)
			return
		}
		resp.Sets[ev.JTI] = set
	}
	writeJSON(w, http.StatusOK, resp)
}

// pollLimiter counts the polls under way on this instance, per receiver and per stream.
type pollLimiter struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes a slot for a poll of stream by client, unless the stream has maxPollsPerStream
// polls under way or the client perClient; release gives it back.
func (l *pollLimiter) acquire(client, stream string, perClient int) (release func(), ok bool) {
	ck, sk := "c\x00"+client, "s\x00"+stream
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n[ck] >= perClient || l.n[sk] >= maxPollsPerStream {
		return nil, false
	}
	if l.n == nil {
		l.n = map[string]int{}
	}
	l.n[ck]++
	l.n[sk]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, k := range []string{ck, sk} {
			if l.n[k]--; l.n[k] <= 0 {
				delete(l.n, k)
			}
		}
	}, true
}

// setCacheTTL is how long a signed SET is reused: each event is signed at most once per
// instance in that time, however often it is polled or its push retried, as long as the key
// that signed it still verifies (Config.KeyVerifies); after it, it is signed again, with the key
// in force then (a key rotated out meanwhile is still published).
const setCacheTTL = 10 * time.Minute

// setCacheMax bounds the SETs kept (a few KiB each).
const setCacheMax = 20000

type cachedSET struct {
	set string
	kid string // the key that signed it ("" if its header names none)
	at  time.Time
}

// setCache keeps signed SETs by stream and jti.
type setCache struct {
	mu sync.Mutex
	m  map[string]cachedSET
}

// setCacheKey is the key of the SET of event ev of stream st in the cache.
func setCacheKey(st rescind.SSFStream, ev rescind.SSFEvent) string {
	return st.ID + "\x00" + st.ClientID + "\x00" + ev.JTI
}

// signCached returns the SET of event ev of stream st, signed now or, within setCacheTTL,
// before by a key that still verifies now: a SET whose key was retired since (or dropped, or
// that names none while KeyVerifies is set) is signed again, with the key in force, so that no
// SET leaves under a key the JWKS no longer lists (SECURITY.md: an instance never signs with a
// retired key). With fresh, the SET is signed again whatever the cache holds (a receiver
// refused the one it was sent as signed by a key it does not know).
func (t *Transmitter) signCached(st rescind.SSFStream, ev rescind.SSFEvent, fresh bool) (string, error) {
	k := setCacheKey(st, ev)
	now := t.now()
	c := &t.sets
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && !fresh && now.Sub(e.at) < setCacheTTL && !now.Before(e.at) && t.keyVerifies(e.kid, now) {
		return e.set, nil
	}
	set, err := t.sign(st, ev)
	if err != nil {
		return "", err
	}
	kid, _ := token.JWTKeyID(set)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]cachedSET{}
	}
	if len(c.m) >= setCacheMax {
		for k, e := range c.m {
			if now.Sub(e.at) >= setCacheTTL || now.Before(e.at) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= setCacheMax {
			clear(c.m)
		}
	}
	c.m[k] = cachedSET{set: set, kid: kid, at: now}
	return set, nil
}

// forget drops the kept SET of event ev of stream st, if any.
func (t *Transmitter) forget(st rescind.SSFStream, ev rescind.SSFEvent) {
	t.sets.mu.Lock()
	defer t.sets.mu.Unlock()
	delete(t.sets.m, setCacheKey(st, ev))
}

// keyVerifies reports whether a SET signed by kid may still be handed out at now: whether the
// key still verifies (Config.KeyVerifies); without KeyVerifies, always.
func (t *Transmitter) keyVerifies(kid string, now time.Time) bool {
	if t.cfg.KeyVerifies == nil {
		return true
	}
	return kid != "" && t.cfg.KeyVerifies(kid, now)
}

// pending returns up to limit pending events of the stream; with wait, it looks again every
// 200 ms until there are some, LongPoll has passed, or the request ends.
func (t *Transmitter) pending(ctx context.Context, streamID string, limit int, wait bool) ([]rescind.SSFEvent, error) {
	deadline := time.Now().Add(t.cfg.LongPoll)
	for {
		evs, err := t.cfg.Store.PendingSSFEvents(ctx, streamID, limit)
		if err != nil || len(evs) > 0 || !wait || time.Now().After(deadline) {
			return evs, err
		}
		select {
		case <-ctx.Done():
			return evs, nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}
