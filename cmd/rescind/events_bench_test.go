package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rescind/rescind/admin"
)

// BenchmarkRevocationWithIdleStreams measures the revocation endpoint's latency (request to 200
// over loopback, one revocation at a time, durable before the 200) on the real server with no
// event stream open, and with 400 streams (50 clients × 8) held by another process (as resource
// servers would hold them): idle ones (their clients are not resource servers, so no revocation
// here is theirs to see), and ones receiving every event (resource servers without registered
// resources):
//
//	go test -run x -bench RevocationWithIdleStreams -benchtime 1000x ./cmd/rescind/
func BenchmarkRevocationWithIdleStreams(b *testing.B) {
	for _, c := range []struct {
		name      string
		streams   int
		receiving bool // the subscribers are resource servers, sent every revocation
	}{{"streams=0", 0, false}, {"streams=400-idle", 400, false}, {"streams=400-receiving", 400, true}} {
		streams := c.streams
		b.Run(c.name, func(b *testing.B) {
			data := filepath.Join(shortTempDir(b), "d")
			srv := startServer(b, data, nil)
			adm := admin.NewUnixClient(filepath.Join(data, "admin.sock"))
			ctx := context.Background()
			app, err := adm.CreateClient(ctx, admin.CreateClientRequest{Name: "app"})
			if err != nil {
				b.Fatal(err)
			}
			var subscribers []admin.ClientInfo
			for i := range 50 {
				sub, err := adm.CreateClient(ctx, admin.CreateClientRequest{Name: fmt.Sprint("rs", i), ResourceServer: c.receiving})
				if err != nil {
					b.Fatal(err)
				}
				subscribers = append(subscribers, sub)
			}
			if streams > 0 {
				holdStreams(b, srv, subscribers, streams)
			}
			toks := make([]string, b.N)
			for i := range toks {
				toks[i] = srv.token(app.ClientID, app.ClientSecret)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				start := time.Now()
				srv.revoke(app.ClientID, app.ClientSecret, toks[i])
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// holdStreams opens n event streams (8 per subscriber) from a process of their own
// (testdata/streamholder) that reads and discards their events until the benchmark ends.
func holdStreams(b *testing.B, srv *server, subscribers []admin.ClientInfo, n int) {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "streamholder")
	if out, err := exec.Command("go", "build", "-o", bin, "./testdata/streamholder").CombinedOutput(); err != nil {
		b.Fatalf("building streamholder: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { in.Close(); cmd.Wait() })
	for i := range n {
		c := subscribers[i/8]
		fmt.Fprintf(in, "%s/oauth2/revocations/events %s %s\n", srv.url, c.ClientID, c.ClientSecret)
	}
	fmt.Fprintln(in)
	line, _ := bufio.NewReader(out).ReadString('\n')
	if line != "ready\n" {
		b.Fatalf("streamholder: %q", line)
	}
}
