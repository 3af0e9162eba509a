package log

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	appends    *prometheus.CounterVec
	sequencing prometheus.Histogram
	batchSize  prometheus.Histogram

	integrated    atomic.Uint64
	publishedSize atomic.Uint64
	publishedSeen atomic.Int64 // unix nanos when the latest checkpoint was first seen
}

func newMetrics(reg prometheus.Registerer, l *Log) *metrics {
	m := &metrics{
		appends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztlog_log_appends_total",
			Help: "Append calls by outcome (ok, pushback, storage_error, too_large, invalid, closed, abandoned).",
		}, []string{"result"}),
		sequencing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ztlog_log_sequencing_seconds",
			Help:    "Time from Append to the entry being durably sequenced.",
			Buckets: []float64{.0005, .001, .002, .003, .005, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ztlog_log_batch_entries",
			Help:    "Entries per batch handed to storage by the group committer.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.appends, m.sequencing, m.batchSize,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ztlog_log_integrated_size",
			Help: "Tree size integrated by this process (sequenced, not necessarily published).",
		}, func() float64 { return float64(m.integrated.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ztlog_log_published_size",
			Help: "Tree size of the latest published checkpoint.",
		}, func() float64 { return float64(m.publishedSize.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ztlog_log_checkpoint_age_seconds",
			Help: "Seconds since the latest published checkpoint was first seen (-1 before the first).",
		}, func() float64 {
			seen := m.publishedSeen.Load()
			if seen == 0 {
				return -1
			}
			return time.Since(time.Unix(0, seen)).Seconds()
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ztlog_log_pending_entries",
			Help: "Entries waiting for the group committer.",
		}, func() float64 {
			l.mu.Lock()
			defer l.mu.Unlock()
			return float64(len(l.pending))
		}),
	)
	return m
}

func (m *metrics) setIntegrated(size uint64) {
	for {
		old := m.integrated.Load()
		if size <= old || m.integrated.CompareAndSwap(old, size) {
			return
		}
	}
}

func (m *metrics) setPublished(cp *Checkpoint) {
	m.publishedSize.Store(cp.Size)
	m.publishedSeen.Store(cp.Seen.UnixNano())
}
