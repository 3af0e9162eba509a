package daal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/zt-infra/ztlog/verifier/legacy"
)

// Reconciliation defaults.
const (
	// DefaultStuckAfter is how long an anchor may stay queued or submitted
	// before it is reported stuck.
	DefaultStuckAfter = 30 * time.Minute
	// DefaultMaxGap is the longest the log may grow without a verified
	// anchor before a gap is reported.
	DefaultMaxGap = time.Hour
)

// The alert kinds. DAAL.md says what an operator does about each.
const (
	// AlertFailed: an anchor's transaction reverted or lost its nonce, or a
	// confirmed anchor did not verify.
	AlertFailed = "anchor_failed"
	// AlertStuck: an anchor has been queued or submitted for longer than
	// StuckAfter.
	AlertStuck = "anchor_stuck"
	// AlertReorged: a confirmed anchor's block left the canonical chain;
	// the anchor is submitted again.
	AlertReorged = "anchor_reorged"
	// AlertGap: the log grew and no verified anchor is newer than MaxGap.
	AlertGap = "anchor_gap"
	// AlertSplitView: our sender put on chain a root for our origin that
	// contradicts our tree or matches no tree of ours.
	AlertSplitView = "split_view"
	// AlertUnexpectedRecord: our sender wrote a record that is not one of
	// our checkpoint anchors (its key is used for something else).
	AlertUnexpectedRecord = "unexpected_record"
	// AlertContractCode: the contract's runtime code hash is not the
	// expected one (or there is no code).
	AlertContractCode = "contract_code"
	// AlertLegacyTampered: a legacy record whose stated hash is anchored no
	// longer hashes to it.
	AlertLegacyTampered = "legacy_tampered"
	// AlertLegacyRecordMissing: a legacy logBatch anchor covers records
	// some of which are imported and some not: records were removed (or
	// changed together with their hash) after they were anchored.
	AlertLegacyRecordMissing = "legacy_record_missing"
	// AlertLegacyBatchUnmatched: a legacy logBatch anchor's root is neither
	// the root of its metadata's action hashes nor of any run of imported
	// records.
	AlertLegacyBatchUnmatched = "legacy_batch_unmatched"
)

// ReconcileConfig configures Reconcile. Tree, Chain, Sender,
// ExpectedCodeHash and Now are required; without a Ledger, Reconcile checks
// the chain against the log only (the auditor's view).
type ReconcileConfig struct {
	Tree   *Tree
	Chain  ChainReader
	Sender common.Address
	Ledger Ledger
	// ExpectedCodeHash is the contract's expected runtime code hash: for
	// ztlog's DAALog, the committed artifact's
	// (log/anchor/daal/daalog.RuntimeCodeHash).
	ExpectedCodeHash common.Hash
	// FromBlock is the first block scanned for events (the contract's
	// deployment block); BlockStep the most blocks per log query.
	FromBlock uint64
	BlockStep uint64
	// StuckAfter and MaxGap default to DefaultStuckAfter and DefaultMaxGap.
	StuckAfter time.Duration
	MaxGap     time.Duration
	// Legacy are imported records of the earlier system; logAction events
	// from LegacySenders are matched to them.
	Legacy        []legacy.Record
	LegacySenders []common.Address
	// Now is the clock.
	Now func() time.Time
}

// Report is the outcome of one reconciliation.
type Report struct {
	Origin     string          `json:"origin"`
	ChainID    uint64          `json:"chain_id"`
	Contract   string          `json:"contract"`
	Sender     string          `json:"sender"`
	Head       uint64          `json:"head_block"`
	Checkpoint ReportTree      `json:"checkpoint"`
	Code       CodeCheck       `json:"code"`
	Anchors    []AnchorReport  `json:"anchors,omitempty"`
	OnChain    []ChainAnchor   `json:"on_chain"`
	Gaps       []Gap           `json:"gaps,omitempty"`
	Legacy     *LegacySummary  `json:"legacy,omitempty"`
	Alerts     []Alert         `json:"alerts"`
	Notices    []string        `json:"notices,omitempty"`
	byTx       map[string]bool `json:"-"`
}

// ReportTree is the log's tree that anchors were checked against.
type ReportTree struct {
	Size uint64 `json:"size"`
	Root string `json:"root"`
}

