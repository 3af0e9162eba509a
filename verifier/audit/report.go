package audit

import (
	"sync"
	"time"
)

// Severity says what a finding means for the verdict.
type Severity string

const (
	// Fail: the log is not valid (exit status 1).
	Fail Severity = "fail"
	// Warn: reported, not fatal (e.g. an allow whose result has not come
	// within the window).
	Warn Severity = "warn"
)

// The checks an audit runs, by stable ID (used in --json and alerts).
const (
	CheckCheckpoint = "checkpoint"       // the checkpoint verifies against the trust policy
	CheckRoot       = "tree.root"        // the tree recomputed from the entries has the checkpoint's root
	CheckTiles      = "tree.tiles"       // every hash tile equals the recomputed hashes
	CheckBundles    = "tree.bundles"     // every entry bundle is present and well formed
	CheckParse      = "entry.parse"      // every entry is a valid contract entry (contract.Parse)
	CheckResultLink = "result.link"      // every result links to an earlier allow with the same action digest, leaf hash and broker, and is not older than it
	CheckResultOnce = "result.unique"    // no allow has a second result
	CheckRevocation = "agent.revocation" // no allow for an agent after its revocation
	CheckResultDue  = "allow.result"     // every allow older than the window has a result (warn)
	CheckCapacity   = "audit.capacity"   // the audit's memory bounds were enough to check everything
)

var checkTitles = map[string]string{
	CheckCheckpoint: "checkpoint signature and witness quorum",
	CheckRoot:       "tree root recomputed from the entries",
	CheckTiles:      "hash tiles equal the recomputed tree",
	CheckBundles:    "entry bundles complete and well formed",
	CheckParse:      "entries are valid contract entries",
	CheckResultLink: "results link to an earlier allow of the same action",
	CheckResultOnce: "no second result for an allow",
	CheckRevocation: "no allow for a revoked agent",
	CheckResultDue:  "allows older than the window have a result",
	CheckCapacity:   "audit limits sufficed",
	CheckHistory:    "history index recomputed from the entries",
}

// Finding is one problem found.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	// Index is the log index of the entry concerned, if any.
	Index   *uint64 `json:"index,omitempty"`
	Message string  `json:"message"`
}

// CheckResult summarizes one check.
type CheckResult struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Checked counts the items checked (entries, tiles, results, ...).
	Checked uint64 `json:"checked"`
	Failed  uint64 `json:"failed"`
	Warned  uint64 `json:"warned"`
	// Examples are the first findings of this check (bounded).
	Examples []Finding `json:"examples,omitempty"`
}

// Status is "pass", "fail", "warn" or "not run".
func (c *CheckResult) Status() string {
	switch {
	case c.Failed > 0:
		return "fail"
	case c.Warned > 0:
		return "warn"
	case c.Checked == 0:
		return "not run"
	}
	return "pass"
}

// Report is the outcome of an audit.
type Report struct {
	Origin   string `json:"origin"`
	TreeSize uint64 `json:"tree_size"`
	RootHash []byte `json:"root_hash"`
	// Cosigners are the witnesses whose cosignatures counted.
	Cosigners []string `json:"cosigners,omitempty"`
	// Entries counts entries read; Kinds counts them by kind (decision
	// entries as "decision.allow" / "decision.deny", agent entries as
	// "agent.register" / "agent.revoke").
	Entries uint64            `json:"entries"`
	Kinds   map[string]uint64 `json:"kinds,omitempty"`
	// Checks, in the order they are listed above.
	Checks []*CheckResult `json:"checks"`
	// EntrySignatures says whether entry signatures were checked: "checked
	// (signature.<name>, ...)" or "NOT checked" when no EntryVerifier was
	// given (zt-audit audit without --spiffe-bundle).
	EntrySignatures string `json:"entry_signatures"`
	// Valid is true when no check failed.
	Valid bool `json:"valid"`
	// First is the first failing finding, nil when Valid.
	First *Finding `json:"first_failure,omitempty"`
	// Open is the number of allows still awaiting a result within the
	// window at the end.
	Open uint64 `json:"open_allows"`
	// Duration of the audit and its rate in entries per second.
	Duration      time.Duration `json:"duration_ns"`
	EntriesPerSec float64       `json:"entries_per_second"`
}

// Check returns the check with the given ID (nil if not in the report).
func (r *Report) Check(id string) *CheckResult {
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// findings collects findings from the audit's stages.
type findings struct {
	mu          sync.Mutex
	maxExamples int
	checks      map[string]*CheckResult
	order       []string
	first       *Finding
	// sink, when set, receives every finding as it is found (the monitor's
	// alerts).
	sink func(Finding)
}

func newFindings(maxExamples int, verifierNames []string) *findings {
	f := &findings{maxExamples: maxExamples, checks: map[string]*CheckResult{}}
	ids := []string{CheckCheckpoint, CheckRoot, CheckTiles, CheckBundles, CheckParse, CheckResultLink, CheckResultOnce, CheckRevocation, CheckResultDue}
	for _, n := range verifierNames {
		ids = append(ids, "signature."+n)
	}
	ids = append(ids, CheckHistory, CheckCapacity)
	for _, id := range ids {
		title := checkTitles[id]
		if title == "" {
			title = "entry signatures: " + id[len("signature."):]
		}
		f.checks[id] = &CheckResult{ID: id, Title: title}
		f.order = append(f.order, id)
	}
	return f
}

func (f *findings) checked(id string, n uint64) {
	f.mu.Lock()
	f.checks[id].Checked += n
	f.mu.Unlock()
}

func (f *findings) add(id string, sev Severity, index *uint64, msg string) {
	fd := Finding{Check: id, Severity: sev, Index: index, Message: msg}
	f.mu.Lock()
	c := f.checks[id]
	if sev == Fail {
		c.Failed++
		if f.first == nil {
			f.first = &fd
		}
	} else {
		c.Warned++
	}
	if len(c.Examples) < f.maxExamples {
		c.Examples = append(c.Examples, fd)
	}
	sink := f.sink
	f.mu.Unlock()
	if sink != nil {
		sink(fd)
	}
}

func (f *findings) failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first != nil
}

func idx(i uint64) *uint64 { return &i }
