package daal

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// Metrics exposes the anchorer to Prometheus. The anchor gauges are read
// from the ledger at each scrape (the ledger is the truth; nothing is kept
// twice); reconciliations and their alerts are counted as reported.
//
//	ztlog_daal_anchors{state,attestation}      anchors in the ledger
//	ztlog_daal_anchored_size{state}             largest tree size anchored, by state
//	ztlog_daal_reconciliations_total            reconciliation reports
//	ztlog_daal_alerts_total{kind}               alerts raised, by kind
//	ztlog_daal_last_reconcile_timestamp_seconds when the last report came
type Metrics struct {
	ledger        *Ledger
	anchors       *prometheus.Desc
	size          *prometheus.Desc
	reconciles    prometheus.Counter
	alerts        *prometheus.CounterVec
	lastReconcile prometheus.Gauge
}

// NewMetrics registers the anchorer's metrics for ledger with reg.
func NewMetrics(ledger *Ledger, reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		ledger:  ledger,
		anchors: prometheus.NewDesc("ztlog_daal_anchors", "Anchors in the ledger, by state and attestation.", []string{"state", "attestation"}, nil),
		size:    prometheus.NewDesc("ztlog_daal_anchored_size", "Largest log tree size anchored, by anchor state.", []string{"state"}, nil),
		reconciles: prometheus.NewCounter(prometheus.CounterOpts{Name: "ztlog_daal_reconciliations_total",
			Help: "Reconciliation reports produced."}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztlog_daal_alerts_total",
			Help: "Reconciliation alerts raised, by kind (anchor_failed, split_view, ...)."}, []string{"kind"}),
		lastReconcile: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ztlog_daal_last_reconcile_timestamp_seconds",
			Help: "Unix time of the last reconciliation report."}),
	}
	for _, c := range []prometheus.Collector{m, m.reconciles, m.alerts, m.lastReconcile} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// ObserveReport counts a reconciliation report and its alerts.
func (m *Metrics) ObserveReport(rep *vdaal.Report, at time.Time) {
	m.reconciles.Inc()
	m.lastReconcile.Set(float64(at.UnixNano()) / 1e9)
	for _, a := range rep.Alerts {
		m.alerts.WithLabelValues(a.Kind).Inc()
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.anchors
	ch <- m.size
}

// Collect implements prometheus.Collector: the ledger's anchors now.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		s vdaal.State
		a vdaal.Attestation
	}
	counts := map[key]int{}
	largest := map[vdaal.State]uint64{}
	for _, a := range m.ledger.Anchors() {
		counts[key{a.State, a.Attestation}]++
		largest[a.State] = max(largest[a.State], a.Size)
	}
	for _, s := range []vdaal.State{vdaal.Queued, vdaal.Submitted, vdaal.Confirmed, vdaal.Failed} {
		for _, at := range []vdaal.Attestation{vdaal.Pending, vdaal.Verified, vdaal.AttestFailed} {
			ch <- prometheus.MustNewConstMetric(m.anchors, prometheus.GaugeValue, float64(counts[key{s, at}]), string(s), string(at))
		}
		ch <- prometheus.MustNewConstMetric(m.size, prometheus.GaugeValue, float64(largest[s]), string(s))
	}
}
