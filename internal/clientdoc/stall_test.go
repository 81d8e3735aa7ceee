package clientdoc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestStalledHostHoldsFewSlots: documents that stall on one host hold at most MaxPerHost of the
// fetch slots, so another host's document is still fetched (audit 16 #5: eight stalled fetches
// used to refuse every other metadata-document client); a fetch beyond a host's share waits
// QueueWait, then is ErrBusy; when every slot is taken, a fetch waits for one to be freed
// rather than failing at once. The HTTP client (Config.HTTPClient, tests only) dials the one
// loopback server whatever the host name, so that names can differ.
func TestStalledHostHoldsFewSlots(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == "stall.example" || r.URL.Query().Get("stall") != "" {
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":%q,"redirect_uris":["https://a.example/cb"]}`, "https://"+r.Host+r.URL.RequestURI())
	}))
	defer srv.Close()
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	addr := srv.Listener.Addr().String()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr) // loopback only, whatever the name
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // the test server's own certificate
	}}
	res := New(Config{HTTPClient: hc, MaxConcurrent: 4, MaxPerHost: 2, QueueWait: 2 * time.Second, Timeout: 20 * time.Second})

	// Two stall on stall.example: its share.
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { res.Resolve(context.Background(), fmt.Sprintf("https://stall.example/s%d.json", i)) })
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		res.mu.Lock()
		n := res.hosts["stall.example"]
		res.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalling fetches did not start: %d", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A third from the same host: beyond its share, busy after the brief wait.
	if _, err := res.Resolve(context.Background(), "https://stall.example/s2.json"); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third fetch from the stalling host: %v, want ErrBusy", err)
	}
	// Another host is fetched meanwhile.
	if c, err := res.Resolve(context.Background(), "https://legit.example/agent.json"); err != nil || c.ID != "https://legit.example/agent.json" {
		t.Fatalf("another host while one stalls: %+v, %v", c, err)
	}
	// Every slot taken (two hosts stalling two each): a fetch waits for one to be freed.
	for i := range 2 {
		wg.Go(func() { res.Resolve(context.Background(), fmt.Sprintf("https://other.example/s%d.json?stall=1", i)) })
	}
	deadline = time.Now().Add(5 * time.Second)
	for len(res.sem) < 4 {
		if time.Now().After(deadline) {
			t.Fatal("the second host's stalling fetches did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	done := make(chan error, 1)
	go func() {
		_, err := res.Resolve(context.Background(), "https://third.example/agent.json")
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	free() // the stalled fetches end, freeing slots
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("a fetch that waited for a slot: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a fetch waiting for a slot never ran")
	}
	wg.Wait()
}