// CodeCheck is the contract code check.
type CodeCheck struct {
	Hash     string `json:"hash"`
	Expected string `json:"expected"`
	Bytes    int    `json:"bytes"`
	OK       bool   `json:"ok"`
}

// AnchorReport is one ledger anchor after reconciliation.
type AnchorReport struct {
	ID          uint64      `json:"id"`
	State       State       `json:"state"`
	Attestation Attestation `json:"attestation"`
	Reason      string      `json:"reason,omitempty"`
	Size        uint64      `json:"size"`
	Root        string      `json:"root"`
	TxHash      string      `json:"tx_hash,omitempty"`
	Block       uint64      `json:"block,omitempty"`
	RecordID    uint64      `json:"record_id,omitempty"`
}

// ChainAnchor is one ActionLogged event of interest found on chain.
type ChainAnchor struct {
	TxHash    string `json:"tx_hash"`
	Block     uint64 `json:"block"`
	BlockHash string `json:"block_hash"`
	LogIndex  uint   `json:"log_index"`
	RecordID  string `json:"record_id"`
	Time      int64  `json:"time"`
	Sender    string `json:"sender"`
	Method    string `json:"method"`
	Hash      string `json:"hash"`
	Metadata  string `json:"metadata"`
	// Size is the anchored tree size (checkpoint anchors).
	Size uint64 `json:"size,omitempty"`
	// AgentID is the call's agentId (legacy anchors).
	AgentID string `json:"agent_id,omitempty"`
	// Finding is what matching a legacy anchor to the imported records
	// found: "matched", "tampered", "without_record" (logAction);
	// "matched", "tampered", "record_missing", "without_records",
	// "unmatched" (logBatch). LegacyRecords are the matched records'
	// numbers (1-based, in the imported file's order).
	Finding       string `json:"finding,omitempty"`
	LegacyRecords []int  `json:"legacy_records,omitempty"`
	// Verdict: "verified" (a prefix of our tree), "split_view",
	// "unexpected", "legacy", or "foreign" (another sender used our
	// origin; not trusted, not an alert).
	Verdict string `json:"verdict"`
	Reason  string `json:"reason,omitempty"`
}

// Gap is a stretch longer than MaxGap between two verified anchors.
type Gap struct {
	FromTx   string `json:"from_tx"`
	ToTx     string `json:"to_tx"`
	From     int64  `json:"from"`
	To       int64  `json:"to"`
	Duration string `json:"duration"`
}

// Alert is something an operator or auditor must look at.
type Alert struct {
	Kind     string    `json:"kind"`
	Anchor   uint64    `json:"anchor,omitempty"`
	TxHash   string    `json:"tx_hash,omitempty"`
	Message  string    `json:"message"`
	Evidence *Evidence `json:"evidence,omitempty"`
}

// Evidence backs a split-view alert so that a third party can check it
// with no trust in ztlog or the reporter: Receipt shows our sender put
// (OnChainSize, OnChainRoot) on chain for our origin; Checkpoint is the
// log's signed checkpoint and Consistency proves that the log's tree of
// OnChainSize entries has root LogRoot, not OnChainRoot. Consistency is
// empty when OnChainSize equals the checkpoint's size or is beyond it.
type Evidence struct {
	Receipt     *ReceiptDump `json:"receipt"`
	OnChainSize uint64       `json:"on_chain_size"`
	OnChainRoot string       `json:"on_chain_root"`
	LogRoot     string       `json:"log_root,omitempty"`
	Checkpoint  string       `json:"checkpoint"`
	Consistency [][]byte     `json:"consistency,omitempty"`
}

// LegacySummary is the outcome of matching legacy anchors to records.
type LegacySummary struct {
	Records    int `json:"records"`
	Anchors    int `json:"anchors"`
	Matched    int `json:"matched"`
	Tampered   int `json:"tampered"`
	NoRecord   int `json:"anchors_without_record"`
	Unanchored int `json:"records_without_anchor"`
	// Batches counts the logBatch anchors among Anchors, by finding.
	Batches               int `json:"batches"`
	BatchesMatched        int `json:"batches_matched"`
	BatchesTampered       int `json:"batches_tampered"`
	BatchesRecordMissing  int `json:"batches_record_missing"`
	BatchesWithoutRecords int `json:"batches_without_records"`
	BatchesUnmatched      int `json:"batches_unmatched"`
}

