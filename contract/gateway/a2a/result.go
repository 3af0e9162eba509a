package a2a

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"net/http"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/entry"
)

// JSON-RPC error codes of the gate's answers. The gate's own are in the
// JSON-RPC server-error range and say why nothing was forwarded.
const (
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	// CodeDenied: ztlog committed a deny; the message was not forwarded.
	CodeDenied = -32040
	// CodeNoDecision: no verified decision (ztlog unreachable, not
	// committing, or an answer that does not verify); not forwarded.
	CodeNoDecision = -32041
	// CodeUpstream: the agent could not be reached.
	CodeUpstream = -32042
)

// writeError answers a JSON-RPC error: a JSON body, or for a stream
// request a text/event-stream with the error as its one event (as an A2A
// server reports stream errors).
func writeError(w http.ResponseWriter, id json.RawMessage, stream bool, code int, msg string, data any) {
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	e := map[string]any{"code": code, "message": msg}
	if data != nil {
		e["data"] = data
	}
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": e})
	if stream {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("data: "))
		w.Write(b)
		w.Write([]byte("\n\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(append(b, '\n'))
}

// maxKept is how much of an answer the gate keeps to tell ok from failed.
const maxKept = 1 << 20

// digestWriter passes an answer to the client, digesting all of it and
// keeping the first maxKept bytes.
type digestWriter struct {
	w    http.ResponseWriter
	h    hash.Hash
	n    int64
	kept bytes.Buffer
}

func (d *digestWriter) Write(p []byte) (int, error) {
	if d.h == nil {
		d.h = sha256.New()
	}
	d.h.Write(p)
	d.n += int64(len(p))
	if room := maxKept - d.kept.Len(); room > 0 {
		d.kept.Write(p[:min(room, len(p))])
	}
	return d.w.Write(p)
}

func (d *digestWriter) output() attest.Output {
	if d.h == nil {
		return attest.Output{Digest: entry.Digest(nil)}
	}
	return attest.Output{Digest: "sha256:" + hex.EncodeToString(d.h.Sum(nil)), Size: d.n}
}

// rpcFailed reports whether an answer (a JSON-RPC response, or an event
// stream of them) carries a JSON-RPC error.
func rpcFailed(body []byte) bool {
	hasError := func(b []byte) bool {
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return false
		}
		e, ok := m["error"]
		return ok && string(e) != "null"
	}
	trimmed := bytes.TrimSpace(body)
	if bytes.HasPrefix(trimmed, []byte("{")) {
		return hasError(trimmed)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), maxKept)
	for sc.Scan() {
		if data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:")); ok && hasError(bytes.TrimSpace(data)) {
			return true
		}
	}
	return false
}

// commitResult signs the broker-result statement of a forwarded call and
// commits it. Outcome: ok (exit 0) when the agent answered HTTP 200 with
// no JSON-RPC error; failed (exit 1) otherwise; error (spawn_failed) when
// the agent could not be reached.
func (g *Gateway) commitResult(ctx context.Context, d *client.Decision, started, finished time.Time, out *digestWriter, status int, ferr error) {
	c := d.Receipt
	p := &attest.BrokerResult{
		Decision:  attest.DecisionRef{Index: c.LogIndex, LeafHash: c.LeafHash},
		ReceiptID: c.ID, CorrelationID: c.CorrelationID,
		StartedAt: attest.FormatTime(started), FinishedAt: attest.FormatTime(finished),
		Outputs: attest.Outputs{Stdout: out.output(), Stderr: attest.Output{Digest: entry.Digest(nil)}},
		Sandbox: attest.SandboxApplied{Kind: "none", Capabilities: entry.Digest(nil),
			Applied: []string{"a2a.forward " + g.rpcURL}},
	}
	switch {
	case status == 0:
		p.Outcome = attest.OutcomeError
		msg := "the agent could not be reached"
		if ferr != nil {
			msg += ": " + ferr.Error()
		}
		p.Error = &attest.ErrorInfo{Class: attest.ErrorSpawn, Message: cut(msg)}
		p.Outputs.Stdout = attest.Output{Digest: entry.Digest(nil)}
	case status != http.StatusOK || ferr != nil || rpcFailed(out.kept.Bytes()):
		p.Outcome, p.Exit = attest.OutcomeFailed, &attest.Exit{Status: 1}
	default:
		p.Outcome, p.Exit = attest.OutcomeOK, &attest.Exit{Status: 0}
	}
	log := g.cfg.Logger.With("log_index", c.LogIndex, "outcome", p.Outcome, "correlation_id", c.CorrelationID)
	svid, err := g.cfg.Broker.GetX509SVID()
	if err != nil {
		log.Error("a2a: result not signed", "error", err.Error())
		return
	}
	st, err := attest.SignBrokerResult(ctx, svid, d.ActionDigest, p)
	if err != nil {
		log.Error("a2a: result not signed", "error", err.Error())
		return
	}
	res, err := g.cfg.Reporter.Report(context.WithoutCancel(ctx), st)
	if err != nil {
		log.Error("a2a: result not committed", "error", err.Error())
		return
	}
	log.Info("a2a: forwarded; result committed", "result_index", res.Log.Index)
}
