package schedule

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Run outcomes, the values of the outcome label.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
)

// Metrics are the scheduler's Prometheus metrics, per rule.
type Metrics struct {
	runs          *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	signals       *prometheus.CounterVec
	repeats       *prometheus.CounterVec
	errors        *prometheus.CounterVec
	gap           *prometheus.GaugeVec
	lastSuccess   *prometheus.GaugeVec
	healthy       *prometheus.GaugeVec
	skipped       *prometheus.CounterVec
	leases        prometheus.Gauge
	replicas      prometheus.Gauge
	windowsByRule *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (nil: not
// registered, for tests and backtests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_rule_runs_total", Help: "Scheduled runs of a rule, by outcome.",
		}, []string{"rule", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "offtrail_rule_run_duration_seconds", Help: "Duration of a rule's runs, catch-up included.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"rule"}),
		signals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_signals_written_total", Help: "Signals newly written (ids already present are not counted).",
		}, []string{"rule"}),
		repeats: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_signal_repeats_skipped_total", Help: "Signals of an earlier written window that a later, overlapping one did not build again (same id).",
		}, []string{"rule"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_rule_errors_total", Help: "Failed attempts of a rule (each retry counts).",
		}, []string{"rule"}),
		gap: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "offtrail_rule_gap_seconds", Help: "How far the rule's checkpoint lags behind the window it should have reached.",
		}, []string{"rule"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "offtrail_rule_last_success_timestamp_seconds", Help: "Wall time of the rule's last successful run.",
		}, []string{"rule"}),
		healthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "offtrail_rule_healthy", Help: "1 when the rule's last run succeeded, 0 when it failed.",
		}, []string{"rule"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_rule_windows_given_up_total", Help: "Missed windows older than max_gap that were never evaluated.",
		}, []string{"rule"}),
		windowsByRule: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "offtrail_rule_windows_evaluated_total", Help: "Windows evaluated successfully.",
		}, []string{"rule"}),
		leases: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offtrail_leases_held", Help: "Rule leases this replica holds.",
		}),
		replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "offtrail_replicas_live", Help: "Replicas with a live heartbeat, as this replica last saw them.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.duration, m.signals, m.repeats, m.errors, m.gap, m.lastSuccess, m.healthy,
			m.skipped, m.windowsByRule, m.leases, m.replicas)
	}
	return m
}

// forget drops a removed rule's series.
func (m *Metrics) forget(rule string) {
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.runs, m.duration, m.signals, m.repeats, m.errors, m.gap, m.lastSuccess, m.healthy, m.skipped, m.windowsByRule,
	} {
		v.DeletePartialMatch(prometheus.Labels{"rule": rule})
	}
}