// Reconcile checks every anchor against the chain and the log, and the
// chain against the log; it updates the ledger's states and attestation
// (when there is a ledger) and returns the report with its alerts. An
// error means it could not check (endpoint or log unreachable), never that
// something checked bad: that is an alert.
func Reconcile(ctx context.Context, cfg ReconcileConfig) (*Report, error) {
	if cfg.Tree == nil || cfg.Chain == nil || cfg.Sender == (common.Address{}) {
		return nil, errors.New("daal: reconcile needs the log, the chain and the anchoring sender's address")
	}
	if cfg.ExpectedCodeHash == (common.Hash{}) || cfg.Now == nil {
		return nil, errors.New("daal: reconcile needs the contract's expected code hash and a clock")
	}
	if cfg.StuckAfter == 0 {
		cfg.StuckAfter = DefaultStuckAfter
	}
	if cfg.MaxGap == 0 {
		cfg.MaxGap = DefaultMaxGap
	}
	r := &reconciler{cfg: cfg, txs: map[common.Hash]*txInfo{}}
	return r.run(ctx)
}

type reconciler struct {
	cfg ReconcileConfig
	cp  *Checkpoint
	rep *Report
	txs map[common.Hash]*txInfo
	// rootAt caches the log's roots by size.
	roots map[uint64][]byte
}

type txInfo struct {
	tx     *types.Transaction
	sender common.Address
	call   *Call
}

func (r *reconciler) run(ctx context.Context) (*Report, error) {
	cfg := r.cfg
	cp, err := cfg.Tree.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	r.cp = cp
	r.roots = map[uint64][]byte{}
	head, err := cfg.Chain.BlockNumber(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the block number: %w", err)
	}
	rep := &Report{
		Origin:     cfg.Tree.Origin(),
		ChainID:    cfg.Chain.ChainID().Uint64(),
		Contract:   cfg.Chain.Contract().Hex(),
		Sender:     cfg.Sender.Hex(),
		Head:       head,
		Checkpoint: ReportTree{Size: cp.Size, Root: hexutil.Encode(cp.Root)},
		OnChain:    []ChainAnchor{},
		Alerts:     []Alert{},
		byTx:       map[string]bool{},
	}
	r.rep = rep

	// The contract itself.
	hash, n, err := cfg.Chain.CodeHash(ctx)
	if err != nil {
		return nil, err
	}
	rep.Code = CodeCheck{Hash: hash.Hex(), Expected: cfg.ExpectedCodeHash.Hex(), Bytes: n, OK: n > 0 && hash == cfg.ExpectedCodeHash}
	if !rep.Code.OK {
		msg := fmt.Sprintf("the contract at %s has code hash %s (%d bytes), not the expected %s of ztlog's DAALog artifact", rep.Contract, hash.Hex(), n, rep.Code.Expected)
		if n == 0 {
			msg = fmt.Sprintf("there is no contract at %s on chain %d", rep.Contract, rep.ChainID)
		}
		r.alert(Alert{Kind: AlertContractCode, Message: msg})
	}

	// The chain's view.
	if cfg.FromBlock <= head {
		logs, err := cfg.Chain.Events(ctx, cfg.FromBlock, head, cfg.BlockStep)
		if err != nil {
			return nil, err
		}
		if err := r.scan(ctx, logs); err != nil {
			return nil, err
		}
	}
	// The ledger's view.
	if cfg.Ledger != nil {
		if err := r.ledger(ctx); err != nil {
			return nil, err
		}
	}
	r.gaps()
	return rep, nil
}

func (r *reconciler) alert(a Alert) { r.rep.Alerts = append(r.rep.Alerts, a) }

// tx fetches a transaction, its sender and its decoded call, once.
func (r *reconciler) tx(ctx context.Context, h common.Hash) (*txInfo, error) {
	if t, ok := r.txs[h]; ok {
		return t, nil
	}
	tx, err := r.cfg.Chain.TransactionByHash(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("read transaction %s: %w", h, err)
	}
	from, err := sender(r.cfg.Chain.ChainID(), tx)
	if err != nil {
		return nil, fmt.Errorf("transaction %s: sender: %w", h, err)
	}
	t := &txInfo{tx: tx, sender: from}
	t.call, _ = ParseCall(tx.Data())
	r.txs[h] = t
	return t, nil
}

