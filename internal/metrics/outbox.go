package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Outbox are the collectors of the durable outbox (package internal/outbox). The backlog
// gauges describe the shared outbox, so every instance of a cluster reports the same values
// (aggregate them with max, not sum); the delivery counters are this instance's own.
type Outbox struct {
	pending    *prometheus.GaugeVec
	oldest     *prometheus.GaugeVec
	deliveries *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

// Outcomes of a delivery attempt, the values of the outcome label.
const (
	// OutcomeDelivered: the receiver accepted the message.
	OutcomeDelivered = "delivered"
	// OutcomeRetry: the attempt failed and the message will be tried again.
	OutcomeRetry = "retry"
	// OutcomeDeferred: the deliverer said "not now" (a paused receiver); no attempt counted.
	OutcomeDeferred = "deferred"
	// OutcomeFailed: the message was given up (a permanent failure, or its retry deadline passed).
	OutcomeFailed = "failed"
	// OutcomeInterrupted: the instance stopped during the attempt and released the message.
	OutcomeInterrupted = "interrupted"
	// OutcomeLeaseLost: the attempt ended after another instance had taken the message over,
	// so its result was not recorded (the receiver may see the message twice).
	OutcomeLeaseLost = "lease_lost"
)

// NewOutbox registers the outbox's collectors with reg.
func NewOutbox(reg prometheus.Registerer) *Outbox {
	o := &Outbox{
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rescind_outbox_pending_messages", Help: "Outbox messages waiting to be delivered, by kind (the shared outbox).",
		}, []string{"kind"}),
		oldest: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "rescind_outbox_oldest_pending_age_seconds",
			Help: "Age of the oldest outbox message waiting to be delivered, by kind: the delivery lag (0 when none waits).",
		}, []string{"kind"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rescind_outbox_deliveries_total", Help: "Outbox delivery attempts made by this instance, by kind and outcome.",
		}, []string{"kind", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "rescind_outbox_delivery_duration_seconds", Help: "Duration of outbox delivery attempts, by kind.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"kind"}),
	}
	reg.MustRegister(o.pending, o.oldest, o.deliveries, o.duration)
	return o
}

// Backlog records the pending messages of kind and the age of the oldest. A nil *Outbox
// records nothing.
func (o *Outbox) Backlog(kind string, pending int64, oldest time.Duration) {
	if o == nil {
		return
	}
	o.pending.WithLabelValues(kind).Set(float64(pending))
	o.oldest.WithLabelValues(kind).Set(max(0, oldest.Seconds()))
}

// Delivery counts one delivery attempt of a message of kind that took d and ended in outcome
// (one of the Outcome constants). A nil *Outbox records nothing.
func (o *Outbox) Delivery(kind, outcome string, d time.Duration) {
	if o == nil {
		return
	}
	o.deliveries.WithLabelValues(kind, outcome).Inc()
	o.duration.WithLabelValues(kind).Observe(d.Seconds())
}
