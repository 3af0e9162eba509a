package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/tlogproof"
	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/httpread"
	"github.com/zt-infra/ztlog/verifier/attestation"
	"github.com/zt-infra/ztlog/verifier/bundle"
)

// bundleResultWait bounds the wait for a checkpoint covering a decision's
// result, when GET /v1/bundles includes it.
const bundleResultWait = 3 * time.Second

// bundles serves GET /v1/bundles/{index}[?result=M], the evidence bundle
// of a decision (verifier/bundle/bundle.md). result and roots come from the
// decision path; a read-only log has neither and serves the entries and
// proofs alone.
type bundles struct {
	l *ztlog.Log
	// result returns the index of the result entry committed for the
	// decision at index, if there is one (contract/gate/results).
	result func(decision uint64) (uint64, bool)
	// roots is the service's SPIFFE trust bundle: the authorities of the
	// statements' signers' trust domains are included.
	roots x509bundle.Source
}

// bundle serves the log's part of an evidence bundle (verifier/bundle): the
// decision entry at index and, with ?result=M, its result entry, each with
// a tlog-proof into the latest checkpoint. Receipts are not kept by the
// log; their holder adds them (zt-audit bundle --receipt).
func (h *bundles) serve(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	index, ok := httpread.ParseUint(w, "index", mux.Vars(r)["index"])
	if !ok {
		return
	}
	cp, err := h.l.Checkpoint()
	if err != nil {
		httpread.WriteLogError(w, err, "")
		return
	}
	q := r.URL.Query()
	ri, found := uint64(0), false
	if !q.Has("result") && h.result != nil {
		// The decision's result, proven into a checkpoint that covers it:
		// this process's view may not have caught up with it yet.
		if ri, found = h.result(index); found && ri >= cp.Size {
			actx, cancel := context.WithTimeout(ctx, bundleResultWait)
			c, err := h.l.Await(actx, ri)
			cancel()
			if found = err == nil; found {
				cp = c
			}
		}
	}
	bundled := func(field string, i uint64, want entry.Kind) (*bundle.Entry, entry.Entry, bool) {
		if i >= cp.Size {
			httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "not_found", Field: field,
				Message: fmt.Sprintf("entry %d is beyond the published tree size %d", i, cp.Size)})
			return nil, nil, false
		}
		leaf, _, err := h.l.Entry(ctx, i)
		if err != nil {
			httpread.WriteLogError(w, err, field)
			return nil, nil, false
		}
		e, err := entry.Parse(leaf)
		if err != nil || e.EntryKind() != want {
			httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "not_a_" + string(want), Field: field,
				Message: fmt.Sprintf("entry %d is not a %s entry; a bundle is of a decision and its result", i, want)})
			return nil, nil, false
		}
		proof, err := h.l.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			httpread.WriteLogError(w, err, field)
			return nil, nil, false
		}
		return &bundle.Entry{Index: i, Leaf: leaf, Proof: string(tlogproof.Format(&tlogproof.Proof{Index: i, Hashes: proof, Checkpoint: cp.Note}))}, e, true
	}
	d, _, ok := bundled("index", index, entry.KindDecision)
	if !ok {
		return
	}
	b := &bundle.Bundle{Format: bundle.Format, Origin: cp.Origin, Decision: *d}
	if q.Has("result") {
		if ri, ok = httpread.ParseUint(w, "result", q.Get("result")); !ok {
			return
		}
		found = true
	}
	if found {
		re, e, ok := bundled("result", ri, entry.KindResult)
		if !ok {
			return
		}
		if e.(*entry.Result).DecisionIndex != index {
			httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "bad_result", Field: "result",
				Message: fmt.Sprintf("entry %d is the result of entry %d, not of %d", ri, e.(*entry.Result).DecisionIndex, index)})
			return
		}
		b.Result = re
	}
	if h.roots != nil {
		tds, err := bundle.SignerTrustDomains(b)
		if err == nil && len(tds) > 0 {
			var ids []spiffeid.TrustDomain
			for _, td := range tds {
				if id, err := spiffeid.TrustDomainFromString(td); err == nil {
					ids = append(ids, id)
				}
			}
			b.SPIFFE = attestation.FromSource(h.roots, ids...).Domains
		}
	}
	out, err := bundle.Marshal(b)
	if err != nil {
		httperr.WriteError(w, http.StatusInternalServerError, &httperr.Error{Code: "internal", Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(out)
}
