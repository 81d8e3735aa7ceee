package main

import (
	"encoding/json"
	"net/url"
	"path/filepath"
	"slices"
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
