package outbox

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the outbox's Prometheus collectors.
type metrics struct {
	sent      *prometheus.CounterVec // adapter, op
	failed    *prometheus.CounterVec // adapter, reason
	retried   *prometheus.CounterVec // adapter, reason
	coalesced *prometheus.CounterVec // adapter
	reshaped  *prometheus.CounterVec // adapter, how
	pending   *prometheus.GaugeVec   // adapter
}

// Reasons in chima_outbox_failed_total.
const (
	reasonFull      = "full"      // over MaxPending: refused at once
	reasonClosed    = "closed"    // after Close
	reasonPermanent = "permanent" // the service refused it for good
	reasonRetries   = "retries"   // still failing after MaxAttempts
	reasonCanceled  = "canceled"  // the sender gave up (its context ended)
	reasonShutdown  = "shutdown"  // Close's deadline came first
)

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_outbox_sent_total",
			Help: "Chat messages posted (op=send, one per part of a split message) and edited (op=update) through the outbox.",
		}, []string{"adapter", "op"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_outbox_failed_total",
			Help: "Chat messages and edits the outbox could not deliver, by reason: full, closed, permanent, retries, canceled, shutdown.",
		}, []string{"adapter", "reason"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_outbox_retries_total",
			Help: "Deliveries retried, by reason: rate_limited (the service said Retry-After) or transient.",
		}, []string{"adapter", "reason"}),
		coalesced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_outbox_coalesced_total",
			Help: "Edits of a message replaced by a later edit of it before they were sent.",
		}, []string{"adapter"}),
		reshaped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_outbox_reshaped_total",
			Help: "Messages too long for their service: split into several (how=split) or, for edits, truncated (how=truncated).",
		}, []string{"adapter", "how"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "chima_outbox_pending",
			Help: "Messages and edits waiting in the outbox, or being delivered.",
		}, []string{"adapter"}),
	}
	if r != nil {
		m.sent = register(r, m.sent)
		m.failed = register(r, m.failed)
		m.retried = register(r, m.retried)
		m.coalesced = register(r, m.coalesced)
		m.reshaped = register(r, m.reshaped)
		m.pending = register(r, m.pending)
	}
	return m
}

// register registers c on r, or returns the collector registered there
// already under its name (a second outbox on one registry shares it).
func register[C prometheus.Collector](r prometheus.Registerer, c C) C {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic(err) // a programming error: two different collectors, one name
	}
	return c
}
