package audit

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/history"
)

// CheckHistory: the history index the log serves (GET /v1/history, its
// index checkpoint) is the one the entries determine.
const CheckHistory = "history.index"

// historyCheck recomputes the history index (verifier/history) from the
// entries, in order, and compares it with the served index checkpoint
// when the audit reaches its size.
type historyCheck struct {
	f    *findings
	ic   history.IndexCheckpoint
	x    *history.Index
	done bool
}

// setHistory opens the index checkpoint the log serves (signed by the log
// key of the verified checkpoint cp) and prepares its check.
func (a *Auditor) setHistory(signed []byte, cp *trustpolicy.Checkpoint) {
	a.f.checked(CheckHistory, 1)
	ic, err := history.OpenIndexCheckpoint(signed, cp.Log.Verifier)
	if err != nil {
		a.f.add(CheckHistory, Fail, nil, fmt.Sprintf("the index checkpoint the log serves: %v", err))
		return
	}
	if ic.Size > cp.Size {
		a.f.add(CheckHistory, Warn, nil, fmt.Sprintf("the index checkpoint is for size %d, beyond the checkpoint audited (%d): not checked; audit again", ic.Size, cp.Size))
		return
	}
	a.hist = &historyCheck{f: a.f, ic: ic, x: history.New(history.Options{})}
	a.hist.compareAt()
}

// observe applies the entry at the next index (e nil when it did not
// parse), and compares once the index checkpoint's size is reached.
func (h *historyCheck) observe(leafHash []byte, e entry.Entry) {
	if h.done {
		return
	}
	var lh history.Hash
	copy(lh[:], leafHash)
	h.x.ApplyParsed(lh, e)
	h.compareAt()
}

func (h *historyCheck) compareAt() {
	if h.done || h.x.Size() != h.ic.Size {
		return
	}
	h.done = true
	snap := h.x.Snapshot()
	root, mroot := h.x.Root(), snap.Root()
	switch {
	case !bytes.Equal(root[:], h.ic.LogRoot[:]):
		h.f.add(CheckHistory, Fail, nil, fmt.Sprintf("the index checkpoint names log root %s at size %d; the entries hash to %s", b64(h.ic.LogRoot[:]), h.ic.Size, b64(root[:])))
	case snap.MapSize() != h.ic.MapSize:
		h.f.add(CheckHistory, Fail, nil, fmt.Sprintf("the index checkpoint at size %d names %d keys; the entries make %d", h.ic.Size, h.ic.MapSize, snap.MapSize()))
	case mroot != h.ic.MapRoot:
		h.f.add(CheckHistory, Fail, nil, fmt.Sprintf("the index checkpoint at size %d names map root %s; the entries make %s: the served history index is not the log's", h.ic.Size,
			base64.StdEncoding.EncodeToString(h.ic.MapRoot[:]), base64.StdEncoding.EncodeToString(mroot[:])))
	}
}

// finishHistory reports an index checkpoint the audit never reached.
func (a *Auditor) finishHistory() {
	if a.hist != nil && !a.hist.done {
		a.f.add(CheckHistory, Warn, nil, fmt.Sprintf("the audit ended at size %d before the index checkpoint's size %d: not checked", a.tree.size(), a.hist.ic.Size))
	}
}
