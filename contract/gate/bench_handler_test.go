package gate_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
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
// decisions/s, entries/batch (the log's mean batch), p50-ms/p99-ms, and
// cpu-us/ecdsa-verify, a bare ECDSA P-256 verification measured the same
// way in the same run (the fixed work the figures can be read against).
// Cases: plain (no attestation) and attested (every request carries a
// runtime-context attestation, DSSE over the agent's X.509-SVID, verified
// with its signer chain: the MCP gateway's decisions). Run with
// -benchtime=1x.
func BenchmarkDecisionHandler(b *testing.B) {
	benchGC(b)
	for _, c := range []struct {
		name string
		op   func(b *testing.B, s *server) func(i int) error
	}{{"plain", inProcessDecider}, {"attested", attestedDecider}} {
		b.Run(c.name, func(b *testing.B) {
			const conc, n = 256, 10000
			var runs []stats
			for range b.N {
				for range 2 {
					s := newServer(b, options{decisionTimeout: benchDecisionTimeout, checkpointInterval: ztlog.DefaultCheckpointInterval})
					s.register(agentID, "")
					op := c.op(b, s)
					closed(b, 2000, conc, op)
					runs = append(runs, measured(b, s, func() stats { return closed(b, n, conc, op) }))
					s.stop()
				}
			}
			st := merge(runs)
			b.ReportMetric(st.batch, "entries/batch")
			reportInProcess(b, st, "decision")
		})
	}
}

// reportInProcess reports an in-process benchmark's figures per op (a
// "decision", a "result"): cpu-us/op, ops/s, p50-ms, p99-ms,
// failed-closed-503s, and cpu-us/ecdsa-verify measured now.
func reportInProcess(b *testing.B, st stats, op string) {
	b.ReportMetric(float64(st.cpu.Microseconds()), "cpu-us/"+op)
	b.ReportMetric(st.rate, op+"s/s")
	b.ReportMetric(st.pct(.50), "p50-ms")
	b.ReportMetric(st.pct(.99), "p99-ms")
	b.ReportMetric(float64(st.unavailable), "failed-closed-503s")
	b.ReportMetric(ecdsaVerifyCPU(b), "cpu-us/ecdsa-verify")
	b.ReportMetric(0, "ns/op")
}

// ecdsaVerifyCPU is the process CPU time, in µs, of one bare ECDSA P-256
// verification (the mean of 4,000, on one goroutine): the fixed work the
// benchmarks' CPU figures travel with.
func ecdsaVerifyCPU(b *testing.B) float64 {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("ztlog fixed work"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	const n = 4000
	cpu0 := processCPU()
	for range n {
		if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
			b.Fatal("bare ECDSA verification failed")
		}
	}
	return float64((processCPU() - cpu0).Microseconds()) / n
}

// inProcessDecider posts allow-eligible decisions to s's handler directly,
// as the agent over a verified mutual-TLS connection. A 503 is
// errUnavailable; any other status but 200 an error.
func inProcessDecider(b *testing.B, s *server) func(i int) error {
	return inProcessPoster(s, s.svid(agentID), "/v1/actions", func(i int) string {
		return fmt.Sprintf(`{"action":"demo.echo","resource":"demo://bench/%d"}`, i)
	})
}

// inProcessPoster posts body(i) to path on s's handler directly, as svid
// over a verified mutual-TLS connection. A 503 is errUnavailable; any
// other status but 200 an error.
func inProcessPoster(s *server, svid *x509svid.SVID, path string, body func(i int) string) func(i int) error {
	state := &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: svid.Certificates}
	h := s.svc.Handler()
	return func(i int) error {
		w := inProcess(h, state, path, body(i))
		switch w.Code {
		case http.StatusOK:
			return nil
		case http.StatusServiceUnavailable:
			return errUnavailable
		}
		return fmt.Errorf("request %d to %s: HTTP %d %s", i, path, w.Code, w.Body.Bytes())
	}
}

