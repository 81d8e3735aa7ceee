package main

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/rescind/rescind/admin"
)

// The Shared Signals receiver of these tests is written from the specifications (SSF 1.0, RFC
// 8417, RFC 8935, RFC 8936, RFC 9493, CAEP 1.0, RISC 1.0), not from the server's code: it
// reads the transmitter's metadata, verifies each SET against the keys at jwks_uri with
// go-jose, and checks every rule a SET must follow.

const (
	sessionRevoked   = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	credentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	accountDisabled  = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	accountPurged    = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	verification     = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	pushMethod       = "urn:ietf:rfc:8935"
	pollMethod       = "urn:ietf:rfc:8936"
)

// receiver is a Shared Signals receiver: one client of the transmitter.
type receiver struct {
	t        *testing.T
	base     string // the transmitter's issuer
	clientID string
	token    string
	meta     map[string]any
}

// set is a verified SET, as the receiver understands it.
type set struct {
	JTI    string
	Type   string
	Event  map[string]any
	SubID  map[string]any
	Claims map[string]any
}

func newReceiver(t *testing.T, srv *server, name string) *receiver {
	t.Helper()
	var c admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", srv.dataDir, "--name", name, "--scope", "ssf.manage ssf.read")), &c)
	r := &receiver{t: t, base: srv.url, clientID: c.ClientID}
	code, body := srv.post("/oauth2/token", c.ClientID, c.ClientSecret, url.Values{"grant_type": {"client_credentials"}, "scope": {"ssf.manage"}})
	if code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	json.Unmarshal(body, &tr)
	r.token = tr.AccessToken
	res, err := http.Get(srv.url + "/.well-known/ssf-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("ssf-configuration: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	json.NewDecoder(res.Body).Decode(&r.meta)
	return r
}

// call sends a JSON request to an endpoint with the receiver's token; it returns the status and
// the decoded body (nil if none).
func (r *receiver) call(method, endpoint string, body any) (int, any) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, endpoint, rd)
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			r.t.Fatalf("%s %s: %d, not JSON: %q", method, endpoint, res.StatusCode, b)
		}
	}
	return res.StatusCode, out
}

func (r *receiver) endpoint(name string) string {
	s, _ := r.meta[name].(string)
	if s == "" {
		r.t.Fatalf("metadata has no %s: %v", name, r.meta)
	}
	return s
}

// createStream creates a stream and returns its configuration.
func (r *receiver) createStream(config map[string]any) map[string]any {
	r.t.Helper()
	code, out := r.call("POST", r.endpoint("configuration_endpoint"), config)
	if code != http.StatusCreated && code != http.StatusOK {
		r.t.Fatalf("create stream: %d %v", code, out)
	}
	st := out.(map[string]any)
	if st["stream_id"] == "" || st["iss"] != r.base || st["aud"] != r.clientID {
		r.t.Fatalf("stream configuration %v: want stream_id, iss %s, aud %s", st, r.base, r.clientID)
	}
	return st
}

