package daal

import (
	"fmt"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/zt-infra/ztlog/verifier/legacy"
)

// MaxLegacyBatchSearch is the longest run of consecutive imported records
// tried against a legacy logBatch root when the anchor's metadata does not
// name its records (the control plane batched 10 by default).
const MaxLegacyBatchSearch = 32

// legacyIndex finds imported legacy records by hash.
type legacyIndex struct {
	recs []legacy.Record
	// stated[i] is record i's audit.current_hash.
	stated []common.Hash
	// byStated and byComputed map a hash to the record that states it, or
	// whose content hashes to it in some form.
	byStated, byComputed map[common.Hash]int
}

func newLegacyIndex(recs []legacy.Record) *legacyIndex {
	ix := &legacyIndex{recs: recs, stated: make([]common.Hash, len(recs)),
		byStated: map[common.Hash]int{}, byComputed: map[common.Hash]int{}}
	for i, rec := range recs {
		if h, ok := legacyStated(rec); ok {
			ix.stated[i] = h
			ix.byStated[h] = i
		}
		for _, h := range legacyComputed(rec) {
			ix.byComputed[h] = i
		}
	}
	return ix
}

// findRun returns the first run of n consecutive records whose stated
// hashes have root as their batch root (n = 0: any length up to
// MaxLegacyBatchSearch), as its hashes.
func (ix *legacyIndex) findRun(root common.Hash, n int) [][32]byte {
	lo, hi := n, n
	if n == 0 {
		lo, hi = 1, MaxLegacyBatchSearch
	}
	for size := lo; size <= hi; size++ {
		for i := 0; i+size <= len(ix.stated); i++ {
			run := make([][32]byte, size)
			for j := range run {
				run[j] = ix.stated[i+j]
			}
			if got, err := legacy.BatchRoot(run); err == nil && got == root {
				return run
			}
		}
	}
	return nil
}

// batchLeaves are the action hashes a legacy logBatch anchor covers: its
// metadata's, when their root is the anchored root; otherwise a run of
// imported records with that root. why says what was wrong with the
// metadata ("" when it was used).
func (ix *legacyIndex) batchLeaves(ca *ChainAnchor, root common.Hash) (leaves [][32]byte, why string) {
	meta, err := legacy.ParseBatchMetadata(ca.Metadata)
	n := 0
	if err != nil {
		why = fmt.Sprintf("its metadata does not name its records (%v)", err)
	} else {
		n = len(meta.ActionHashes)
		got, _ := legacy.BatchRoot(meta.ActionHashes)
		if got == root {
			return meta.ActionHashes, ""
		}
		why = fmt.Sprintf("its metadata's %d action hashes have root %s, not the anchored root", n, common.Hash(got).Hex())
	}
	return ix.findRun(root, n), why
}

// matchLegacyBatch matches one legacy logBatch anchor to the imported
// records it covers, or reports why it cannot.
func (r *reconciler) matchLegacyBatch(ix *legacyIndex, ca *ChainAnchor, s *LegacySummary, anchored map[int]bool) {
	s.Batches++
	root := common.HexToHash(ca.Hash)
	where := fmt.Sprintf("legacy logBatch record %s (tx %s, block %d, agent %q)", ca.RecordID, ca.TxHash, ca.Block, ca.AgentID)
	leaves, why := ix.batchLeaves(ca, root)
	if leaves == nil {
		s.BatchesUnmatched++
		ca.Finding = "unmatched"
		search := fmt.Sprintf("of up to %d", MaxLegacyBatchSearch)
		if _, err := legacy.ParseBatchMetadata(ca.Metadata); err == nil {
			search = "of its count"
		}
		ca.Reason = fmt.Sprintf("root %s matches nothing: %s, and no run %s consecutive imported records has it", ca.Hash, why, search)
		r.alert(Alert{Kind: AlertLegacyBatchUnmatched, TxHash: ca.TxHash, Message: where + ": " + ca.Reason +
			"; the records it anchored are not among those imported, or were changed with their hashes"})
		return
	}
	var found, missing []string
	var tampered int
	for pos, leaf := range leaves {
		h := common.Hash(leaf)
		if idx, ok := ix.byComputed[h]; ok {
			anchored[idx] = true
			ca.LegacyRecords = append(ca.LegacyRecords, idx+1)
			found = append(found, fmt.Sprint(idx+1))
			continue
		}
		if idx, ok := ix.byStated[h]; ok {
			anchored[idx] = true
			tampered++
			s.Tampered++
			r.tamperedAlert(idx, ca.TxHash)
			continue
		}
		missing = append(missing, fmt.Sprintf("#%d %s", pos+1, h.Hex()))
	}
	note := ""
	if why != "" {
		note = " (found by the records' content: " + why + ")"
	}
	switch {
	case len(missing) == len(leaves):
		s.BatchesWithoutRecords++
		ca.Finding = "without_records"
		ca.Reason = fmt.Sprintf("none of its %d records is among the imported records%s", len(leaves), note)
		r.rep.Notices = append(r.rep.Notices, fmt.Sprintf("%s covers %d records, none of them imported: import the records of host %q to match it",
			where, len(leaves), strings.TrimPrefix(ca.AgentID, legacy.BatchAgentPrefix)))
	case len(missing) > 0:
		s.BatchesRecordMissing++
		ca.Finding = "record_missing"
		ca.Reason = fmt.Sprintf("covers %d records; %d are not among the imported records: %s%s", len(leaves), len(missing), strings.Join(missing, ", "), note)
		r.alert(Alert{Kind: AlertLegacyRecordMissing, TxHash: ca.TxHash, Message: fmt.Sprintf("%s covers %d records; the imported records include %d of them (record(s) %s) but not the batch's %s: those records were removed after they were anchored, or changed together with their hash",
			where, len(leaves), len(found)+tampered, strings.Join(found, ", "), strings.Join(missing, ", "))})
	case tampered > 0:
		s.BatchesTampered++
		ca.Finding = "tampered"
		ca.Reason = fmt.Sprintf("covers %d records; %d of them no longer hash to their anchored hash%s", len(leaves), tampered, note)
	default:
		s.BatchesMatched++
		ca.Finding = "matched"
		first, last := ix.recs[ca.LegacyRecords[0]-1], ix.recs[ca.LegacyRecords[len(ca.LegacyRecords)-1]-1]
		ca.Reason = fmt.Sprintf("matches legacy records %s (%s to %s)%s", strings.Join(found, ", "),
			legacyText(first.Audit.Timestamp), legacyText(last.Audit.Timestamp), note)
	}
}
