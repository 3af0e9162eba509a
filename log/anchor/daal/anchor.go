package daal

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

// Anchoring defaults.
const (
	// DefaultInterval is the least time between two anchors.
	DefaultInterval = 10 * time.Minute
	// DefaultPoll is how often Run looks at the log and at an anchor in
	// flight.
	DefaultPoll = 15 * time.Second
	// DefaultMinNewEntries is how many entries the log must have grown by
	// since the last anchor before a new one is made.
	DefaultMinNewEntries = 1
	// DefaultConfirmations is how deep a transaction's block must be
	// before its anchor is confirmed (1: the block holding it).
	DefaultConfirmations = 2
	// DefaultResubmitAfter is how long a transaction may stay unmined
	// before it is replaced by one with higher fees (same nonce).
	DefaultResubmitAfter = 3 * time.Minute
	// DefaultFeeBumpPercent raises both fee caps of a replacement (nodes
	// require at least 10%).
	DefaultFeeBumpPercent = 25
	// backoff bounds for failed broadcasts.
	minBackoff = 2 * time.Second
	maxBackoff = 5 * time.Minute
)

// AnchorConfig configures an Anchorer. Tree, Chain, Signer and Ledger are
// required.
type AnchorConfig struct {
	Tree   *vdaal.Tree
	Chain  *Chain
	Signer Signer
	Ledger *Ledger
	// Interval, Poll, MinNewEntries, Confirmations, ResubmitAfter and
	// FeeBumpPercent default to the Default* constants when zero.
	Interval       time.Duration
	Poll           time.Duration
	MinNewEntries  uint64
	Confirmations  uint64
	ResubmitAfter  time.Duration
	FeeBumpPercent int
	// GasLimit, when set, is used instead of an estimate.
	GasLimit uint64
	// MaxFeeCap, when set, bounds the fee cap per gas (wei); an anchor
	// that would need more waits instead.
	MaxFeeCap *big.Int
	// Reconcile, when set, is run by Run every ReconcileEvery, between two
	// steps (never concurrently with one), and its report handed to
	// OnReport.
	Reconcile      *vdaal.ReconcileConfig
	ReconcileEvery time.Duration
	OnReport       func(*vdaal.Report)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives structured logs (default slog.Default()).
	Logger *slog.Logger

	// crash, in tests, is called at named points and stops Step there as
	// a killed process would.
	crash func(point string) error
}

// Anchorer anchors the log's checkpoints on chain. It never blocks anything
// but itself: the log and the decision path do not wait for it.
type Anchorer struct {
	cfg AnchorConfig
	log *slog.Logger
}