// verify checks a SET as a receiver must (RFC 8417, SSF 1.0 §4, CAEP 1.0, RISC 1.0) and
// returns it.
func (r *receiver) verify(text string) set {
	r.t.Helper()
	jws, err := jose.ParseSigned(text, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA, jose.PS256})
	if err != nil || len(jws.Signatures) != 1 {
		r.t.Fatalf("SET is not a compact JWS: %v", err)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders["typ"].(string); typ != "secevent+jwt" {
		r.t.Fatalf("SET typ %q; want secevent+jwt (RFC 8417 §2.3)", typ)
	}
	res, err := http.Get(r.endpoint("jwks_uri"))
	if err != nil {
		r.t.Fatal(err)
	}
	var jwks jose.JSONWebKeySet
	json.NewDecoder(res.Body).Decode(&jwks)
	res.Body.Close()
	keys := jwks.Key(h.KeyID)
	if len(keys) != 1 {
		r.t.Fatalf("SET kid %q is not at jwks_uri", h.KeyID)
	}
	// The CAEP interoperability profile: RS256, with an RSA key of at least 2048 bits.
	if h.Algorithm != string(jose.RS256) || keys[0].Algorithm != string(jose.RS256) {
		r.t.Fatalf("SET signed %s with a key for %s; want RS256", h.Algorithm, keys[0].Algorithm)
	}
	if rk, ok := keys[0].Key.(*rsa.PublicKey); !ok || rk.N.BitLen() < 2048 {
		r.t.Fatalf("SET key %T; want an RSA key of at least 2048 bits", keys[0].Key)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		r.t.Fatalf("SET signature: %v", err)
	}
	var c map[string]any
	json.Unmarshal(payload, &c)
	if c["iss"] != r.meta["issuer"] || c["aud"] != r.clientID {
		r.t.Fatalf("SET iss %v aud %v; want %v, %s", c["iss"], c["aud"], r.meta["issuer"], r.clientID)
	}
	for _, claim := range []string{"iat", "jti", "sub_id", "events"} {
		if _, ok := c[claim]; !ok {
			r.t.Fatalf("SET has no %s: %s", claim, payload)
		}
	}
	for _, claim := range []string{"sub", "exp"} {
		if _, ok := c[claim]; ok {
			r.t.Fatalf("SET has %s, which SSF 1.0 §4.1 forbids: %s", claim, payload)
		}
	}
	events, _ := c["events"].(map[string]any)
	if len(events) != 1 {
		r.t.Fatalf("SET has %d events; want one", len(events))
	}
	s := set{Claims: c}
	s.JTI, _ = c["jti"].(string)
	s.SubID, _ = c["sub_id"].(map[string]any)
	for typ, ev := range events {
		s.Type, s.Event = typ, ev.(map[string]any)
	}
	if s.Type != verification {
		if _, ok := c["txn"].(string); !ok {
			r.t.Fatalf("SET has no txn: %s", payload)
		}
		ra, _ := s.Event["reason_admin"].(map[string]any)
		if en, _ := ra["en"].(string); en == "" {
			r.t.Fatalf("event has no reason_admin: %s", payload)
		}
	}
	if f, _ := s.SubID["format"].(string); f == "" {
		if _, ok := s.SubID["user"]; !ok {
			if _, ok := s.SubID["application"]; !ok {
				r.t.Fatalf("sub_id is neither a subject identifier nor a complex subject: %v", s.SubID)
			}
		}
	}
	return s
}

// poll polls a poll stream (RFC 8936) and returns the verified SETs and moreAvailable.
func (r *receiver) poll(endpoint string, req map[string]any) ([]set, bool) {
	r.t.Helper()
	code, out := r.call("POST", endpoint, req)
	if code != 200 {
		r.t.Fatalf("poll: %d %v", code, out)
	}
	o := out.(map[string]any)
	sets, _ := o["sets"].(map[string]any)
	var got []set
	for jti, text := range sets {
		s := r.verify(text.(string))
		if s.JTI != jti {
			r.t.Fatalf("sets key %q holds a SET with jti %q", jti, s.JTI)
		}
		got = append(got, s)
	}
	more, _ := o["moreAvailable"].(bool)
	return got, more
}

// pushReceiver is an RFC 8935 push endpoint: it checks each request and keeps the SETs.
type pushReceiver struct {
	t      *testing.T
	r      *receiver
	auth   string
	mu     sync.Mutex
	sets   []set
	jtis   map[string]int
	srv    *http.Server
	addr   string
	arrive chan struct{}
}

func newPushReceiver(t *testing.T, r *receiver, auth string) *pushReceiver {
	p := &pushReceiver{t: t, r: r, auth: auth, jtis: map[string]int{}, arrive: make(chan struct{}, 100)}
	p.addr = freePort(t)
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *pushReceiver) start() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != "POST" || req.Header.Get("Content-Type") != "application/secevent+jwt" || req.Header.Get("Authorization") != p.auth {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(400)
			fmt.Fprint(w, `{"err":"authentication_failed","description":"bad request"}`)
			p.t.Errorf("push: %s %q %q", req.Method, req.Header.Get("Content-Type"), req.Header.Get("Authorization"))
			return
		}
		b, _ := io.ReadAll(req.Body)
		s := p.r.verify(string(b))
		p.mu.Lock()
		p.jtis[s.JTI]++
		if p.jtis[s.JTI] == 1 {
			p.sets = append(p.sets, s)
		}
		p.mu.Unlock()
		w.WriteHeader(http.StatusAccepted) // RFC 8935 §2.2
		select {
		case p.arrive <- struct{}{}:
		default:
		}
	})}
	go p.srv.Serve(ln)
}

