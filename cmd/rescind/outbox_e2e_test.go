package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/outbox"
	"github.com/rescind/rescind/store/postgres"
	"github.com/rescind/rescind/store/sqlite"
)

// No kind of outbox message exists yet in the server (back-channel logout and Shared Signals
// will bring theirs), so TestOutboxDelivery runs instances of the real server wiring (Main) in
// processes of their own, made from this test binary, with a test kind registered: nothing of
// it is in the rescind binary. The test enqueues through the database, as the server's own
// transactions will.

// outboxInstanceEnv, set to an instance name, makes this test binary run `rescind serve` with
// its arguments (what follows "serve" in os.Args) and the test kind, instead of the tests.
const outboxInstanceEnv = "RESCIND_TEST_OUTBOX_INSTANCE"

// outboxReceiverEnv is the test kind's receiver URL.
const outboxReceiverEnv = "RESCIND_TEST_OUTBOX_RECEIVER"

// outboxLeaseEnv, if set, is the instance's outbox lease (a duration); 5 s otherwise.
const outboxLeaseEnv = "RESCIND_TEST_OUTBOX_LEASE"

// testKind is the outbox kind of the test: the payload is POSTed to the receiver, with an
// X-Instance header naming the instance.
const testKind = "test.echo"

func init() {
	if name := os.Getenv(outboxInstanceEnv); name != "" {
		os.Exit(runOutboxInstance(name))
	}
}

// runOutboxInstance is `rescind serve` with the test kind's deliverer and short outbox times:
// retries after 100 ms doubling to 400 ms, attempts of at most 3 s, leases of 5 s (or
// outboxLeaseEnv). It exits when
// SIGTERM comes (closing the server) or stdin closes (the test is gone).
func runOutboxInstance(name string) int {
	i := slices.Index(os.Args, "serve")
	if i < 0 {
		fmt.Fprintln(os.Stderr, "outbox instance: no serve command in", os.Args)
		return 2
	}
	cmd, args, err := newRootCommand(os.Stdin, os.Stdout, os.Stderr).Find(os.Args[i:])
	if err == nil {
		err = cmd.ParseFlags(args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "outbox instance:", err)
		return 2
	}
	cfg, err := loadSettings(cmd)
	if err != nil {
		fmt.Fprintln(os.Stderr, "outbox instance:", err)
		return 2
	}
	receiver := os.Getenv(outboxReceiverEnv)
	lease := 5 * time.Second
	if v := os.Getenv(outboxLeaseEnv); v != "" {
		if lease, err = time.ParseDuration(v); err != nil {
			fmt.Fprintln(os.Stderr, "outbox instance:", err)
			return 2
		}
	}
	m := &Main{Config: cfg, LogOutput: os.Stderr,
		Outbox: outbox.Config{Instance: name, MinBackoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
			DeliveryTimeout: 3 * time.Second, Lease: lease, StatsInterval: 100 * time.Millisecond},
		Deliverers: map[string]outbox.Deliverer{testKind: outbox.NewHTTPDeliverer(outbox.HTTPConfig{AllowLoopback: true,
			Prepare: func(_ context.Context, msg rescind.OutboxMessage) (outbox.HTTPRequest, error) {
				return outbox.HTTPRequest{URL: receiver, ContentType: "text/plain", Body: msg.Payload,
					Header: http.Header{"X-Instance": {name}}}, nil
			}})},
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { // the test died: do not linger
		io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "outbox instance:", err)
		return 1
	}
	<-ctx.Done()
	if err := m.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "outbox instance: closing:", err)
		return 1
	}
	return 0
}

// startOutboxInstance runs instance name (this test binary in a process of its own) on the
// cluster's database, with a metrics listener, and waits until it is ready.
func startOutboxInstance(t *testing.T, name, dataDir, receiver string, env []string) (*server, string) {
	t.Helper()
	addr, metricsAddr := freePort(t), freePort(t)
	s := &server{t: t, url: "http://" + addr, dataDir: dataDir, log: &syncBuffer{}}
	s.cmd = exec.Command(os.Args[0], "serve", "--addr", addr, "--data-dir", dataDir, "--outbox-poll-interval", "50ms",
		"--clock-skew", "1s", "--metrics-addr", metricsAddr)
	s.cmd.Env = append(os.Environ(), append(env, outboxInstanceEnv+"="+name, outboxReceiverEnv+"="+receiver)...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	stdin, err := s.cmd.StdinPipe() // closed when the test process ends, however it ends
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(); stdin.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := http.Get(s.url + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return s, "http://" + metricsAddr + "/metrics"
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instance %s not ready\n%s", name, s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// echoReceiver is the test kind's receiver: it acknowledges each POST with 200 and counts the
// acknowledgements per payload, except, while hangFrom names an instance, that instance's
// requests, which it holds unanswered until their connection goes.
type echoReceiver struct {
	mu       sync.Mutex
	acked    map[string]int    // payload -> acknowledgements
	by       map[string]string // payload -> instance that delivered it
	hangFrom string
	hung     map[string]bool // payloads held unanswered
	srv      *http.Server
}

func (e *echoReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	payload, inst := string(b), r.Header.Get("X-Instance")
	e.mu.Lock()
	if inst != "" && inst == e.hangFrom {
		e.hung[payload] = true
		e.mu.Unlock()
		<-r.Context().Done() // the instance is killed
		return
	}
	e.acked[payload]++
	e.by[payload] = inst
	e.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// counts returns how many payloads were acknowledged, the most times one was, and how many
// each instance delivered.
func (e *echoReceiver) counts() (n, most int, by map[string]int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	by = map[string]int{}
	for p, c := range e.acked {
		n++
		most = max(most, c)
		by[e.by[p]]++
	}
	return n, most, by
}

func (e *echoReceiver) hungCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.hung)
}

// metric reads one sample of a Prometheus text exposition (the line that starts with series).
func metric(t *testing.T, url, series string) float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			fmt.Sscan(rest, &v)
			return v
		}
	}
	return 0
}

