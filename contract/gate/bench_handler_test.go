package gate_test

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/zt-infra/ztlog/internal/devca"
	ztlog "github.com/zt-infra/ztlog/log"
)

// BenchmarkDecisionHandler drives the service's HTTP handler in process,
// without TCP or TLS (each request carries the agent's certificate as a
// verified mutual-TLS connection would), from 256 goroutines, with the
// example OPA policy, Ed25519 receipts and a Tessera POSIX log as in
// BenchmarkDecisions: the decision path's own CPU and the log's, without
// the transport's (the mtls-echo figure of BenchmarkDecisions). Metrics:
// cpu-us/decision (process CPU time, user and system, per decision),
// decisions/s, entries/batch (the log's mean batch), p50-ms/p99-ms. Run with -benchtime=1x.
func BenchmarkDecisionHandler(b *testing.B) {
	benchGC(b)
	const conc, n = 256, 10000
	var runs []stats
	for range b.N {
		for range 2 {
			s := newServer(b, options{decisionTimeout: benchDecisionTimeout, checkpointInterval: ztlog.DefaultCheckpointInterval})
			s.register(agentID, "")
			op := inProcessDecider(b, s)
			closed(b, 2000, conc, op)
			runs = append(runs, measured(b, s, func() stats { return closed(b, n, conc, op) }))
			s.stop()
		}
	}
	st := merge(runs)
	b.ReportMetric(float64(st.cpu.Microseconds()), "cpu-us/decision")
	b.ReportMetric(st.rate, "decisions/s")
	b.ReportMetric(st.batch, "entries/batch")
	b.ReportMetric(st.pct(.50), "p50-ms")
	b.ReportMetric(st.pct(.99), "p99-ms")
	b.ReportMetric(float64(st.unavailable), "failed-closed-503s")
	b.ReportMetric(0, "ns/op")
}

// inProcessDecider posts allow-eligible decisions to s's handler directly,
// as the agent over a verified mutual-TLS connection. A 503 is
// errUnavailable; any other status but 200 an error.
func inProcessDecider(b *testing.B, s *server) func(i int) error {
	svid, err := s.ca.IssueX509SVID(agentID, devca.SVIDOptions{})
	if err != nil {
		b.Fatal(err)
	}
	state := &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: svid.Certificates}
	h := s.svc.Handler()
	return func(i int) error {
		r := httptest.NewRequest(http.MethodPost, "/v1/actions", strings.NewReader(fmt.Sprintf(`{"action":"demo.echo","resource":"demo://bench/%d"}`, i)))
		r.Header.Set("Content-Type", "application/json")
		r.TLS = state
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusOK:
			return nil
		case http.StatusServiceUnavailable:
			return errUnavailable
		}
		return fmt.Errorf("request %d: HTTP %d %s", i, w.Code, w.Body.Bytes())
	}
}
