package metrics

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// requestCount is the value of rescind_http_requests_total for endpoint and code in reg.
func requestCount(t *testing.T, reg *prometheus.Registry, endpoint, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "rescind_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["endpoint"] == endpoint && labels["code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestInstrumentCountsEachStatus counts requests by endpoint and status code, those whose
// counter is looked up once (below 600) and the others alike.
func TestInstrumentCountsEachStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, func() float64 { return 0 })
	h := m.Instrument("token", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := r.URL.Query().Get("code"); c != "" {
			n, _ := strconv.Atoi(c)
			w.WriteHeader(n)
		}
	}))
	other := m.Instrument("introspect", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	for _, q := range []string{"", "", "?code=200", "?code=404", "?code=799", "?code=799"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/"+q, nil))
	}
	other.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	for _, c := range []struct {
		endpoint, code string
		want           float64
	}{{"token", "200", 3}, {"token", "404", 1}, {"token", "799", 2}, {"introspect", "200", 1}, {"introspect", "404", 0}} {
		if got := requestCount(t, reg, c.endpoint, c.code); got != c.want {
			t.Errorf("%s %s: %v requests, want %v", c.endpoint, c.code, got, c.want)
		}
	}
}
