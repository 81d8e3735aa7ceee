// Package metrics defines the server's Prometheus metrics. It uses a registry passed in by the
// caller, never the global one.
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the server's collectors.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	tokensIssued   prometheus.Counter
	tokensRevoked  prometheus.Counter
	commitBatch    prometheus.Histogram
	janitorDeleted prometheus.Counter
}

// New registers the collectors with reg. stateSize reports the number of in-memory revocation
// records.
func New(reg prometheus.Registerer, stateSize func() float64) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rescind_http_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rescind_http_request_duration_seconds", Help: "HTTP request latency by endpoint.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"endpoint"}),
		tokensIssued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rescind_tokens_issued_total", Help: "Access tokens issued.",
		}),
		tokensRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rescind_tokens_revoked_total", Help: "Revocation records committed.",
		}),
		commitBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "rescind_revocation_commit_batch_size", Help: "Revocation records per group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		}),
		janitorDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rescind_janitor_deleted_total", Help: "Expired revocation records deleted by the janitor.",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.tokensIssued, m.tokensRevoked, m.commitBatch, m.janitorDeleted,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rescind_revocation_state_records", Help: "Revocation records held in memory.",
		}, stateSize))
	return m
}

// TokenIssued counts an issued access token.
func (m *Metrics) TokenIssued() { m.tokensIssued.Inc() }

// Committed records a group commit of n revocation records.
func (m *Metrics) Committed(n int) {
	m.tokensRevoked.Add(float64(n))
	m.commitBatch.Observe(float64(n))
}

// JanitorDeleted counts records deleted by the janitor.
func (m *Metrics) JanitorDeleted(n int64) { m.janitorDeleted.Add(float64(n)) }

// Instrument wraps h so that its requests are counted and timed under the label endpoint.
func (m *Metrics) Instrument(endpoint string, h http.Handler) http.Handler {
	obs := m.duration.WithLabelValues(endpoint)
	// The counter of each status code, looked up once: a label lookup hashes the label values
	// on every call, which was a measurable share of a request's CPU (issue 20).
	var counters [600]atomic.Pointer[prometheus.Counter]
	counter := func(code int) prometheus.Counter {
		if code < 0 || code >= len(counters) {
			return m.requests.WithLabelValues(endpoint, strconv.Itoa(code))
		}
		if c := counters[code].Load(); c != nil {
			return *c
		}
		c := m.requests.WithLabelValues(endpoint, strconv.Itoa(code))
		counters[code].Store(&c)
		return c
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		obs.Observe(time.Since(start).Seconds())
		counter(sw.status).Inc()
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