// NewAnchorer checks the configuration.
func NewAnchorer(cfg AnchorConfig) (*Anchorer, error) {
	if cfg.Tree == nil || cfg.Chain == nil || cfg.Signer == nil || cfg.Ledger == nil {
		return nil, errors.New("daal: the anchorer needs a log, a chain, a signer and a ledger")
	}
	// A zero setting takes its default.
	cfg.Interval = cmp.Or(cfg.Interval, DefaultInterval)
	cfg.Poll = cmp.Or(cfg.Poll, DefaultPoll)
	cfg.MinNewEntries = cmp.Or(cfg.MinNewEntries, DefaultMinNewEntries)
	cfg.Confirmations = cmp.Or(cfg.Confirmations, DefaultConfirmations)
	cfg.ResubmitAfter = cmp.Or(cfg.ResubmitAfter, DefaultResubmitAfter)
	cfg.FeeBumpPercent = cmp.Or(cfg.FeeBumpPercent, DefaultFeeBumpPercent)
	if cfg.FeeBumpPercent < 10 {
		return nil, fmt.Errorf("daal: a fee bump of %d%% is below the 10%% nodes require for a replacement", cfg.FeeBumpPercent)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Anchorer{cfg: cfg, log: cfg.Logger.With("component", "daal", "contract", cfg.Chain.Contract().Hex())}, nil
}

// Run calls Step every Poll until ctx ends. Errors are logged and retried;
// they never stop the loop.
func (a *Anchorer) Run(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Poll)
	defer t.Stop()
	var lastReconcile time.Time
	for {
		if err := a.Step(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("anchoring step", "error", err)
		}
		if rc := a.cfg.Reconcile; rc != nil && a.cfg.ReconcileEvery > 0 && time.Since(lastReconcile) >= a.cfg.ReconcileEvery {
			lastReconcile = time.Now()
			rep, err := vdaal.Reconcile(ctx, *rc)
			switch {
			case err != nil && ctx.Err() == nil:
				a.log.Warn("reconcile", "error", err)
			case err == nil:
				for _, al := range rep.Alerts {
					a.log.Error("DAAL alert", "alert", al.Kind, "anchor", al.Anchor, "tx", al.TxHash, "message", al.Message)
				}
				if a.cfg.OnReport != nil {
					a.cfg.OnReport(rep)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// SetReconcile makes Run reconcile with cfg every interval (see
// AnchorConfig.Reconcile). Call it before Run.
func (a *Anchorer) SetReconcile(cfg vdaal.ReconcileConfig, every time.Duration, onReport func(*vdaal.Report)) {
	a.cfg.Reconcile, a.cfg.ReconcileEvery, a.cfg.OnReport = &cfg, every, onReport
}

func (a *Anchorer) hit(point string) error {
	if a.cfg.crash != nil {
		return a.cfg.crash(point)
	}
	return nil
}

// Step advances the anchor in flight, if any, by one transition; otherwise
// it queues the log's latest checkpoint when the interval has passed and the
// log has grown by MinNewEntries, and submits it. At most one anchor is in
// flight at a time, so nonces never race.
func (a *Anchorer) Step(ctx context.Context) error {
	for _, an := range a.cfg.Ledger.Anchors() {
		if an.InFlight() {
			return a.advance(ctx, an)
		}
	}
	an, err := a.queue(ctx)
	if err != nil || an == nil {
		return err
	}
	return a.advance(ctx, *an)
}

// queue records the latest checkpoint as a new anchor if it is due.
func (a *Anchorer) queue(ctx context.Context) (*vdaal.Anchor, error) {
	cp, err := a.cfg.Tree.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	var last *vdaal.Anchor
	for _, an := range a.cfg.Ledger.Anchors() {
		if an.State != vdaal.Failed && (last == nil || an.Size > last.Size) {
			an := an
			last = &an
		}
	}
	now := a.cfg.Now()
	if last != nil {
		switch {
		case cp.Size < last.Size:
			return nil, fmt.Errorf("the log's checkpoint (size %d) is smaller than the last anchored (%d): not anchoring; reconcile and investigate", cp.Size, last.Size)
		case cp.Size-last.Size < a.cfg.MinNewEntries || cp.Size == last.Size:
			return nil, nil
		case now.Sub(last.QueuedAt) < a.cfg.Interval:
			return nil, nil
		}
	} else if cp.Size < a.cfg.MinNewEntries || cp.Size == 0 {
		return nil, nil
	}
	meta, err := vdaal.MetadataFor(cp.Note, cp.Size)
	if err != nil {
		return nil, err
	}
	an, err := a.cfg.Ledger.Add(vdaal.Anchor{
		State:       vdaal.Queued,
		Attestation: vdaal.Pending,
		Origin:      cp.Origin,
		Size:        cp.Size,
		Root:        hexutil.Encode(cp.Root),
		Checkpoint:  string(cp.Note),
		Metadata:    meta.Marshal(),
		ChainID:     a.cfg.Chain.ChainID().Uint64(),
		Contract:    a.cfg.Chain.Contract().Hex(),
		Sender:      a.cfg.Signer.Address().Hex(),
		QueuedAt:    now,
		UpdatedAt:   now,
	})
	if err != nil {
		return nil, err
	}
	a.log.Info("anchor queued", "anchor", an.ID, "size", an.Size, "root", an.Root)
	return &an, nil
}

func (a *Anchorer) advance(ctx context.Context, an vdaal.Anchor) error {
	switch an.State {
	case vdaal.Queued:
		return a.submit(ctx, an)
	case vdaal.Submitted:
		return a.track(ctx, an)
	}
	return nil
}

// submit signs the first transaction of a queued anchor, records it, and
// only then broadcasts it: a crash in between leaves a recorded
// transaction that the next Step broadcasts again, never a second one.
func (a *Anchorer) submit(ctx context.Context, an vdaal.Anchor) error {
	c := a.cfg.Chain.Client()
	from := a.cfg.Signer.Address()
	nonce, err := c.PendingNonceAt(ctx, from)
	if err != nil {
		return fmt.Errorf("read the sender's nonce: %w", err)
	}
	tx, err := a.sign(ctx, an, nonce, nil)
	if err != nil {
		return err
	}
	now := a.cfg.Now()
	an.State = vdaal.Submitted
	an.Nonce = &nonce
	an.Txs = append(an.Txs, tx)
	an.SubmittedAt = now
	an.UpdatedAt = now
	if err := a.cfg.Ledger.Put(an); err != nil {
		return err
	}
	a.log.Info("anchor submitted", "anchor", an.ID, "tx", tx.Hash, "nonce", nonce)
	if err := a.hit("after-record-before-send"); err != nil {
		return err
	}
	return a.broadcast(ctx, an)
}

// sign builds and signs a logBatch transaction; prev, when set, is the
// transaction it replaces (fees are raised by FeeBumpPercent).
func (a *Anchorer) sign(ctx context.Context, an vdaal.Anchor, nonce uint64, prev *vdaal.Tx) (vdaal.Tx, error) {
	c := a.cfg.Chain.Client()
	root, err := hexutil.Decode(an.Root)
	if err != nil || len(root) != 32 {
		return vdaal.Tx{}, fmt.Errorf("anchor %d: bad root %q", an.ID, an.Root)
	}
	data, err := daalog.PackLogBatch(an.Origin, [32]byte(root), an.Metadata)
	if err != nil {
		return vdaal.Tx{}, err
	}
	to := a.cfg.Chain.Contract()
	gas := a.cfg.GasLimit
	if gas == 0 {
		est, err := c.EstimateGas(ctx, ethereum.CallMsg{From: a.cfg.Signer.Address(), To: &to, Data: data})
		if err != nil {
			return vdaal.Tx{}, fmt.Errorf("estimate gas for logBatch: %w", err)
		}
		gas = est + est/4
	}
	tip, err := c.SuggestGasTipCap(ctx)
	if err != nil {
		return vdaal.Tx{}, fmt.Errorf("read the gas tip: %w", err)
	}
	head, err := c.HeaderByNumber(ctx, nil)
	if err != nil {
		return vdaal.Tx{}, fmt.Errorf("read the head block: %w", err)
	}
	base := head.BaseFee
	if base == nil {
		base = big.NewInt(params.InitialBaseFee)
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	if prev != nil {
		bump := func(s string) *big.Int {
			v, _ := new(big.Int).SetString(s, 10)
			if v == nil {
				v = new(big.Int)
			}
			v.Mul(v, big.NewInt(int64(100+a.cfg.FeeBumpPercent)))
			return v.Div(v, big.NewInt(100))
		}
		tip = bigMax(tip, bump(prev.TipCap))
		feeCap = bigMax(feeCap, bump(prev.FeeCap))
		if feeCap.Cmp(tip) < 0 {
			feeCap = new(big.Int).Set(tip)
		}
	}
	if a.cfg.MaxFeeCap != nil && feeCap.Cmp(a.cfg.MaxFeeCap) > 0 {
		return vdaal.Tx{}, fmt.Errorf("anchor %d needs a fee cap of %s wei/gas, above the configured maximum %s; waiting", an.ID, feeCap, a.cfg.MaxFeeCap)
	}
	unsigned := types.NewTx(&types.DynamicFeeTx{
		ChainID:   a.cfg.Chain.ChainID(),
		Nonce:     nonce,
		GasTipCap: tip,
		GasFeeCap: feeCap,
		Gas:       gas,
		To:        &to,
		Data:      data,
	})
	signed, err := a.cfg.Signer.SignTx(ctx, unsigned, a.cfg.Chain.ChainID())
	if err != nil {
		return vdaal.Tx{}, fmt.Errorf("sign the anchor transaction: %w", err)
	}
	if from, err := a.cfg.Chain.sender(signed); err != nil || from != a.cfg.Signer.Address() {
		return vdaal.Tx{}, fmt.Errorf("the signer produced a transaction from %s, not from its address %s", from, a.cfg.Signer.Address())
	}
	raw, err := signed.MarshalBinary()
	if err != nil {
		return vdaal.Tx{}, err
	}
	return vdaal.Tx{Hash: signed.Hash().Hex(), Raw: hexutil.Encode(raw), FeeCap: feeCap.String(), TipCap: tip.String(), Gas: gas, Signed: a.cfg.Now()}, nil
}

func bigMax(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

// broadcast sends the newest transaction of an anchor. A node that already
// has it is fine; other errors are retried with exponential backoff.
func (a *Anchorer) broadcast(ctx context.Context, an vdaal.Anchor) error {
	now := a.cfg.Now()
	if now.Before(an.NextTry) {
		return nil
	}
	last := an.Txs[len(an.Txs)-1]
	var tx types.Transaction
	if err := tx.UnmarshalBinary(common.FromHex(last.Raw)); err != nil {
		return fmt.Errorf("anchor %d: recorded transaction does not decode: %w", an.ID, err)
	}
	err := a.cfg.Chain.Client().SendTransaction(ctx, &tx)
	if err == nil || strings.Contains(err.Error(), "already known") {
		if an.SendErrors > 0 {
			an.SendErrors, an.NextTry, an.UpdatedAt = 0, time.Time{}, now
			return a.cfg.Ledger.Put(an)
		}
		return a.hit("after-send")
	}
	an.SendErrors++
	backoff := min(maxBackoff, minBackoff<<min(an.SendErrors-1, 16))
	an.NextTry = now.Add(backoff)
	an.Reason = "broadcast: " + err.Error()
	an.UpdatedAt = now
	if perr := a.cfg.Ledger.Put(an); perr != nil {
		return perr
	}
	return fmt.Errorf("anchor %d: broadcast %s (retry in %s): %w", an.ID, last.Hash, backoff, err)
}

// track looks for a mined transaction of a submitted anchor.
func (a *Anchorer) track(ctx context.Context, an vdaal.Anchor) error {
	c := a.cfg.Chain.Client()
	rc, tx, err := a.findReceipt(ctx, an)
	if err != nil {
		return err
	}
	now := a.cfg.Now()
	if rc != nil {
		head, err := c.BlockNumber(ctx)
		if err != nil {
			return fmt.Errorf("read the block number: %w", err)
		}
		block := rc.BlockNumber.Uint64()
		an.TxHash, an.Block, an.BlockHash = tx.Hash, block, rc.BlockHash.Hex()
		if head+1 < block+a.cfg.Confirmations {
			return nil // mined, not deep enough yet
		}
		an.UpdatedAt = now
		if rc.Status != types.ReceiptStatusSuccessful {
			an.State, an.Attestation = vdaal.Failed, vdaal.AttestFailed
			an.Reason = fmt.Sprintf("transaction %s reverted (receipt status 0) in block %d", tx.Hash, block)
			a.log.Error("anchor failed", "anchor", an.ID, "reason", an.Reason)
			return a.cfg.Ledger.Put(an)
		}
		an.State, an.ConfirmedAt, an.Reason = vdaal.Confirmed, now, ""
		an.SendErrors, an.NextTry = 0, time.Time{}
		for _, l := range rc.Logs {
			if l.Address != a.cfg.Chain.Contract() {
				continue
			}
			if ev, err := vdaal.ParseActionLogged(l); err == nil && ev.RecordID.IsUint64() {
				an.RecordID = ev.RecordID.Uint64()
			}
		}
		a.log.Info("anchor confirmed", "anchor", an.ID, "tx", an.TxHash, "block", block, "record", an.RecordID)
		return a.cfg.Ledger.Put(an)
	}
	// Not mined. Has the nonce been used by something else?
	mined, err := c.NonceAt(ctx, a.cfg.Signer.Address(), nil)
	if err != nil {
		return fmt.Errorf("read the sender's nonce: %w", err)
	}
	if mined > *an.Nonce {
		// Look once more: the receipt may have landed between the calls.
		if rc, _, err := a.findReceipt(ctx, an); err != nil || rc != nil {
			return err
		}
		an.State, an.Attestation, an.UpdatedAt = vdaal.Failed, vdaal.AttestFailed, now
		an.Reason = fmt.Sprintf("nonce %d was used by a transaction that is not one of this anchor's; is another process sending from %s?", *an.Nonce, a.cfg.Signer.Address())
		a.log.Error("anchor failed", "anchor", an.ID, "reason", an.Reason)
		return a.cfg.Ledger.Put(an)
	}
	last := an.Txs[len(an.Txs)-1]
	if now.Sub(last.Signed) >= a.cfg.ResubmitAfter {
		tx, err := a.sign(ctx, an, *an.Nonce, &last)
		if err != nil {
			return err
		}
		an.Txs = append(an.Txs, tx)
		an.SendErrors, an.NextTry, an.UpdatedAt = 0, time.Time{}, now
		if err := a.cfg.Ledger.Put(an); err != nil {
			return err
		}
		a.log.Warn("anchor transaction replaced with higher fees", "anchor", an.ID, "tx", tx.Hash, "fee_cap", tx.FeeCap, "replaces", last.Hash)
		if err := a.hit("after-record-before-send"); err != nil {
			return err
		}
		return a.broadcast(ctx, an)
	}
	// Make sure the node still has the newest transaction (a restart may
	// have happened before it was sent, or the node may have dropped it).
	if _, _, err := c.TransactionByHash(ctx, common.HexToHash(last.Hash)); errors.Is(err, ethereum.NotFound) {
		return a.broadcast(ctx, an)
	} else if err != nil {
		return fmt.Errorf("look up %s: %w", last.Hash, err)
	}
	return nil
}

// findReceipt returns the receipt of whichever of an anchor's transactions
// was mined, newest first.
func (a *Anchorer) findReceipt(ctx context.Context, an vdaal.Anchor) (*types.Receipt, *vdaal.Tx, error) {
	for i := len(an.Txs) - 1; i >= 0; i-- {
		rc, err := a.cfg.Chain.Client().TransactionReceipt(ctx, common.HexToHash(an.Txs[i].Hash))
		if errors.Is(err, ethereum.NotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read the receipt of %s: %w", an.Txs[i].Hash, err)
		}
		return rc, &an.Txs[i], nil
	}
	return nil, nil, nil
}