// rootAt is the log's root at size (size <= the checkpoint's).
func (r *reconciler) rootAt(ctx context.Context, size uint64) ([]byte, error) {
	if root, ok := r.roots[size]; ok {
		return root, nil
	}
	root, err := r.cfg.Tree.RootAt(ctx, r.cp, size)
	if err != nil {
		return nil, err
	}
	r.roots[size] = root
	return root, nil
}

func isLegacySender(a common.Address, list []common.Address) bool {
	for _, l := range list {
		if l == a {
			return true
		}
	}
	return false
}

// scan checks every ActionLogged event of the contract.
func (r *reconciler) scan(ctx context.Context, logs []types.Log) error {
	origin := r.cfg.Tree.Origin()
	originTopic := AgentTopic(origin)
	var legacy []ChainAnchor
	for i := range logs {
		l := &logs[i]
		ev, err := ParseActionLogged(l)
		if err != nil {
			continue // not the event's shape; not ours
		}
		t, err := r.tx(ctx, l.TxHash)
		if err != nil {
			return err
		}
		ca := ChainAnchor{
			TxHash: l.TxHash.Hex(), Block: l.BlockNumber, BlockHash: l.BlockHash.Hex(), LogIndex: l.Index,
			RecordID: ev.RecordID.String(), Sender: t.sender.Hex(), Hash: ev.ActionHash.Hex(), Metadata: ev.Metadata,
		}
		if ev.Timestamp.IsInt64() {
			ca.Time = ev.Timestamp.Int64()
		}
		if t.call != nil {
			ca.Method = t.call.Method
		}
		ours := t.sender == r.cfg.Sender
		switch {
		case t.call != nil && t.call.Method == "logAction" && isLegacySender(t.sender, r.cfg.LegacySenders),
			t.call != nil && t.call.Method == "logBatch" && isLegacySender(t.sender, r.cfg.LegacySenders) && !(ours && t.call.AgentID == origin):
			ca.Verdict, ca.AgentID = "legacy", t.call.AgentID
			legacy = append(legacy, ca)
			continue
		case !ours && ev.AgentTopic == originTopic:
			ca.Verdict = "foreign"
			ca.Reason = "sent by " + t.sender.Hex() + ", not by the anchoring sender; ignored"
			r.rep.Notices = append(r.rep.Notices, fmt.Sprintf("record %s in tx %s names our origin but was sent by %s; only %s anchors this log", ca.RecordID, ca.TxHash, t.sender.Hex(), r.cfg.Sender.Hex()))
		case !ours:
			continue
		case t.call == nil || t.call.Method != "logBatch" || t.call.AgentID != origin || ev.AgentTopic != originTopic:
			ca.Verdict = "unexpected"
			ca.Reason = "the anchoring sender wrote a record that is not a checkpoint anchor of " + origin
			r.alert(Alert{Kind: AlertUnexpectedRecord, TxHash: ca.TxHash, Message: fmt.Sprintf("record %s (tx %s, block %d): %s; the anchoring key must be used by ztlog only", ca.RecordID, ca.TxHash, ca.Block, ca.Reason)})
		default:
			r.checkChainAnchor(ctx, &ca, ev, l)
		}
		r.rep.OnChain = append(r.rep.OnChain, ca)
	}
	if len(r.cfg.Legacy) > 0 || len(legacy) > 0 {
		r.matchLegacy(legacy)
	}
	return nil
}