func (p *pushReceiver) stop() { p.srv.Close() }

func (p *pushReceiver) url() string { return "http://" + p.addr + "/events" }

// wait waits until a SET matching ok has arrived and returns it.
func (p *pushReceiver) wait(what string, timeout time.Duration, ok func(set) bool) set {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		p.mu.Lock()
		sets := slices.Clone(p.sets)
		p.mu.Unlock()
		for _, s := range sets {
			if ok(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("push: no %s within %v", what, timeout)
		}
		select {
		case <-p.arrive:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *pushReceiver) repeats() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for jti, n := range p.jtis {
		if n > 1 {
			out = append(out, fmt.Sprintf("%s x%d", jti, n))
		}
	}
	return out
}

func isType(typ string) func(set) bool { return func(s set) bool { return s.Type == typ } }

// userSub is the receiver's iss_sub subject for a user of the transmitter.
func userSub(iss, sub string) map[string]any {
	return map[string]any{"format": "iss_sub", "iss": iss, "sub": sub}
}

// subjectUser returns the sub of the user a SET names (a simple iss_sub, or a complex
// subject's user member).
func subjectUser(s set) string {
	id := s.SubID
	if u, ok := id["user"].(map[string]any); ok {
		id = u
	}
	if id["format"] != "iss_sub" {
		return ""
	}
	sub, _ := id["sub"].(string)
	return sub
}

// TestSharedSignals is the acceptance walk of the transmitter on the real binary: a receiver
// subscribes with a push stream and a poll stream, verifies them, adds a person, and receives
// session-revoked when they sign out everywhere and credential-change when their password is
// set; poll acknowledgements hold; other receivers' streams do not exist for it.
func TestSharedSignals(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--ssf-allow-loopback-push", "--outbox-poll-interval", "100ms")
	r := newReceiver(t, srv, "receiver")

	// Metadata (SSF 1.0 §7.1).
	for _, f := range []string{"issuer", "jwks_uri", "configuration_endpoint", "status_endpoint", "add_subject_endpoint",
		"remove_subject_endpoint", "verification_endpoint"} {
		r.endpoint(f)
	}
	if r.meta["spec_version"] != "1_0" || r.meta["issuer"] != srv.url {
		t.Fatalf("metadata %v", r.meta)
	}
	methods, _ := r.meta["delivery_methods_supported"].([]any)
	if !slices.Contains(methods, any(pushMethod)) || !slices.Contains(methods, any(pollMethod)) {
		t.Fatalf("delivery_methods_supported %v", methods)
	}
	if s, _ := json.Marshal(r.meta["authorization_schemes"]); string(s) != `[{"spec_urn":"urn:ietf:rfc:6749"}]` {
		t.Fatalf("authorization_schemes %s", s)
	}

	// A push stream and a poll stream; an unknown event type requested is ignored.
	push := newPushReceiver(t, r, "Bearer push-secret")
	pushCfg := r.createStream(map[string]any{
		"delivery":         map[string]any{"method": pushMethod, "endpoint_url": push.url(), "authorization_header": "Bearer push-secret"},
		"events_requested": []string{sessionRevoked, credentialChange, accountDisabled, accountPurged, "urn:example:unknown"},
	})
	if d, _ := json.Marshal(pushCfg["events_delivered"]); string(d) != `["`+strings.Join([]string{sessionRevoked, credentialChange, accountDisabled, accountPurged}, `","`)+`"]` {
		t.Fatalf("events_delivered %s; want the supported types requested, the unknown one ignored", d)
	}
	if d := pushCfg["delivery"].(map[string]any); d["authorization_header"] != nil {
		t.Fatal("the stream configuration returns the push authorization header")
	}
	pollCfg := r.createStream(map[string]any{"delivery": map[string]any{"method": pollMethod},
		"events_requested": []string{sessionRevoked, credentialChange}})
	pushID, pollID := pushCfg["stream_id"].(string), pollCfg["stream_id"].(string)
	pollURL, _ := pollCfg["delivery"].(map[string]any)["endpoint_url"].(string)
	if pollURL == "" {
		t.Fatalf("poll stream has no endpoint_url: %v", pollCfg)
	}

	// Verification (SSF 1.0 §8.1.4).
	for _, id := range []string{pushID, pollID} {
		if code, out := r.call("POST", r.endpoint("verification_endpoint"), map[string]any{"stream_id": id, "state": "state-" + id}); code != 204 {
			t.Fatalf("verify: %d %v", code, out)
		}
	}
	v := push.wait("verification", 10*time.Second, isType(verification))
	if v.Event["state"] != "state-"+pushID || v.SubID["format"] != "opaque" || v.SubID["id"] != pushID {
		t.Fatalf("push verification %+v", v)
	}
	sets, _ := r.poll(pollURL, map[string]any{"returnImmediately": true})
	if len(sets) != 1 || sets[0].Type != verification || sets[0].Event["state"] != "state-"+pollID {
		t.Fatalf("poll verification %+v", sets)
	}
	r.poll(pollURL, map[string]any{"returnImmediately": true, "ack": []string{sets[0].JTI}, "maxEvents": 0})

	// A person, added as a subject to both streams.
	createUser(t, data, "alice", "alice-password")
	var users []admin.UserInfo
	json.Unmarshal([]byte(cli(t, nil, "user", "list", "--data-dir", data)), &users)
	alice := users[0].ID
	createUser(t, data, "bob", "bob-password") // not a subject: no events about him
	for _, id := range []string{pushID, pollID} {
		if code, out := r.call("POST", r.endpoint("add_subject_endpoint"), map[string]any{"stream_id": id, "subject": userSub(srv.url, alice)}); code != 200 {
			t.Fatalf("add subject: %d %v", code, out)
		}
	}

	// Sign out everywhere: session-revoked for each session, pushed within a second (loose).
	_, _ = signIn(t, srv, "bob", "bob-password")
	p1, _ := signIn(t, srv, "alice", "alice-password")
	signIn(t, srv, "alice", "alice-password")
	start := time.Now()
	if res, _ := p1.post(srv.url+"/account/sessions/end-all", url.Values{"csrf_token": {p1.csrfOf(srv)}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d", res.StatusCode)
	}
	first := push.wait("session-revoked", 5*time.Second, isType(sessionRevoked))
	t.Logf("session-revoked pushed %v after sign out everywhere", time.Since(start).Round(time.Millisecond))
	if subjectUser(first) != alice || first.SubID["session"] == nil {
		t.Fatalf("session-revoked sub_id %v; want alice's user and session", first.SubID)
	}
	seen := map[string]bool{}
	push.wait("both sessions revoked", 5*time.Second, func(s set) bool {
		if s.Type == sessionRevoked {
			seen[fmt.Sprint(s.SubID["session"])] = true
		}
		return len(seen) == 2
	})

	// set-password: credential-change.
	cliInput(t, "new-alice-password\n", "user", "set-password", "--data-dir", data, "alice", "--password-stdin")
	cc := push.wait("credential-change", 5*time.Second, isType(credentialChange))
	if subjectUser(cc) != alice || cc.Event["credential_type"] != "password" || cc.Event["change_type"] != "update" {
		t.Fatalf("credential-change %+v", cc)
	}

	// A client's secret rotated: credential-change about the application, to a stream that
	// added it (an opaque client_id). A receiver may name only itself that way: another client
	// is refused (re-audit 3B #5), so the receiver watches its own secret.
	var app admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", data, "--name", "app")), &app)
	if code, out := r.call("POST", r.endpoint("add_subject_endpoint"), map[string]any{"stream_id": pushID,
		"subject": map[string]any{"format": "opaque", "id": app.ClientID}}); code != 400 {
		t.Fatalf("add subject naming another client: %d %v; want 400", code, out)
	}
	if code, out := r.call("POST", r.endpoint("add_subject_endpoint"), map[string]any{"stream_id": pushID,
		"subject": map[string]any{"format": "opaque", "id": r.clientID}}); code != 200 {
		t.Fatalf("add subject: %d %v", code, out)
	}
	cli(t, nil, "client", "rotate-secret", "--data-dir", data, app.ClientID) // told to no one here
	cli(t, nil, "client", "rotate-secret", "--data-dir", data, r.clientID)
	rot := push.wait("credential-change of the client secret", 5*time.Second, func(s set) bool {
		a, _ := s.SubID["application"].(map[string]any)
		return s.Type == credentialChange && a["id"] == r.clientID
	})
	if rot.Event["change_type"] != "update" || rot.Event["credential_type"] == nil {
		t.Fatalf("client secret credential-change %+v", rot.Event)
	}

	// Poll: both session-revoked and the credential-change are there; an acknowledged event
	// never returns, an unacknowledged one does, a setErr acknowledges and is audited.
	var got []set
	deadline := time.Now().Add(5 * time.Second)
	for len(got) < 3 && time.Now().Before(deadline) {
		got, _ = r.poll(pollURL, map[string]any{"returnImmediately": true})
	}
	if len(got) != 3 {
		t.Fatalf("poll: %d SETs; want 3 (2 session-revoked, 1 credential-change)", len(got))
	}
	for _, s := range got {
		if subjectUser(s) != alice {
			t.Fatalf("poll: a SET about someone else: %v", s.SubID)
		}
	}
	one, _ := r.poll(pollURL, map[string]any{"returnImmediately": true, "maxEvents": 1})
	if len(one) != 1 {
		t.Fatalf("maxEvents 1: %d SETs", len(one))
	}
	if _, more := r.poll(pollURL, map[string]any{"returnImmediately": true, "maxEvents": 1}); !more {
		t.Fatal("maxEvents 1 of 3: moreAvailable false")
	}
	ack, bad, kept := got[0].JTI, got[1].JTI, got[2].JTI
	rest, _ := r.poll(pollURL, map[string]any{"returnImmediately": true, "ack": []string{ack},
		"setErrs": map[string]any{bad: map[string]string{"err": "invalid_key", "description": "test rejects it"}}})
	if len(rest) != 1 || rest[0].JTI != kept {
		t.Fatalf("after ack and setErr: %v; want only the unacknowledged %s", rest, kept)
	}
	if rest, _ = r.poll(pollURL, map[string]any{"returnImmediately": true}); len(rest) != 1 || rest[0].JTI != kept {
		t.Fatalf("the unacknowledged SET does not come again: %v", rest)
	}
	if audit := cli(t, nil, "audit", "list", "--data-dir", data); !strings.Contains(audit, "ssf_set_error") || !strings.Contains(audit, "test rejects it") {
		t.Fatalf("the setErr is not in the audit log:\n%s", audit)
	}
	// A long poll returns when an event comes (bounded by its wait).
	r.poll(pollURL, map[string]any{"returnImmediately": true, "ack": []string{kept}, "maxEvents": 0})
	done := make(chan []set, 1)
	go func() { s, _ := r.poll(pollURL, map[string]any{}); done <- s }()
	time.Sleep(300 * time.Millisecond)
	cliInput(t, "third-alice-password\n", "user", "set-password", "--data-dir", data, "alice", "--password-stdin")
	select {
	case s := <-done:
		if len(s) != 1 || s[0].Type != credentialChange {
			t.Fatalf("long poll: %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll: no answer within 10 s of an event")
	}

	// Status (SSF 1.0 §8.1.2): paused holds events, enabled sends them, disabled drops them.
	status := func(st string) {
		t.Helper()
		code, out := r.call("POST", r.endpoint("status_endpoint"), map[string]any{"stream_id": pushID, "status": st, "reason": "test"})
		if code != 200 || out.(map[string]any)["status"] != st {
			t.Fatalf("status %s: %d %v", st, code, out)
		}
		if code, out := r.call("GET", r.endpoint("status_endpoint")+"?stream_id="+pushID, nil); code != 200 || out.(map[string]any)["status"] != st {
			t.Fatalf("read status: %d %v; want %s", code, out, st)
		}
	}
	countType := func(typ string) int {
		push.mu.Lock()
		defer push.mu.Unlock()
		n := 0
		for _, s := range push.sets {
			if s.Type == typ {
				n++
			}
		}
		return n
	}
	// Every credential-change so far has arrived (two set-password, one rotate-secret), so none
	// is in flight while the stream is paused.
	push.wait("the earlier credential-changes", 5*time.Second, func(set) bool { return countType(credentialChange) == 3 })
	before := countType(credentialChange)
	status("paused")
	cliInput(t, "paused-alice-password\n", "user", "set-password", "--data-dir", data, "alice", "--password-stdin")
	time.Sleep(time.Second)
	if countType(credentialChange) != before {
		t.Fatal("a paused stream pushed an event")
	}
	status("enabled")
	push.wait("the held credential-change", 5*time.Second, func(set) bool { return countType(credentialChange) == before+1 })
	status("disabled")
	cliInput(t, "dropped-alice-password\n", "user", "set-password", "--data-dir", data, "alice", "--password-stdin")
	time.Sleep(500 * time.Millisecond)
	status("enabled")
	time.Sleep(time.Second)
	if countType(credentialChange) != before+1 {
		t.Fatal("a disabled stream kept an event and pushed it once enabled")
	}
	if code, out := r.call("POST", r.endpoint("status_endpoint"), map[string]any{"stream_id": pushID, "status": "asleep"}); code != 400 {
		t.Fatalf("unknown status: %d %v", code, out)
	}

	// Another receiver: our streams do not exist for it; its own list is empty.
	other := newReceiver(t, srv, "other")
	for _, c := range []struct{ method, endpoint string }{
		{"GET", r.endpoint("configuration_endpoint") + "?stream_id=" + pushID},
		{"GET", r.endpoint("status_endpoint") + "?stream_id=" + pushID},
		{"DELETE", r.endpoint("configuration_endpoint") + "?stream_id=" + pushID},
		{"POST", pollURL},
	} {
		if code, _ := other.call(c.method, c.endpoint, map[string]any{}); code != 404 {
			t.Fatalf("another receiver: %s %s: %d; want 404", c.method, c.endpoint, code)
		}
	}
	for _, c := range []struct {
		endpoint string
		body     map[string]any
	}{
		{r.endpoint("status_endpoint"), map[string]any{"stream_id": pushID, "status": "disabled"}},
		{r.endpoint("add_subject_endpoint"), map[string]any{"stream_id": pushID, "subject": userSub(srv.url, "x")}},
		{r.endpoint("verification_endpoint"), map[string]any{"stream_id": pushID}},
	} {
		if code, _ := other.call("POST", c.endpoint, c.body); code != 404 {
			t.Fatalf("another receiver: POST %s: %d; want 404", c.endpoint, code)
		}
	}
	if code, list := other.call("GET", r.endpoint("configuration_endpoint"), nil); code != 200 || len(list.([]any)) != 0 {
		t.Fatalf("another receiver's list: %d %v", code, list)
	}

	// The operator's view.
	var listed []admin.SSFStreamInfo
	json.Unmarshal([]byte(cli(t, nil, "ssf", "streams", "--data-dir", data)), &listed)
	if len(listed) != 2 || listed[0].StreamID != pushID || listed[0].ClientID != r.clientID || listed[0].Subjects != 2 || listed[1].Subjects != 1 {
		t.Fatalf("rescind ssf streams: %+v", listed)
	}
	if out := cli(t, nil, "ssf", "streams", "--data-dir", data); strings.Contains(out, "push-secret") {
		t.Fatal("rescind ssf streams shows the push authorization header")
	}
	cli(t, nil, "ssf", "stream", "delete", "--data-dir", data, pollID)
	if code, _ := r.call("GET", r.endpoint("configuration_endpoint")+"?stream_id="+pollID, nil); code != 404 {
		t.Fatalf("a deleted stream: %d", code)
	}
	if repeats := push.repeats(); len(repeats) > 0 {
		t.Fatalf("SETs pushed more than once: %v", repeats)
	}
}
