package outbox_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rescind/rescind"
	"github.com/rescind/rescind/internal/outbox"
	"github.com/rescind/rescind/store/sqlite"
)

// BenchmarkEnqueueToReceiver measures one message's way on the SQLite store: Enqueue (a
// committed, synced transaction), the wake, the claim, the POST to a receiver on loopback, until
// the receiver has the body. It is the bound a feature built on the outbox can state for the
// instance that made the change (others find the message at their next poll).
func BenchmarkEnqueueToReceiver(b *testing.B) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "rescind.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	got := make(chan struct{}, 1)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		got <- struct{}{}
	}))
	defer rp.Close()
	d, err := outbox.New(outbox.Config{Store: store, PollInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	d.Handle("bench", outbox.NewHTTPDeliverer(outbox.HTTPConfig{AllowLoopback: true,
		Prepare: func(_ context.Context, m rescind.OutboxMessage) (outbox.HTTPRequest, error) {
			return outbox.HTTPRequest{URL: rp.URL, ContentType: "text/plain", Body: m.Payload}, nil
		}}))
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { d.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	payload := []byte("logout_token=eyJhbGciOiJFUzI1NiJ9.e30.sig")
	b.ResetTimer()
	for range b.N {
		if _, err := d.Enqueue(ctx, outbox.NewMessage("bench", "rp", payload, time.Now(), time.Hour)); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			b.Fatal("not delivered within 10 s")
		}
	}
}