// checkChainAnchor decides whether a logBatch of ours names a tree of ours.
func (r *reconciler) checkChainAnchor(ctx context.Context, ca *ChainAnchor, ev *ActionLogged, l *types.Log) {
	splitView := func(why string, size uint64, logRoot []byte) {
		ca.Verdict, ca.Reason = "split_view", why
		e := &Evidence{OnChainSize: size, OnChainRoot: ev.ActionHash.Hex(), Checkpoint: string(r.cp.Note)}
		if logRoot != nil {
			e.LogRoot = hexutil.Encode(logRoot)
			e.Consistency, _ = r.cfg.Tree.ConsistencyProof(ctx, r.cp, size)
		}
		if d, err := r.cfg.Chain.Dump(ctx, l.TxHash); err == nil {
			e.Receipt = d
		}
		r.alert(Alert{Kind: AlertSplitView, TxHash: ca.TxHash, Evidence: e,
			Message: fmt.Sprintf("record %s (tx %s, block %d) from the anchoring sender: %s", ca.RecordID, ca.TxHash, ca.Block, why)})
	}
	meta, err := ParseMetadata(ev.Metadata)
	if err != nil {
		splitView(fmt.Sprintf("a root for our origin whose metadata is not ztlog's (%v); it matches no checkpoint", err), 0, nil)
		return
	}
	ca.Size = meta.Size
	if meta.Size > r.cp.Size {
		splitView(fmt.Sprintf("a root for a tree of %d entries, but the log has only %d: it matches no checkpoint of ours", meta.Size, r.cp.Size), meta.Size, nil)
		return
	}
	if meta.Size == 0 {
		splitView("a root for an empty tree, which is never anchored", 0, nil)
		return
	}
	logRoot, err := r.rootAt(ctx, meta.Size)
	if err != nil {
		ca.Verdict, ca.Reason = "unchecked", "cannot compute the log's root at this size: "+err.Error()
		r.rep.Notices = append(r.rep.Notices, fmt.Sprintf("tx %s: %s", ca.TxHash, ca.Reason))
		return
	}
	if !bytes.Equal(logRoot, ev.ActionHash[:]) {
		splitView(fmt.Sprintf("root %s for size %d contradicts the log's root %x at that size", ev.ActionHash.Hex(), meta.Size, logRoot), meta.Size, logRoot)
		return
	}
	want := sha256.Sum256(CheckpointBody(r.cfg.Tree.Origin(), meta.Size, logRoot))
	if meta.Checkpoint != want {
		splitView(fmt.Sprintf("the root is right but the metadata names checkpoint sha256:%x, not the log's sha256:%s", meta.Checkpoint, hex.EncodeToString(want[:])), meta.Size, logRoot)
		return
	}
	ca.Verdict = "verified"
	r.rep.byTx[ca.TxHash] = true
}

// ledger reconciles the ledger's anchors.
func (r *reconciler) ledger(ctx context.Context) error {
	now := r.cfg.Now()
	anchors := r.cfg.Ledger.Anchors()
	// lastGood is the newest anchor verified by this run's checks (not by
	// the ledger's record from an earlier run: an anchor verified then
	// that fails now must raise its own alert). Failures before it are
	// superseded: the log's history since then is anchored and verified.
	var lastGood uint64
	for _, an := range anchors {
		switch an.State {
		case Confirmed:
			if err := r.checkConfirmed(ctx, &an, now); err != nil {
				return err
			}
			if an.Attestation == Verified {
				lastGood = max(lastGood, an.ID)
			}
		case Queued, Submitted:
			if age := now.Sub(an.QueuedAt); age > r.cfg.StuckAfter {
				last := ""
				if len(an.Txs) > 0 {
					last = an.Txs[len(an.Txs)-1].Hash
				}
				r.alert(Alert{Kind: AlertStuck, Anchor: an.ID, TxHash: last,
					Message: fmt.Sprintf("anchor %d (size %d) has been %s for %s (more than %s); %d transaction(s) signed, last %s%s", an.ID, an.Size, an.State, age.Round(time.Second), r.cfg.StuckAfter, len(an.Txs), last, reasonSuffix(an.Reason))})
			}
		}
		r.rep.Anchors = append(r.rep.Anchors, AnchorReport{ID: an.ID, State: an.State, Attestation: an.Attestation, Reason: an.Reason,
			Size: an.Size, Root: an.Root, TxHash: an.TxHash, Block: an.Block, RecordID: an.RecordID})
	}
	for _, an := range r.rep.Anchors {
		if an.ID > lastGood && (an.State == Failed || an.Attestation == AttestFailed) {
			r.alert(Alert{Kind: AlertFailed, Anchor: an.ID, TxHash: an.TxHash, Message: fmt.Sprintf("anchor %d (size %d) failed: %s", an.ID, an.Size, an.Reason)})
		}
	}
	return nil
}

func reasonSuffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

