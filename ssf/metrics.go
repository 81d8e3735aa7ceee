package ssf

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rescind/rescind"
)

// RegisterMetrics registers the transmitter's gauges, read from the store at each scrape:
// rescind_ssf_pending_events (events appended to streams and not yet acknowledged: the backlog)
// and rescind_ssf_oldest_pending_event_age_seconds (the lag). The outbox's own metrics cover
// pushes (kind ssf_push) and the fan-out (kind ssf_signal).
func RegisterMetrics(reg prometheus.Registerer, store rescind.Store) {
	backlog := func() (int64, time.Time) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, oldest, err := store.SSFBacklog(ctx)
		if err != nil {
			return 0, time.Time{}
		}
		return n, oldest
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rescind_ssf_pending_events",
			Help: "Shared Signals events appended to streams and not yet acknowledged by their receivers."},
			func() float64 { n, _ := backlog(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rescind_ssf_oldest_pending_event_age_seconds",
			Help: "Age of the oldest Shared Signals event not yet acknowledged (0 if none): the delivery lag."},
			func() float64 {
				_, oldest := backlog()
				if oldest.IsZero() {
					return 0
				}
				return time.Since(oldest).Seconds()
			}),
	)
}
