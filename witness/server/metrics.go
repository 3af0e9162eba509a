package server

import (
	"encoding/base64"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests     *prometheus.CounterVec
	cosignedSize *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztwitness_add_checkpoint_total",
			Help: "add-checkpoint requests by HTTP status.",
		}, []string{"status"}),
		cosignedSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ztwitness_cosigned_size",
			Help: "Size of the latest checkpoint cosigned, by log origin.",
		}, []string{"origin"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.cosignedSize = register(reg, m.cosignedSize)
	}
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector.(C)
		}
		panic(err)
	}
	return c
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
