package ssf

import (
	"context"
	"net/http"
	"time"

	"github.com/rescind/rescind"
)

// Poll delivery, RFC 8936.

// maxEventsCap bounds the SETs one poll returns.
const maxEventsCap = 500

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
	if len(req.Ack)+len(req.SetErrs) > 10*maxEventsCap {
		t.writeError(w, badRequest("too many acknowledgements in one poll: at most %d", 10*maxEventsCap))
		return
	}
	max := 100
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
		set, err := t.sign(st, ev)
		if err != nil {
			t.writeError(w, err)
			return
		}
		resp.Sets[ev.JTI] = set
	}
	writeJSON(w, http.StatusOK, resp)
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
