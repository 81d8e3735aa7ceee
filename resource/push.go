package resource

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rescind/rescind/client"
	"github.com/rescind/rescind/token"
)

// event is the JSON of one revocation event (see the server's documentation).
type event struct {
	Type          string `json:"type"`
	JTI           string `json:"jti"`
	KID           string `json:"kid"`
	GrantID       string `json:"grant_id"`
	ClientID      string `json:"client_id"`
	RevokedBefore int64  `json:"revoked_before"`
	StatusList    *struct {
		URI string `json:"uri"`
		Idx int64  `json:"idx"`
	} `json:"status_list"`
	Exp int64 `json:"exp"`
}

// pushedRevoked reports whether pushed events revoke the token.
func (m *Middleware) pushedRevoked(jti, gid, clientID string, iat int64, st *token.Status) bool {
	m.pushMu.RLock()
	defer m.pushMu.RUnlock()
	if _, ok := m.revokedJTI[jti]; ok && jti != "" {
		return true
	}
	if _, ok := m.revokedGrant[gid]; ok && gid != "" {
		return true
	}
	if cut, ok := m.clientCut[clientID]; ok && iat <= cut {
		return true
	}
	if st != nil {
		if _, ok := m.revokedEntry[st.StatusList.URI+"#"+strconv.FormatInt(st.StatusList.Idx, 10)]; ok {
			return true
		}
	}
	return false
}

func (m *Middleware) apply(e event) {
	if e.Type == "key" && e.KID != "" {
		m.retireKey(e.KID, e.Exp)
		return
	}
	m.pushMu.Lock()
	switch {
	case e.JTI != "":
		m.revokedJTI[e.JTI] = e.Exp
	case e.GrantID != "":
		m.revokedGrant[e.GrantID] = e.Exp
	case e.Type == "client":
		m.clientCut[e.ClientID] = max(m.clientCut[e.ClientID], e.RevokedBefore)
	}
	if e.StatusList != nil {
		m.revokedEntry[e.StatusList.URI+"#"+strconv.FormatInt(e.StatusList.Idx, 10)] = e.Exp
	}
	// Forget what has expired: those tokens are dead by their exp (checked without leeway).
	now := m.cfg.Now().Unix()
	if len(m.revokedJTI)%1024 == 0 {
		for k, exp := range m.revokedJTI {
			if exp < now {
				delete(m.revokedJTI, k)
			}
		}
		for k, exp := range m.revokedEntry {
			if exp < now {
				delete(m.revokedEntry, k)
			}
		}
	}
	m.pushMu.Unlock()
	if e.Type != "token" && e.Type != "status" {
		m.clearIntrospections() // a grant or client revocation: cached answers may be stale
	}
}

// retireKey drops a key the server retired: it is refused from now on, even if a JWKS still
// lists it, and every token it verified is verified again. A sealing key's opaque tokens are
// refused from now on too (introspect checks their key id), and the cached introspection
// answers are dropped.
func (m *Middleware) retireKey(kid string, exp int64) {
	m.keysMu.Lock()
	m.retiredKids[kid] = exp
	delete(m.keys, kid)
	m.keysGen.Add(1) // a verification in flight with the key must not be cached
	now := m.cfg.Now().Unix()
	for k, e := range m.retiredKids {
		if e < now {
			delete(m.retiredKids, k) // every token it signed has expired
		}
	}
	m.keysMu.Unlock()
	m.verifiedMu.Lock()
	clear(m.verified)
	m.verifiedMu.Unlock()
	m.clearIntrospections()
}

// healthyStreamAge is how long an event stream must have lasted for its end to reset the
// reconnection back-off.
const healthyStreamAge = 30 * time.Second

// healthyStreamOverride, if positive, replaces healthyStreamAge (tests).
var healthyStreamOverride atomic.Int64

func healthyStream() time.Duration {
	if d := healthyStreamOverride.Load(); d > 0 {
		return time.Duration(d)
	}
	return healthyStreamAge
}

func (m *Middleware) setLive(live bool) {
	m.pushMu.Lock()
	m.pushLive = live
	m.pushMu.Unlock()
}

// subscribe follows the event stream, reconnecting with Last-Event-ID, until ctx ends.
func (m *Middleware) subscribe(ctx context.Context) {
	defer close(m.done)
	endpoint := strings.TrimSuffix(m.md.Issuer, "/") + "/oauth2/revocations/events"
	var raw map[string]any
	if json.Unmarshal(m.md.Raw, &raw) == nil {
		if u, ok := raw["revocation_events_endpoint"].(string); ok && u != "" {
			endpoint = u
		}
	}
	last := ""
	const firstDelay = 200 * time.Millisecond
	delay := firstDelay
	for ctx.Err() == nil {
		start := time.Now() // wall time: a back-off, whatever the configured clock says
		err := m.stream(ctx, endpoint, &last)
		m.setLive(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) >= healthyStream() {
			// A stream that lasted (a Rescind server ends each after a while, and the
			// receiver resumes with Last-Event-ID): reconnect at once, so that push is off
			// for a round trip, and start the back-off afresh.
			m.cfg.Logger.Debug("revocation event stream ended; reconnecting", "err", err)
			delay = firstDelay
			continue
		}
		m.cfg.Logger.Warn("revocation event stream ended; reconnecting", "err", err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, 10*time.Second)
	}
}

func (m *Middleware) stream(ctx context.Context, endpoint string, last *string) error {
	u := endpoint + "?from=start"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", client.BasicAuth(m.cfg.ClientID, m.cfg.ClientSecret))
	if *last != "" {
		req.Header.Set("Last-Event-ID", *last)
	}
	hc := *m.cfg.HTTPClient
	hc.Timeout = 0 // a stream has no end
	res, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("event stream: HTTP %d", res.StatusCode)
	}
	if res.Header.Get("Rescind-Events-Scope") == "own-tokens" {
		// A Rescind server streams a client that is not a resource server only its own
		// tokens' revocations: push does not cover the tokens this API accepts, so the
		// staleness bound stays the status list's ttl.
		m.ownOnce.Do(func() {
			m.cfg.Logger.Warn("the revocation event stream carries only this client's own tokens: register the client " +
				"as a resource server (rescind client create --resource-server --resource AUDIENCE) to be pushed revocations")
		})
	} else {
		m.setLive(true)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != "" {
				var e event
				if json.Unmarshal([]byte(data), &e) == nil {
					m.apply(e)
				}
				if id != "" {
					*last = id
				}
			}
			id, data = "", ""
		case strings.HasPrefix(line, "id:"):
			id = strings.TrimSpace(line[3:])
		case strings.HasPrefix(line, "data:"):
			data += strings.TrimSpace(line[5:])
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return fmt.Errorf("event stream closed")
}