// checkConfirmed re-reads a confirmed anchor's receipt and verifies it.
func (r *reconciler) checkConfirmed(ctx context.Context, an *Anchor, now time.Time) error {
	prev := *an
	var rc *types.Receipt
	var minedTx string
	for i := len(an.Txs) - 1; i >= 0; i-- {
		got, err := r.cfg.Chain.TransactionReceipt(ctx, common.HexToHash(an.Txs[i].Hash))
		if errors.Is(err, ethereum.NotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read the receipt of %s: %w", an.Txs[i].Hash, err)
		}
		rc, minedTx = got, an.Txs[i].Hash
		break
	}
	if rc == nil {
		an.State, an.Attestation, an.UpdatedAt = Submitted, Pending, now
		an.Reason = fmt.Sprintf("block %d (%s) that held %s is no longer on the canonical chain; the transaction is broadcast again", an.Block, an.BlockHash, an.TxHash)
		r.alert(Alert{Kind: AlertReorged, Anchor: an.ID, TxHash: an.TxHash, Message: "anchor " + fmt.Sprint(an.ID) + ": " + an.Reason})
		return r.cfg.Ledger.Put(*an)
	}
	if minedTx != an.TxHash || rc.BlockHash.Hex() != an.BlockHash {
		an.TxHash, an.Block, an.BlockHash = minedTx, rc.BlockNumber.Uint64(), rc.BlockHash.Hex()
	}
	why := r.verifyReceipt(ctx, an, rc)
	if why == "" {
		an.Attestation, an.Reason = Verified, ""
	} else {
		an.Attestation, an.Reason = AttestFailed, why
	}
	an.ReconciledAt = now
	if an.Attestation != prev.Attestation || an.Reason != prev.Reason || an.BlockHash != prev.BlockHash || an.TxHash != prev.TxHash {
		an.UpdatedAt = now
		return r.cfg.Ledger.Put(*an)
	}
	return nil
}

// verifyReceipt returns why a confirmed anchor does not verify, or "".
func (r *reconciler) verifyReceipt(ctx context.Context, an *Anchor, rc *types.Receipt) string {
	if rc.Status != types.ReceiptStatusSuccessful {
		return fmt.Sprintf("receipt status %d for %s", rc.Status, an.TxHash)
	}
	t, err := r.tx(ctx, common.HexToHash(an.TxHash))
	if err != nil {
		return err.Error()
	}
	if to := t.tx.To(); to == nil || *to != r.cfg.Chain.Contract() {
		return fmt.Sprintf("transaction %s is not to the contract %s", an.TxHash, r.cfg.Chain.Contract().Hex())
	}
	if t.sender != r.cfg.Sender {
		return fmt.Sprintf("transaction %s was sent by %s, not by %s", an.TxHash, t.sender.Hex(), r.cfg.Sender.Hex())
	}
	root, err := rootBytes(an)
	if err != nil {
		return err.Error()
	}
	var found bool
	for _, l := range rc.Logs {
		if l.Address != r.cfg.Chain.Contract() {
			continue
		}
		ev, err := ParseActionLogged(l)
		if err != nil {
			continue
		}
		if ev.AgentTopic == AgentTopic(an.Origin) && bytes.Equal(ev.ActionHash[:], root) && ev.Metadata == an.Metadata {
			found = true
			if ev.RecordID.IsUint64() {
				an.RecordID = ev.RecordID.Uint64()
			}
		}
	}
	if !found {
		return fmt.Sprintf("the receipt of %s has no ActionLogged event from the contract with our origin, root %s and metadata", an.TxHash, an.Root)
	}
	meta, err := MetadataFor([]byte(an.Checkpoint), an.Size)
	if err != nil || meta.Marshal() != an.Metadata {
		return "the anchored metadata does not describe the recorded checkpoint"
	}
	if err := r.cfg.Tree.VerifyConsistent(ctx, r.cp, an.Size, root); err != nil {
		return "not consistent with the log: " + err.Error()
	}
	return ""
}

// rootBytes decodes an anchor's root.
func rootBytes(an *Anchor) ([]byte, error) {
	b, err := hexutil.Decode(an.Root)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("anchor %d: bad root %q", an.ID, an.Root)
	}
	return b, nil
}

