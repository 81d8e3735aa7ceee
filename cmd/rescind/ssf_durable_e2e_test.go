package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/rescind/rescind/admin"
)

// TestSharedSignalsHostileConfiguration: stream configurations an attacker (or a mistake) would
// send are refused with a clear error in JSON; on a server without --ssf-allow-loopback-push,
// loopback is refused too, and with it loopback is let through over http and https, nothing
// else.
func TestSharedSignalsHostileConfiguration(t *testing.T) {
	dir := shortTempDir(t)
	strict := startServer(t, filepath.Join(dir, "s"), nil)
	dev := startServer(t, filepath.Join(dir, "d"), nil, "--ssf-allow-loopback-push")
	rs, rd := newReceiver(t, strict, "strict"), newReceiver(t, dev, "dev")
	push := func(u string) map[string]any {
		return map[string]any{"delivery": map[string]any{"method": pushMethod, "endpoint_url": u}}
	}
	for _, c := range []struct {
		name   string
		r      *receiver
		config any
		status int
		says   string
	}{
		{"loopback without the flag", rs, push("http://127.0.0.1:9/events"), 400, "loopback"},
		{"https loopback without the flag", rs, push("https://127.0.0.1:9/events"), 400, "loopback"},
		{"localhost without the flag", rs, push("https://localhost/events"), 400, "loopback"},
		{"IPv6 loopback without the flag", rs, push("https://[::1]/events"), 400, "loopback"},
		{"private", rd, push("https://10.0.0.7/events"), 400, "not public"},
		{"private 192.168", rd, push("https://192.168.1.1/events"), 400, "not public"},
		{"link-local metadata", rd, push("http://169.254.169.254/latest/meta-data/"), 400, "https"},
		{"link-local over https", rd, push("https://169.254.169.254/latest/meta-data/"), 400, "not public"},
		{"IPv6 link-local", rd, push("https://[fe80::1]/events"), 400, "not public"},
		{"plain http off loopback", rd, push("http://receiver.example/events"), 400, "https"},
		{"no endpoint", rd, push(""), 400, "endpoint_url is required"},
		{"unknown method", rd, map[string]any{"delivery": map[string]any{"method": "urn:example:carrier-pigeon"}}, 400, "not supported"},
		{"header injection", rd, map[string]any{"delivery": map[string]any{"method": pushMethod, "endpoint_url": "http://127.0.0.1:9/e",
			"authorization_header": "Bearer x\r\nX-Evil: 1"}}, 400, "authorization_header"},
		{"stream_id chosen by the receiver", rd, map[string]any{"stream_id": "mine"}, 400, "stream_id"},
		{"bad default_subjects", rd, map[string]any{"default_subjects": "SOME"}, 400, "default_subjects"},
		{"oversized body", rd, map[string]any{"description": strings.Repeat("x", 64<<10)}, 413, "larger"},
		{"not JSON", rd, "just a string", 400, "JSON"},
	} {
		code, out := c.r.call("POST", c.r.endpoint("configuration_endpoint"), c.config)
		body, _ := json.Marshal(out)
		m, _ := out.(map[string]any)
		desc, _ := m["error_description"].(string)
		if code != c.status || m["error"] == nil || !strings.Contains(desc, c.says) {
			t.Errorf("%s: %d %s; want %d with an error saying %q", c.name, code, body, c.status, c.says)
		}
	}
	// With the flag, loopback over http and https is let through.
	for _, u := range []string{"http://127.0.0.1:9/events", "https://127.0.0.1:9/events", "http://localhost:9/events"} {
		if code, out := rd.call("POST", rd.endpoint("configuration_endpoint"), push(u)); code != 201 {
			t.Errorf("loopback %s with --ssf-allow-loopback-push: %d %v", u, code, out)
		}
	}
	// No token, a bad token, a token without the scope.
	req, _ := http.NewRequest("GET", rs.endpoint("configuration_endpoint"), nil)
	if res, _ := http.DefaultClient.Do(req); res.StatusCode != 401 || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("no token: %d %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
	}
	bad := *rs
	bad.token = "not-a-token"
	if code, _ := bad.call("GET", rs.endpoint("configuration_endpoint"), nil); code != 401 {
		t.Errorf("bad token: %d", code)
	}
	var plain admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", strict.dataDir, "--name", "plain", "--scope", "read")), &plain)
	noScope := *rs
	noScope.token = strict.token(plain.ClientID, plain.ClientSecret)
	if code, _ := noScope.call("POST", rs.endpoint("configuration_endpoint"), map[string]any{}); code != 403 {
		t.Errorf("token without ssf.manage: %d", code)
	}
	// Unknown event types requested are ignored (SSF 1.0 §8.1.1), not refused.
	st := rs.createStream(map[string]any{"events_requested": []string{"urn:example:nope", credentialChange}})
	if d, _ := json.Marshal(st["events_delivered"]); string(d) != `["`+credentialChange+`"]` {
		t.Errorf("events_delivered %s", d)
	}
}

