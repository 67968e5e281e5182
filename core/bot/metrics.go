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
	}
	m.Registry.MustRegister(m.Commands, m.Dispatch, m.PluginRestarts, m.Jobs, m.InFlight, m.AuditWriteFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
