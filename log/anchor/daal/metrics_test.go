package daal

import (
	"strconv"
	"strings"
	"testing"
	"time"

	vdaal "github.com/zt-infra/ztlog/verifier/daal"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The gauges follow the ledger through queued -> submitted -> confirmed ->
// verified on the simulated chain; reports and their alerts are counted.
func TestMetricsFollowTheLedger(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	m, err := NewMetrics(e.ledger, reg)
	if err != nil {
		t.Fatal(err)
	}
	a := e.anchorer(func(c *AnchorConfig) { c.MinNewEntries = 1 })
	gauge := func(state, attestation string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "ztlog_daal_anchors" {
				continue
			}
			for _, mt := range mf.GetMetric() {
				var s, at string
				for _, l := range mt.GetLabel() {
					switch l.GetName() {
					case "state":
						s = l.GetValue()
					case "attestation":
						at = l.GetValue()
					}
				}
				if s == state && at == attestation {
					return mt.GetGauge().GetValue()
				}
			}
		}
		t.Fatalf("no ztlog_daal_anchors{state=%q,attestation=%q}", state, attestation)
		return 0
	}

	cp := e.grow(3)
	e.step(a)
	if g := gauge("submitted", "pending"); g != 1 {
		t.Fatalf("submitted/pending = %v after the first step", g)
	}
	e.sim.Commit()
	e.step(a)
	rep := e.reconcile(nil)
	m.ObserveReport(rep, time.Unix(1700000000, 0))
	if gauge("confirmed", "verified") != 1 || gauge("submitted", "pending") != 0 {
		t.Fatalf("after mining and reconciling: confirmed/verified %v, submitted/pending %v", gauge("confirmed", "verified"), gauge("submitted", "pending"))
	}
	want := `
# HELP ztlog_daal_anchored_size Largest log tree size anchored, by anchor state.
# TYPE ztlog_daal_anchored_size gauge
ztlog_daal_anchored_size{state="confirmed"} ` + strconv.FormatUint(cp.Size, 10) + `
ztlog_daal_anchored_size{state="failed"} 0
ztlog_daal_anchored_size{state="queued"} 0
ztlog_daal_anchored_size{state="submitted"} 0
# HELP ztlog_daal_reconciliations_total Reconciliation reports produced.
# TYPE ztlog_daal_reconciliations_total counter
ztlog_daal_reconciliations_total 1
# HELP ztlog_daal_last_reconcile_timestamp_seconds Unix time of the last reconciliation report.
# TYPE ztlog_daal_last_reconcile_timestamp_seconds gauge
ztlog_daal_last_reconcile_timestamp_seconds 1.7e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "ztlog_daal_anchored_size", "ztlog_daal_reconciliations_total", "ztlog_daal_last_reconcile_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	m.ObserveReport(&vdaal.Report{Alerts: []vdaal.Alert{{Kind: "anchor_stuck"}, {Kind: "split_view"}, {Kind: "anchor_stuck"}}}, time.Now())
	if n := testutil.ToFloat64(m.alerts.WithLabelValues("anchor_stuck")); n != 2 {
		t.Fatalf("anchor_stuck alerts = %v, want 2", n)
	}
}