// waitFor polls cond every 20 ms until it holds, failing the test after limit.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOutboxDelivery: two instances on one PostgreSQL database deliver the outbox to a
// receiver on loopback that is down, then up: every message arrives, each acknowledged once
// across the instances. Then an instance that holds leases is SIGKILLed in the middle of its
// deliveries: once the leases lapse, the other delivers those messages, each once.
func TestOutboxDelivery(t *testing.T) {
	env, dsn := clusterEnv(t)
	ctx := context.Background()
	db, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	recvAddr := freePort(t) // nothing listens there yet: the receiver is down
	rcv := &echoReceiver{acked: map[string]int{}, by: map[string]string{}, hung: map[string]bool{}}
	receiverURL := "http://" + recvAddr + "/hook"

	enqueue := func(prefix string, n int) []int64 {
		var msgs []rescind.OutboxMessage
		for i := range n {
			msgs = append(msgs, outbox.NewMessage(testKind, "receiver", []byte(fmt.Sprintf("%s-%02d", prefix, i)), time.Now(), time.Hour))
		}
		ids, err := db.Enqueue(ctx, msgs)
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	get := func(id int64) rescind.OutboxMessage {
		m, err := db.GetOutbox(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	// Messages written while no instance runs wait in the database.
	const n = 30
	first := enqueue("down", n)
	dir := shortTempDir(t)
	a, metricsA := startOutboxInstance(t, "a", filepath.Join(dir, "a"), receiverURL, env)
	b, metricsB := startOutboxInstance(t, "b", filepath.Join(dir, "b"), receiverURL, env)

	// With the receiver down, every message fails at least once (connection refused).
	waitFor(t, 20*time.Second, "every message attempted against the receiver that is down", func() bool {
		for _, id := range first {
			if get(id).Attempts == 0 {
				return false
			}
		}
		return true
	})
	if m := get(first[0]); m.State != rescind.OutboxPending || !strings.Contains(m.LastError, "connection refused") {
		t.Fatalf("a message while the receiver is down: %+v; want pending, its error saying the connection was refused", m)
	}

	// The receiver comes up: everything is delivered, each message acknowledged once.
	ln, err := net.Listen("tcp", recvAddr)
	if err != nil {
		t.Fatal(err)
	}
	rcv.srv = &http.Server{Handler: rcv}
	go rcv.srv.Serve(ln)
	defer rcv.srv.Close()
	up := time.Now()
	waitFor(t, 20*time.Second, "every message delivered once the receiver is up", func() bool { got, _, _ := rcv.counts(); return got == n })
	t.Logf("all %d messages delivered %v after the receiver came up", n, time.Since(up).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond) // room for a repeat to show
	got, most, by := rcv.counts()
	if got != n || most != 1 {
		t.Fatalf("the receiver acknowledged %d distinct messages, one of them %d times; want %d, each once", got, most, n)
	}
	t.Logf("delivered by instance: %v", by)
	for _, id := range first {
		if m := get(id); m.State != rescind.OutboxDelivered || len(m.Payload) != 0 {
			t.Fatalf("message %d after delivery: %+v; want delivered, payload dropped", id, m)
		}
	}
	series := `rescind_outbox_deliveries_total{kind="` + testKind + `",outcome="delivered"}`
	if d := metric(t, metricsA, series) + metric(t, metricsB, series); d != n {
		t.Fatalf("deliveries counted by the instances: %v; want %d", d, n)
	}
	retries := `rescind_outbox_deliveries_total{kind="` + testKind + `",outcome="retry"}`
	if r := metric(t, metricsA, retries) + metric(t, metricsB, retries); r < n {
		t.Fatalf("retries counted: %v; want at least %d (each message failed while the receiver was down)", r, n)
	}
	waitFor(t, 5*time.Second, "the backlog gauge at 0", func() bool {
		return metric(t, metricsA, `rescind_outbox_pending_messages{kind="`+testKind+`"}`) == 0
	})

	// B stops gracefully; A takes every new message, and the receiver holds A's requests
	// unanswered: A holds their leases when it is killed.
	b.stop()
	rcv.mu.Lock()
	rcv.hangFrom = "a"
	rcv.mu.Unlock()
	const k = 10
	second := enqueue("kill", k)
	waitFor(t, 10*time.Second, "A's requests held by the receiver", func() bool { return rcv.hungCount() == k })
	for _, id := range second {
		if m := get(id); !strings.HasPrefix(m.LeaseOwner, "a/") || m.State != rescind.OutboxPending {
			t.Fatalf("message %d before the kill: %+v; want pending, leased to A", id, m)
		}
	}
	a.kill()
	killed := time.Now()
	leaseEnd := get(second[0]).LeaseExpiresAt
	b, _ = startOutboxInstance(t, "b", filepath.Join(dir, "b"), receiverURL, env)
	waitFor(t, 20*time.Second, "A's messages delivered by B", func() bool { got, _, _ := rcv.counts(); return got == n+k })
	t.Logf("A's %d leased messages delivered by B %v after A was killed (the leases ran until %v after)", k,
		time.Since(killed).Round(time.Millisecond), leaseEnd.Sub(killed).Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	got, most, by = rcv.counts()
	if got != n+k || most != 1 {
		t.Fatalf("the receiver acknowledged %d distinct messages, one of them %d times; want %d, each once", got, most, n+k)
	}
	rcv.mu.Lock()
	for _, id := range second {
		p := fmt.Sprintf("kill-%02d", slices.Index(second, id))
		if rcv.by[p] != "b" {
			rcv.mu.Unlock()
			t.Fatalf("%s was acknowledged from %q; want B (A was killed holding it)", p, rcv.by[p])
		}
	}
	rcv.mu.Unlock()
	for _, id := range second {
		m := get(id)
		if m.State != rescind.OutboxDelivered || m.Attempts != 0 {
			t.Fatalf("message %d: %+v; want delivered with no failed attempt counted (A's attempt died with it)", id, m)
		}
		if m.FinishedAt.Before(leaseEnd) {
			t.Fatalf("message %d delivered at %v, before A's lease lapsed at %v", id, m.FinishedAt, leaseEnd)
		}
	}
	if st, err := db.OutboxStats(ctx); err != nil || len(st) != 0 {
		t.Fatalf("OutboxStats at the end: %+v, %v; want nothing pending", st, err)
	}
}

// TestOutboxSQLiteRestart: a lone SQLite instance SIGKILLed while it holds leases delivers
// their messages as soon as it is back, not when the leases (a minute here) would have lapsed:
// with SQLite no other instance can hold them.
func TestOutboxSQLiteRestart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rcv := &echoReceiver{acked: map[string]int{}, by: map[string]string{}, hung: map[string]bool{}, hangFrom: "first"}
	rcv.srv = &http.Server{Handler: rcv}
	go rcv.srv.Serve(ln)
	defer rcv.srv.Close()
	receiverURL := "http://" + ln.Addr().String() + "/hook"
	data := filepath.Join(shortTempDir(t), "d")
	env := []string{outboxLeaseEnv + "=1m"}
	first, _ := startOutboxInstance(t, "first", data, receiverURL, env)

	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(data, "rescind.db")) // beside the server, as SQLite allows
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const k = 5
	var msgs []rescind.OutboxMessage
	for i := range k {
		msgs = append(msgs, outbox.NewMessage(testKind, "receiver", []byte(fmt.Sprintf("m-%d", i)), time.Now(), time.Hour))
	}
	ids, err := db.Enqueue(ctx, msgs)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the first run's requests held by the receiver", func() bool { return rcv.hungCount() == k })
	first.kill()
	m, err := db.GetOutbox(ctx, ids[0])
	if err != nil || !strings.HasPrefix(m.LeaseOwner, "first/") || time.Until(m.LeaseExpiresAt) < 30*time.Second {
		t.Fatalf("after the kill: %+v, %v; want leased to the first run for most of a minute still", m, err)
	}
	db.Close() // the restarted server takes the database over

	restart := time.Now()
	startOutboxInstance(t, "second", data, receiverURL, env)
	waitFor(t, 15*time.Second, "the killed run's messages delivered after the restart", func() bool { got, _, _ := rcv.counts(); return got == k })
	t.Logf("%d messages leased by the killed run delivered %v after the restart began (their leases had %v to run)", k,
		time.Since(restart).Round(time.Millisecond), time.Until(m.LeaseExpiresAt).Round(time.Second))
	if _, most, by := rcv.counts(); most != 1 || by["second"] != k {
		t.Fatalf("acknowledgements: most %d for one message, by instance %v; want each once, by the restarted run", most, by)
	}
}
