package gate

import (
	"context"
	"encoding/base64"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ztlog "github.com/zt-infra/ztlog/log"
)

type metrics struct {
	decisions *prometheus.CounterVec
	refusals  *prometheus.CounterVec
	failures  *prometheus.CounterVec
	latency   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztlog_decisions_total",
			Help: "Committed decisions by effect and reason class (the part of the first reason code before the dot)."}, []string{"effect", "reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztlog_requests_refused_total",
			Help: "Requests refused before any decision (unauthenticated, malformed), by error code."}, []string{"code"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztlog_decision_failures_total",
			Help: "Decisions that failed closed (commit errors, pushback, timeouts, policy errors, panics), by kind."}, []string{"kind"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ztlog_decision_seconds",
			Help: "Time from request decoded to decision committed.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.refusals, m.failures, m.latency)
	}
	return m
}

func contextWithTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}

func leafHash(leaf []byte) string { return base64.StdEncoding.EncodeToString(ztlog.LeafHash(leaf)) }
