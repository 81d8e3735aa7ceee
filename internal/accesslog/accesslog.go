// Package accesslog writes one structured log line per HTTP request, and carries the facts
// only a handler learns (the authenticated client) from that handler to the line.
//
// A line has the method, the path without its query string, the status, the duration, the
// remote address and, when a handler authenticated one, the client_id. It never has a header, a
// query string or a body, so no token, secret or code reaches it.
package accesslog

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// facts are what handlers tell the line of their request. They are written and read on the
// request's goroutine.
type facts struct {
	clientID string
}

type factsKey struct{}

// SetClientID records the client a handler authenticated, for the access log line of the
// request ctx belongs to. Outside Handler it does nothing.
func SetClientID(ctx context.Context, clientID string) {
	if f, ok := ctx.Value(factsKey{}).(*facts); ok {
		f.clientID = clientID
	}
}

// Handler returns h, logging each request to log at info level once it is answered.
func Handler(log *slog.Logger, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		f := &facts{}
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), factsKey{}, f)))
		status := sw.status
		if status == 0 {
			status = http.StatusOK // nothing written: net/http sends 200
		}
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("remote", r.RemoteAddr),
		}
		if f.clientID != "" {
			attrs = append(attrs, slog.String("client_id", f.clientID))
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// statusWriter remembers the status written. Unwrap lets http.ResponseController reach the
// connection (flushing, deadlines) through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are interim

		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