// inProcess posts body to path on h over the verified mutual-TLS
// connection state.
func inProcess(h http.Handler, state *tls.ConnectionState, path, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.TLS = state
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// svid issues an X.509-SVID for id from s's CA.
func (s *server) svid(id spiffeid.ID) *x509svid.SVID {
	svid, err := s.ca.IssueX509SVID(id, devca.SVIDOptions{})
	if err != nil {
		s.t.Fatal(err)
	}
	return svid
}

// attestedDecider is inProcessDecider with a runtime-context attestation
// in every request, signed by the agent's SVID and sent with its chain
// (attestation_chain), as the MCP gateway sends them. The requests are
// for one action, so one signature serves them all: the server verifies
// each in full all the same.
func attestedDecider(b *testing.B, s *server) func(i int) error {
	svid := s.svid(agentID)
	const action, resource = "demo.echo", "demo://bench/attested"
	digest, err := entry.ActionDigest(entry.Action{Actor: agentID.String(), Action: action, Resource: resource, Broker: brokerID.String()})
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	signed, err := attest.SignRuntimeContext(context.Background(), svid, digest, &attest.RuntimeContext{
		Model:    attest.Model{Provider: "anthropic", Name: "claude-sonnet-4", Version: "2025-05-14"},
		Broker:   brokerID.String(),
		Code:     attest.Code{Digest: "sha256:" + strings.Repeat("c0", 32)},
		IssuedAt: attest.FormatTime(now), ExpiresAt: attest.FormatTime(now.Add(time.Hour)),
	})
	if err != nil {
		b.Fatal(err)
	}
	chain, _ := json.Marshal(signed.ChainBase64())
	body := `{"action":"` + action + `","resource":"` + resource + `","broker":"` + brokerID.String() +
		`","attestation":` + string(signed.Envelope) + `,"attestation_chain":` + string(chain) + `}`
	post := inProcessPoster(s, svid, "/v1/actions", func(int) string { return body })
	// The first answer must be an allow on a verified attestation.
	if err := post(0); err != nil {
		b.Fatalf("attested decision: %v", err)
	}
	return post
}

// BenchmarkResults drives POST /v1/results through the service's HTTP
// handler in process, as BenchmarkDecisionHandler does /v1/actions: the
// broker reports a signed broker result (DSSE over its X.509-SVID, with
// its chain) for each of n allowed decisions, from 64 goroutines; each is
// verified, linked to its decision (read from the log) and committed.
// The decisions are made and the statements signed before the measured
// part. Metrics: cpu-us/result (process CPU per committed result),
// results/s, p50-ms/p99-ms, and cpu-us/ecdsa-verify (a bare ECDSA P-256
// verification, same run). Run with -benchtime=1x.
func BenchmarkResults(b *testing.B) {
	benchGC(b)
	const conc, warm, n = 64, 500, 4000
	var runs []stats
	for range b.N {
		for range 2 {
			s := newServer(b, options{decisionTimeout: benchDecisionTimeout, checkpointInterval: ztlog.DefaultCheckpointInterval})
			s.register(agentID, "")
			bodies := resultBodies(b, s, warm+n, conc)
			op := inProcessPoster(s, s.svid(brokerID), "/v1/results", func(i int) string { return bodies[i] })
			closed(b, warm, conc, op)
			runs = append(runs, closed(b, n, conc, func(i int) error { return op(warm + i) }))
			s.stop()
		}
	}
	reportInProcess(b, merge(runs), "result")
}

// resultBodies makes n allowed decisions (their receipts for the broker)
// and returns a POST /v1/results body for each, signed by one broker
// SVID, once a checkpoint covers them all.
func resultBodies(b *testing.B, s *server, n, conc int) []string {
	agent, broker := s.svid(agentID), s.svid(brokerID)
	answers := make([]api.ActionResponse, n)
	h := s.svc.Handler()
	state := &tls.ConnectionState{HandshakeComplete: true, PeerCertificates: agent.Certificates}
	closed(b, n, conc, func(i int) error {
		w := inProcess(h, state, "/v1/actions", fmt.Sprintf(`{"action":"demo.echo","resource":"demo://bench/result/%d"}`, i))
		if w.Code != http.StatusOK {
			return fmt.Errorf("decision %d: HTTP %d %s", i, w.Code, w.Body.Bytes())
		}
		return json.Unmarshal(w.Body.Bytes(), &answers[i])
	})
	bodies := make([]string, n)
	last := uint64(0)
	for i, d := range answers {
		rc, err := receipt.Parse(d.Receipt)
		if err != nil {
			b.Fatalf("decision %d: receipt: %v", i, err)
		}
		now := time.Now()
		empty := attest.Output{Digest: attest.Digest(nil)}
		signed, err := attest.SignBrokerResult(context.Background(), broker, d.ActionDigest, &attest.BrokerResult{
			Decision: attest.DecisionRef{Index: d.Log.Index, LeafHash: d.Log.LeafHash}, ReceiptID: rc.Claims.ID, CorrelationID: d.CorrelationID,
			Outcome: attest.OutcomeOK, Exit: &attest.Exit{Status: 0}, StartedAt: attest.FormatTime(now), FinishedAt: attest.FormatTime(now),
			Outputs: attest.Outputs{Stdout: attest.Output{Digest: attest.Digest([]byte("hi\n")), Size: 3}, Stderr: empty},
			Sandbox: attest.SandboxApplied{Kind: "landlock", Version: "landlock-abi-7", Capabilities: "sha256:" + strings.Repeat("0c", 32), Applied: []string{"command /usr/bin/echo"}},
		})
		if err != nil {
			b.Fatal(err)
		}
		chain, _ := json.Marshal(signed.ChainBase64())
		bodies[i] = `{"statement":` + string(signed.Envelope) + `,"chain":` + string(chain) + `}`
		last = max(last, d.Log.Index)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.svc.Log().Await(ctx, last); err != nil {
		b.Fatalf("await decision %d: %v", last, err)
	}
	return bodies
}