// TestSharedSignalsSurviveReceiverDownAndSIGKILL: with the push receiver down, events of
// changes made meanwhile wait in the outbox; the server is SIGKILLed and started again; once
// the receiver is back, every event arrives, each once.
func TestSharedSignalsSurviveReceiverDownAndSIGKILL(t *testing.T) {
	data := filepath.Join(shortTempDir(t), "d")
	srv := startServer(t, data, nil, "--ssf-allow-loopback-push", "--outbox-poll-interval", "100ms")
	r := newReceiver(t, srv, "receiver")
	push := newPushReceiver(t, r, "")
	st := r.createStream(map[string]any{"delivery": map[string]any{"method": pushMethod, "endpoint_url": push.url()},
		"default_subjects": "ALL"})
	if st["default_subjects"] != "ALL" {
		t.Fatalf("stream %v", st)
	}
	push.stop()
	for i := range 3 {
		createUser(t, data, fmt.Sprintf("u%d", i), "password")
		cliInput(t, "new-password\n", "user", "set-password", "--data-dir", data, fmt.Sprintf("u%d", i), "--password-stdin")
	}
	cli(t, nil, "user", "delete", "--data-dir", data, "u2")
	// The receiver stays down for RESCIND_TEST_SSF_OUTAGE (1.5 s by default, to keep the suite
	// short; the minute with RESCIND_TEST_SSF_OUTAGE=1m), the server SIGKILLed half-way.
	outage := 1500 * time.Millisecond
	if v := os.Getenv("RESCIND_TEST_SSF_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("RESCIND_TEST_SSF_OUTAGE: %v", err)
		}
		outage = d
	}
	down := time.Now()
	time.Sleep(outage / 2) // attempts fail meanwhile
	srv.kill()
	srv = startServerAt(t, strings.TrimPrefix(srv.url, "http://"), data, nil, "--ssf-allow-loopback-push", "--outbox-poll-interval", "100ms")
	time.Sleep(outage - time.Since(down))
	push.start()
	t.Logf("receiver back after %v down", time.Since(down).Round(time.Millisecond))
	want := map[string]int{credentialChange: 3, accountDisabled: 1, accountPurged: 1}
	push.wait("every event", 90*time.Second+outage, func(set) bool {
		got := map[string]int{}
		push.mu.Lock()
		for _, s := range push.sets {
			got[s.Type]++
		}
		push.mu.Unlock()
		for k, n := range want {
			if got[k] != n {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond)
	if rep := push.repeats(); len(rep) > 0 {
		t.Fatalf("SETs pushed more than once: %v", rep)
	}
	push.mu.Lock()
	defer push.mu.Unlock()
	if len(push.sets) != 5 {
		t.Fatalf("%d SETs; want 5", len(push.sets))
	}
}

// TestSharedSignalsTwoInstancesDeliverOnce: two instances on one PostgreSQL database; changes
// made through both; each event reaches the push receiver once, and the poll stream created
// on one instance serves on the other.
func TestSharedSignalsTwoInstancesDeliverOnce(t *testing.T) {
	env, dsn := clusterEnv(t)
	dir := shortTempDir(t)
	args := []string{"--ssf-allow-loopback-push", "--outbox-poll-interval", "50ms"}
	// One issuer for the cluster (as behind a load balancer): A's address.
	addrA := freePort(t)
	args = append(args, "--issuer", "http://"+addrA)
	a := startServerAt(t, addrA, filepath.Join(dir, "a"), env, args...)
	b := startServer(t, filepath.Join(dir, "b"), env, args...)
	r := newReceiver(t, a, "receiver")
	push := newPushReceiver(t, r, "")
	r.createStream(map[string]any{"delivery": map[string]any{"method": pushMethod, "endpoint_url": push.url()}, "default_subjects": "ALL"})
	poll := r.createStream(map[string]any{"delivery": map[string]any{"method": pollMethod}, "default_subjects": "ALL"})
	const n = 10
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		createUser(t, s.dataDir, fmt.Sprintf("u%d", i), "password")
		cliInput(t, "new-password\n", "user", "set-password", "--data-dir", s.dataDir, fmt.Sprintf("u%d", i), "--password-stdin")
	}
	func() {
		defer func() {
			if t.Failed() {
				t.Logf("A:\n%s\nB:\n%s", a.log, b.log)
				conn, err := pgx.Connect(context.Background(), dsn)
				if err == nil {
					rows, _ := conn.Query(context.Background(), "SELECT id, kind, key, state, attempts, last_error FROM outbox ORDER BY id")
					for rows.Next() {
						var id int64
						var kind, key, state, lastErr string
						var att int
						rows.Scan(&id, &kind, &key, &state, &att, &lastErr)
						t.Logf("outbox %d %s %s %s %d %s", id, kind, key, state, att, lastErr)
					}
					rows.Close()
					conn.Close(context.Background())
				}
			}
		}()
		push.wait("every credential-change", 30*time.Second, func(set) bool {
			push.mu.Lock()
			defer push.mu.Unlock()
			return len(push.sets) >= n
		})
	}()
	time.Sleep(time.Second) // room for a repeat to show
	if rep := push.repeats(); len(rep) > 0 {
		t.Fatalf("SETs pushed more than once: %v", rep)
	}
	push.mu.Lock()
	got := len(push.sets)
	push.mu.Unlock()
	if got != n {
		t.Fatalf("%d SETs pushed; want %d", got, n)
	}
	// The poll stream, created through A, polled through B.
	pollURL := strings.Replace(poll["delivery"].(map[string]any)["endpoint_url"].(string), a.url, b.url, 1)
	sets, _ := r.poll(pollURL, map[string]any{"returnImmediately": true, "maxEvents": 100})
	if len(sets) != n {
		t.Fatalf("poll through B: %d SETs; want %d", len(sets), n)
	}
}
