package cli

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/zt-infra/ztlog/internal/netguard"
)

// NewRegistry is a metrics registry with the Go runtime and process
// collectors.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ServeOps serves the operator endpoints on addr until ctx ends:
// GET /metrics (reg, Prometheus text format) and GET /healthz, which
// answers 200 with status as JSON while health returns nil, and 503 with
// the error otherwise. It returns the address it listens on.
func ServeOps(ctx context.Context, addr string, reg *prometheus.Registry, health func() (status any, err error)) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		status, err := health()
		body := map[string]any{"status": "ok", "detail": status}
		code := http.StatusOK
		if err != nil {
			body["status"], body["error"], code = "unhealthy", err.Error(), http.StatusServiceUnavailable
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(body)
	})
	srv := netguard.Harden(&http.Server{Handler: mux, WriteTimeout: 30 * time.Second})
	go srv.Serve(netguard.Wrap(ln, netguard.Options{}))
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	return ln.Addr(), nil
}