// gaps reports stretches without a verified anchor longer than MaxGap.
func (r *reconciler) gaps() {
	var good []ChainAnchor
	for _, ca := range r.rep.OnChain {
		if ca.Verdict == "verified" {
			good = append(good, ca)
		}
	}
	sort.SliceStable(good, func(i, j int) bool { return good[i].Block < good[j].Block })
	maxGap := int64(r.cfg.MaxGap / time.Second)
	for i := 1; i < len(good); i++ {
		if d := good[i].Time - good[i-1].Time; d > maxGap {
			r.rep.Gaps = append(r.rep.Gaps, Gap{FromTx: good[i-1].TxHash, ToTx: good[i].TxHash, From: good[i-1].Time, To: good[i].Time,
				Duration: (time.Duration(d) * time.Second).String()})
		}
	}
	now := r.cfg.Now()
	if len(good) == 0 {
		if r.cp.Size > 0 && r.neverAnchoredTooLong(now) {
			r.alert(Alert{Kind: AlertGap, Message: fmt.Sprintf("the log has %d entries and no verified anchor on chain", r.cp.Size)})
		}
		return
	}
	last := good[len(good)-1]
	since := now.Sub(time.Unix(last.Time, 0))
	if r.cp.Size > last.Size && since > r.cfg.MaxGap {
		r.alert(Alert{Kind: AlertGap, TxHash: last.TxHash, Message: fmt.Sprintf("the log has grown from %d to %d entries since its last verified anchor (tx %s), %s ago (more than %s)", last.Size, r.cp.Size, last.TxHash, since.Round(time.Second), r.cfg.MaxGap)})
	}
}

// neverAnchoredTooLong: with a ledger, a log that has never been anchored
// is a gap once its first anchor is older than MaxGap (or there is none);
// without one (an auditor), it always is.
func (r *reconciler) neverAnchoredTooLong(now time.Time) bool {
	if r.cfg.Ledger == nil {
		return true
	}
	as := r.cfg.Ledger.Anchors()
	if len(as) == 0 {
		return true
	}
	return now.Sub(as[0].QueuedAt) > r.cfg.MaxGap
}

// matchLegacy matches legacy logAction and logBatch anchors to imported
// records.
func (r *reconciler) matchLegacy(anchors []ChainAnchor) {
	s := &LegacySummary{Records: len(r.cfg.Legacy), Anchors: len(anchors)}
	ix := newLegacyIndex(r.cfg.Legacy)
	anchored := map[int]bool{}
	for i := range anchors {
		ca := &anchors[i]
		if ca.Method == "logBatch" {
			r.matchLegacyBatch(ix, ca, s, anchored)
			continue
		}
		h := common.HexToHash(ca.Hash)
		if idx, ok := ix.byComputed[h]; ok {
			s.Matched++
			anchored[idx] = true
			ca.Finding, ca.LegacyRecords = "matched", []int{idx + 1}
			ca.Reason = fmt.Sprintf("matches legacy record %d (%s, %s)", idx+1, legacyText(r.cfg.Legacy[idx].Actor), legacyText(r.cfg.Legacy[idx].Audit.Timestamp))
			continue
		}
		if idx, ok := ix.byStated[h]; ok {
			s.Tampered++
			anchored[idx] = true
			ca.Finding = "tampered"
			ca.Reason = fmt.Sprintf("legacy record %d states this hash but its content no longer hashes to it", idx+1)
			r.tamperedAlert(idx, ca.TxHash)
			continue
		}
		s.NoRecord++
		ca.Finding = "without_record"
		ca.Reason = "no imported legacy record has this hash"
	}
	s.Unanchored = len(r.cfg.Legacy) - len(anchored)
	r.rep.Legacy = s
	r.rep.OnChain = append(r.rep.OnChain, anchors...)
}

// tamperedAlert raises legacy_tampered for record idx, anchored in tx.
func (r *reconciler) tamperedAlert(idx int, tx string) {
	rec := r.cfg.Legacy[idx]
	r.alert(Alert{Kind: AlertLegacyTampered, TxHash: tx, Message: fmt.Sprintf("legacy record %d (%s, %s, %s) states current_hash %s, which is anchored in tx %s, but its content hashes to something else: the record was changed after it was anchored", idx+1, legacyText(rec.Actor), legacyText(rec.Action), legacyText(rec.Audit.Timestamp), rec.Audit.CurrentHash, tx)})
}
