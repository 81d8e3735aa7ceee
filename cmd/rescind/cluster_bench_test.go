package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
)

// BenchmarkCrossInstanceRevocation measures revocation-to-refusal latency across instances:
// a token is revoked through instance A, and instance B is asked again and again until it
// refuses the token. Each iteration reports the time from A's 200 to B's first refusal; p50
// and p99 are reported as metrics. Run:
//
//	go test -run x -bench CrossInstance -benchtime 500x ./cmd/rescind/
func BenchmarkCrossInstanceRevocation(b *testing.B) {
	env, _ := clusterEnv(b)
	dir := b.TempDir()
	a := startServer(b, filepath.Join(dir, "a"), env)
	s := startServer(b, filepath.Join(dir, "b"), env)
	var cl admin.ClientInfo
	json.Unmarshal([]byte(cli(b, nil, "client", "create", "--data-dir", a.dataDir, "--name", "bench")), &cl)
	id, sec := cl.ClientID, cl.ClientSecret

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tok := a.token(id, sec)
		if !s.active(id, sec, tok) {
			b.Fatal("token not active on B")
		}
		b.StartTimer()
		code, _ := a.post("/oauth2/revoke", id, sec, url.Values{"token": {tok}})
		if code != 200 {
			b.Fatalf("revoke: %d", code)
		}
		acked := time.Now()
		for s.active(id, sec, tok) {
			if time.Since(acked) > 10*time.Second {
				b.Fatal("B still accepts the token 10 s after A acknowledged its revocation")
			}
		}
		lat = append(lat, time.Since(acked))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// TestClusterEventsReachEveryInstance: a subscriber of instance B's event stream receives a
// revocation committed through instance A at once, not at its next keep-alive (15 s): the bound
// asserted here (5 s) is loose, the measured figure is in the README (BenchmarkCrossInstanceEvents).
func TestClusterEventsReachEveryInstance(t *testing.T) {
	env, _ := clusterEnv(t)
	dir := shortTempDir(t)
	a := startServer(t, filepath.Join(dir, "a"), env)
	b := startServer(t, filepath.Join(dir, "b"), env)
	var cl, rs admin.ClientInfo
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", a.dataDir, "--name", "app")), &cl)
	json.Unmarshal([]byte(cli(t, nil, "client", "create", "--data-dir", a.dataDir, "--name", "rs", "--resource-server")), &rs)
	events := openEvents(t, b, rs)
	for i := range 3 {
		tok := a.token(cl.ClientID, cl.ClientSecret)
		_, body := a.post("/oauth2/introspect", cl.ClientID, cl.ClientSecret, url.Values{"token": {tok}})
		var in struct {
			Jti string `json:"jti"`
		}
		json.Unmarshal(body, &in)
		a.revoke(cl.ClientID, cl.ClientSecret, tok)
		acked := time.Now()
		select {
		case e := <-events:
			if e["jti"] != in.Jti {
				t.Fatalf("event %d on B: %v; want jti %s", i, e, in.Jti)
			}
			t.Logf("revocation %d committed on A reached B's subscriber %v after A's 200", i, time.Since(acked).Round(time.Microsecond))
		case <-time.After(5 * time.Second):
			t.Fatalf("revocation %d on A did not reach B's event stream within 5 s", i)
		}
	}
}

// BenchmarkCrossInstanceEvents measures the propagation of push events across instances: a token
// is revoked through instance A, and each iteration reports the time from sending the revocation
// to A until its event arrives on a stream of instance B (so it includes A's durable commit; the
// event often arrives before A's 200 does), and, for comparison, until A's 200. Run:
//
//	go test -run x -bench CrossInstanceEvents -benchtime 500x ./cmd/rescind/
func BenchmarkCrossInstanceEvents(b *testing.B) {
	env, _ := clusterEnv(b)
	dir := b.TempDir()
	a := startServer(b, filepath.Join(dir, "a"), env)
	s := startServer(b, filepath.Join(dir, "b"), env)
	var cl, rs admin.ClientInfo
	json.Unmarshal([]byte(cli(b, nil, "client", "create", "--data-dir", a.dataDir, "--name", "bench")), &cl)
	json.Unmarshal([]byte(cli(b, nil, "client", "create", "--data-dir", a.dataDir, "--name", "rs", "--resource-server")), &rs)
	req, _ := http.NewRequest("GET", s.url+"/oauth2/revocations/events", nil)
	req.SetBasicAuth(rs.ClientID, rs.ClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		b.Fatalf("events: %v %v", res, err)
	}
	defer res.Body.Close()
	lines := make(chan time.Time, 1000)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				lines <- time.Now()
			}
		}
	}()
	lat := make([]time.Duration, 0, b.N)
	ack := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tok := a.token(cl.ClientID, cl.ClientSecret)
		b.StartTimer()
		start := time.Now()
		code, _ := a.post("/oauth2/revoke", cl.ClientID, cl.ClientSecret, url.Values{"token": {tok}})
		ack = append(ack, time.Since(start))
		if code != 200 {
			b.Fatalf("revoke: %d", code)
		}
		select {
		case got := <-lines:
			lat = append(lat, got.Sub(start))
		case <-time.After(10 * time.Second):
			b.Fatal("no event on B")
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	slices.Sort(ack)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(ack[len(ack)/2].Microseconds())/1000, "ack-p50-ms")
}

// openEvents subscribes to srv's event stream as client c and returns its events' data.
func openEvents(t *testing.T, srv *server, c admin.ClientInfo) <-chan map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.url+"/oauth2/revocations/events", nil)
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("events: %v %v", res, err)
	}
	t.Cleanup(func() { res.Body.Close() })
	out := make(chan map[string]any, 100)
	sc := bufio.NewScanner(res.Body)
	if !sc.Scan() { // "retry: ...": the subscription is registered before the headers are sent
		t.Fatal("event stream ended")
	}
	go func() {
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var e map[string]any
				json.Unmarshal([]byte(data), &e)
				out <- e
			}
		}
	}()
	return out
}
