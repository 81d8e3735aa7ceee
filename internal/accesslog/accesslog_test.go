package accesslog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestHandler(t *testing.T) {
	cases := []struct {
		name       string
		handler    http.HandlerFunc
		wantStatus int
		wantClient string
	}{
		{"status written", func(w http.ResponseWriter, r *http.Request) {
			SetClientID(r.Context(), "c1")
			w.WriteHeader(http.StatusTeapot)
		}, http.StatusTeapot, "c1"},
		{"body only means 200", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("x")) }, http.StatusOK, ""},
		{"nothing written means 200", func(http.ResponseWriter, *http.Request) {}, http.StatusOK, ""},
		{"interim status is not the status", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusUnauthorized)
		}, http.StatusUnauthorized, ""},
		{"flushing through the wrapper", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusAccepted)
			if err := http.NewResponseController(w).Flush(); err != nil {
				t.Errorf("Flush through the access log: %v", err)
			}
		}, http.StatusAccepted, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			h := Handler(slog.New(slog.NewJSONHandler(&buf, nil)), tc.handler)
			req := httptest.NewRequest("POST", "/oauth2/token?code=secret-code", nil)
			req.RemoteAddr = "192.0.2.7:4711"
			h.ServeHTTP(httptest.NewRecorder(), req)
			var got map[string]any
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%v: %s", err, buf.String())
			}
			if got["msg"] != "request" || got["level"] != "INFO" || got["method"] != "POST" || got["path"] != "/oauth2/token" ||
				got["status"] != float64(tc.wantStatus) || got["remote"] != "192.0.2.7:4711" || got["duration_ms"] == nil {
				t.Fatalf("line = %s", buf.String())
			}
			if id, _ := got["client_id"].(string); id != tc.wantClient {
				t.Fatalf("client_id = %q, want %q", id, tc.wantClient)
			}
			if bytes.Contains(buf.Bytes(), []byte("secret-code")) {
				t.Fatal("the query string was logged")
			}
		})
	}
}

// TestSetClientIDOutsideHandler: without the middleware, SetClientID is harmless.
func TestSetClientIDOutsideHandler(t *testing.T) {
	SetClientID(httptest.NewRequest("GET", "/", nil).Context(), "c")
}
