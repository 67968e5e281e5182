package bot

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the Prometheus collectors the bot updates.
type Metrics struct {
	Registry       *prometheus.Registry
	Commands       *prometheus.CounterVec
	Dispatch       *prometheus.HistogramVec
	PluginRestarts *prometheus.CounterVec
	Jobs           *prometheus.CounterVec
	InFlight       prometheus.Gauge
	// AuditWriteFailures counts failed writes to the audit log (each a
	// batch of entries); any rise means entries may be missing.
	AuditWriteFailures prometheus.Counter
	// EventDeliveries counts attempts at handing a webhook delivery to a
	// plugin, by plugin and outcome: handled, retrying (it failed and is
	// tried again) or failed (it failed for good).
	EventDeliveries *prometheus.CounterVec
	// EventsPending is the number of webhook deliveries not handed to
	// their plugin yet (pending or being handed).
	EventsPending prometheus.Gauge
}

// NewMetrics registers Chima's collectors, plus the Go and process ones, on a
// fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_commands_total",
			Help: "Chat commands handled, by plugin and outcome.",
		}, []string{"plugin", "outcome"}),
		Dispatch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "chima_dispatch_duration_seconds",
			Help:    "Time from a message reaching the router to the command's end.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .05, .25, 1, 5, 30},
		}, []string{"plugin"}),
		PluginRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_plugin_restarts_total",
			Help: "Plugin processes restarted after a crash.",
		}, []string{"plugin"}),
		Jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_jobs_total",
			Help: "Durable jobs ended, by plugin, kind and state.",
		}, []string{"plugin", "kind", "state"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chima_commands_in_flight",
			Help: "Commands being handled now.",
		}),
		AuditWriteFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "chima_audit_write_failures_total",
			Help: "Failed writes to the audit log (each a batch of entries): entries may be missing.",
		}),
		EventDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "chima_event_deliveries_total",
			Help: "Attempts at handing a webhook delivery to a plugin, by plugin and outcome (handled, retrying, failed).",
		}, []string{"plugin", "outcome"}),
		EventsPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "chima_event_deliveries_pending",
			Help: "Webhook deliveries waiting to be handed to a plugin, or being handed now.",
		}),
	}
	m.Registry.MustRegister(m.Commands, m.Dispatch, m.PluginRestarts, m.Jobs, m.InFlight, m.AuditWriteFailures,
		m.EventDeliveries, m.EventsPending,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
