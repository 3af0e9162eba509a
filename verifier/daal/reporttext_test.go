package daal

import (
	"strings"
	"testing"
)

func TestVerdicts(t *testing.T) {
	rep := &Report{OnChain: []ChainAnchor{{Verdict: "verified"}, {Verdict: "split_view"}, {Verdict: "verified"}}}
	got := rep.Verdicts()
	if got["verified"] != 2 {
		t.Errorf("verified: %d, want 2", got["verified"])
	}
	if got["split_view"] != 1 {
		t.Errorf("split_view: %d, want 1", got["split_view"])
	}
	if got["foreign"] != 0 {
		t.Errorf("foreign: %d, want 0", got["foreign"])
	}
}

func TestWriteFindings(t *testing.T) {
	rep := &Report{
		Legacy:  &LegacySummary{Records: 3, Anchors: 2, Matched: 1, Tampered: 1, NoRecord: 0, Unanchored: 2},
		Gaps:    []Gap{{FromTx: "0xa", ToTx: "0xb", Duration: "2h0m0s"}},
		Notices: []string{"first", "second"},
	}
	var b strings.Builder
	rep.WriteFindings(&b)
	want := "legacy: 3 record(s), 2 anchor(s): 1 matched, 1 tampered, 0 anchor(s) without record, 2 record(s) without anchor\n" +
		"gap: 2h0m0s between 0xa and 0xb\n" +
		"notice: first\n" +
		"notice: second\n"
	if b.String() != want {
		t.Errorf("wrote\n%s\nwant\n%s", b.String(), want)
	}
}

func TestWriteFindingsOfACleanReport(t *testing.T) {
	var b strings.Builder
	(&Report{}).WriteFindings(&b)
	if b.Len() != 0 {
		t.Errorf("wrote %q for a report without findings, want nothing", b.String())
	}
}

func TestWriteFindingsOfLegacyBatches(t *testing.T) {
	rep := &Report{
		Legacy: &LegacySummary{Records: 3, Anchors: 1, Unanchored: 0, Batches: 1, BatchesMatched: 1},
		OnChain: []ChainAnchor{{Verdict: "legacy", Method: "logBatch", Finding: "matched", Block: 7, TxHash: "0xb",
			Reason: "matches legacy records 1, 2, 3"}},
	}
	var b strings.Builder
	rep.WriteFindings(&b)
	want := "legacy: 3 record(s), 1 anchor(s): 0 matched, 0 tampered, 0 anchor(s) without record, 0 record(s) without anchor\n" +
		"legacy batches: 1 logBatch anchor(s): 1 matched, 0 tampered, 0 with a record missing, 0 without imported records, 0 matching nothing\n" +
		"  legacy batch  matched         block 7        tx 0xb: matches legacy records 1, 2, 3\n"
	if b.String() != want {
		t.Errorf("wrote\n%s\nwant\n%s", b.String(), want)
	}
}
