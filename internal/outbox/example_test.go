package outbox_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/outbox"
	"github.com/rescind/rescind/store/sqlite"
)

// A message of kind "greeting" for one receiver, delivered by an HTTP POST: the receiver is
// down for the first attempt, so the message is retried, then delivered.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "outbox-example")
	defer os.RemoveAll(dir)
	store, err := sqlite.Open(ctx, filepath.Join(dir, "rescind.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()

	// The receiver: down at first, then accepting.
	got := make(chan string, 1)
	var attempts atomic.Int32
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		got <- string(b)
	}))
	defer rp.Close()

	d, err := outbox.New(outbox.Config{Store: store, PollInterval: 20 * time.Millisecond,
		MinBackoff: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	// What is secret or may change (the endpoint, credentials) is looked up at delivery time.
	d.Handle("greeting", outbox.NewHTTPDeliverer(outbox.HTTPConfig{
		AllowLoopback: true, // the receiver is on loopback: development and tests only
		Prepare: func(ctx context.Context, m rescind.OutboxMessage) (outbox.HTTPRequest, error) {
			return outbox.HTTPRequest{URL: rp.URL + "/receive/" + m.Key, ContentType: "text/plain", Body: m.Payload}, nil
		},
	}))
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{})
	go func() { d.Run(runCtx); close(done) }()

	ids, err := d.Enqueue(ctx, outbox.NewMessage("greeting", "rp-1", []byte("hello"), time.Now(), time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	select {
	case body := <-got:
		fmt.Println("received:", body)
	case <-time.After(10 * time.Second):
		fmt.Println("not delivered")
	}
	stop()
	<-done
	m, _ := store.GetOutbox(ctx, ids[0])
	fmt.Println("state:", m.State, "after", m.Attempts, "failed attempt")
	// Output:
	// received: hello
	// state: delivered after 1 failed attempt
}
