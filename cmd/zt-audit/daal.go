package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
	daal "github.com/zt-infra/ztlog/verifier/daal"
	"github.com/zt-infra/ztlog/verifier/daal/ethrpc"
)

const daalUsage = `zt-audit daal: audit the log's anchors on the DAAL contract (see DAAL.md)

usage:
  zt-audit daal check  --rpc URL --contract ADDR --sender ADDR --log URL|DIR --log-key KEY [flags]
        every anchor of the sender on chain must be a prefix of the log's tree;
        alerts for split views, a wrong contract, anchoring gaps, tampered legacy records
  zt-audit daal prove  --index N --rpc URL --contract ADDR --sender ADDR --log URL|DIR --log-key KEY [--out FILE]
        the DAAL proof of one action: its inclusion in an anchored tree, and the anchor's transaction
  zt-audit daal verify PROOF --log-key KEY --chain-id ID --contract ADDR --sender ADDR [--receipt DUMP]
        verify a DAAL proof offline (optionally against a receipt dump you fetched yourself)
  zt-audit daal evidence FILE --log-key KEY --chain-id ID --contract ADDR --sender ADDR
        verify a split_view alert's evidence offline (the alert JSON line, or its evidence object)
  zt-audit daal dump   --rpc URL --tx HASH [--out FILE]
        write the receipt dump of a transaction (eth_getTransactionByHash + eth_getTransactionReceipt)
`

func runDAAL(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, daalUsage)
		if len(args) == 0 {
			return errors.New("daal needs a subcommand")
		}
		return nil
	}
	switch args[0] {
	case "check":
		return runDAALCheck(ctx, args[1:])
	case "prove":
		return runDAALProve(ctx, args[1:])
	case "verify":
		return runDAALVerify(args[1:])
	case "dump":
		return runDAALDump(ctx, args[1:])
	case "evidence":
		return runDAALEvidence(args[1:])
	}
	return fmt.Errorf("unknown daal subcommand %q\n\n%s", args[0], daalUsage)
}

type chainFlags struct {
	rpc, contract, sender, logLoc, logKey string
	fromBlock, blockStep                  uint64
}

func (f *chainFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.rpc, "rpc", "", "JSON-RPC endpoint of the chain")
	fs.StringVar(&f.contract, "contract", "", "DAALog contract address")
	fs.StringVar(&f.sender, "sender", "", "the log's anchoring sender address")
	fs.StringVar(&f.logLoc, "log", "", "the log: URL (http://host:port/log/) or POSIX storage directory")
	fs.StringVar(&f.logKey, "log-key", "", "the log's checkpoint verifier key, or a file holding it")
	fs.Uint64Var(&f.fromBlock, "from-block", 0, "first block to scan (the contract's deployment block)")
	fs.Uint64Var(&f.blockStep, "block-step", 10_000, "most blocks per event query")
}

func (f *chainFlags) config(ctx context.Context) (daal.ReconcileConfig, error) {
	var cfg daal.ReconcileConfig
	if f.logLoc == "" {
		return cfg, errors.New("--log is required")
	}
	vkey, err := daal.LoadVerifierKey(f.logKey)
	if err != nil {
		return cfg, fmt.Errorf("--log-key: %w", err)
	}
	src, err := openLog(ctx, f.logLoc)
	if err != nil {
		return cfg, err
	}
	tree, err := daal.NewTree(src, vkey)
	if err != nil {
		return cfg, err
	}
	sender, err := daal.ParseAddress("--sender", f.sender)
	if err != nil {
		return cfg, err
	}
	contract, err := daal.ParseAddress("--contract", f.contract)
	if err != nil {
		return cfg, err
	}
	if f.rpc == "" {
		return cfg, errors.New("--rpc is required")
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	chain, err := ethrpc.Dial(dctx, f.rpc, contract)
	if err != nil {
		return cfg, err
	}
	return daal.ReconcileConfig{Tree: tree, Chain: chain, Sender: sender, FromBlock: f.fromBlock, BlockStep: f.blockStep,
		ExpectedCodeHash: daalog.RuntimeCodeHash, Now: time.Now}, nil
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	return fs.Parse(args)
}

func runDAALCheck(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("daal check", flag.ContinueOnError)
	var f chainFlags
	f.register(fs)
	maxGap := fs.Duration("max-gap", daal.DefaultMaxGap, "alert when the log grew and no anchor is newer than this")
	expect := fs.String("expect-code-hash", "", "expected contract runtime code hash (default: ztlog's compiled DAALog)")
	legacy := fs.String("legacy", "", "legacy ZT audit records to match legacy logAction anchors to")
	legacySenders := fs.String("legacy-sender", "", "comma-separated addresses whose logAction records are legacy anchors")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := f.config(ctx)
	if err != nil {
		return err
	}
	cfg.MaxGap = *maxGap
	if *expect != "" {
		if cfg.ExpectedCodeHash, err = daal.ParseCodeHash("--expect-code-hash", *expect); err != nil {
			return err
		}
	}
	if *legacy != "" {
		if cfg.Legacy, err = daal.ReadLegacyRecords(*legacy); err != nil {
			return fmt.Errorf("--legacy: %w", err)
		}
	}
	if cfg.LegacySenders, err = daal.ParseAddresses("--legacy-sender", *legacySenders); err != nil {
		return err
	}
	rep, err := daal.Reconcile(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printCheckReport(os.Stdout, rep)
	}
	if len(rep.Alerts) > 0 {
		return cli.Fail(fmt.Errorf("%d alert(s), first: [%s] %s", len(rep.Alerts), rep.Alerts[0].Kind, rep.Alerts[0].Message))
	}
	return nil
}

// printCheckReport writes a reconciliation report for a person.
func printCheckReport(w io.Writer, rep *daal.Report) {
	counts := rep.Verdicts()
	fmt.Fprintf(w, "log %s: size %d, root %s\n", rep.Origin, rep.Checkpoint.Size, rep.Checkpoint.Root)
	fmt.Fprintf(w, "contract %s on chain %d: code hash %s (%s)\n", rep.Contract, rep.ChainID, rep.Code.Hash, map[bool]string{true: "as expected", false: "NOT the expected " + rep.Code.Expected}[rep.Code.OK])
	fmt.Fprintf(w, "anchors of %s: %d verified, %d split-view, %d unexpected; %d legacy, %d foreign\n", rep.Sender,
		counts["verified"], counts["split_view"], counts["unexpected"], counts["legacy"], counts["foreign"])
	for _, ca := range rep.OnChain {
		if ca.Verdict == "verified" {
			fmt.Fprintf(w, "  verified  size %-8d block %-8d record %-6s tx %s\n", ca.Size, ca.Block, ca.RecordID, ca.TxHash)
		}
	}
	rep.WriteFindings(w)
	for _, a := range rep.Alerts {
		fmt.Fprintf(w, "ALERT [%s] %s\n", a.Kind, a.Message)
	}
}

func runDAALProve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("daal prove", flag.ContinueOnError)
	var f chainFlags
	f.register(fs)
	index := fs.Int64("index", -1, "the entry (action) index to prove")
	ledger := fs.String("ledger", "", "the anchor ledger directory (DATA_DIR/daal), to use the anchored checkpoint itself")
	out := fs.String("out", "", "write the proof here (default: stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *index < 0 {
		return errors.New("--index is required")
	}
	cfg, err := f.config(ctx)
	if err != nil {
		return err
	}
	if *ledger != "" {
		raw, err := os.ReadFile(filepath.Join(*ledger, daal.LedgerFile))
		if err != nil {
			return fmt.Errorf("--ledger: %w", err)
		}
		anchors, _, err := daal.ParseLedger(raw)
		if err != nil {
			return fmt.Errorf("--ledger %s: %w", *ledger, err)
		}
		cfg.Ledger = ledgerSnapshot(anchors)
	}
	p, err := daal.Prove(ctx, cfg, uint64(*index))
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = os.Stdout.Write(p.Marshal())
		return err
	}
	return os.WriteFile(*out, p.Marshal(), 0o644)
}

// trustFlags are what an auditor trusts: the log's key, the chain, the
// contract and the anchoring sender.
type trustFlags struct {
	logKey, contract, sender *string
	chainID                  *uint64
}

func (t *trustFlags) register(fs *flag.FlagSet) {
	t.logKey = fs.String("log-key", "", "the log's checkpoint verifier key, or a file holding it")
	t.chainID = fs.Uint64("chain-id", 0, "the chain the anchor must be on")
	t.contract = fs.String("contract", "", "the DAALog contract the anchor must be in")
	t.sender = fs.String("sender", "", "the log's anchoring sender")
}

func (t *trustFlags) trust() (daal.Trust, error) {
	vkey, err := daal.LoadVerifierKey(*t.logKey)
	if err != nil {
		return daal.Trust{}, fmt.Errorf("--log-key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return daal.Trust{}, err
	}
	if *t.chainID == 0 {
		return daal.Trust{}, errors.New("--chain-id is required")
	}
	c, err := daal.ParseAddress("--contract", *t.contract)
	if err != nil {
		return daal.Trust{}, err
	}
	s, err := daal.ParseAddress("--sender", *t.sender)
	if err != nil {
		return daal.Trust{}, err
	}
	return daal.Trust{LogKey: v, ChainID: *t.chainID, Contract: c, Sender: s}, nil
}

// fileAndFlags parses flags with one file argument before or after them.
func fileAndFlags(fs *flag.FlagSet, args []string, what string) (string, error) {
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return "", err
	}
	if file == "" && fs.NArg() == 1 {
		file = fs.Arg(0)
	} else if fs.NArg() > 0 || file == "" {
		return "", fmt.Errorf("%s takes one %s file", fs.Name(), what)
	}
	return file, nil
}

func runDAALEvidence(args []string) error {
	fs := flag.NewFlagSet("daal evidence", flag.ContinueOnError)
	var tf trustFlags
	tf.register(fs)
	file, err := fileAndFlags(fs, args, "evidence")
	if err != nil {
		return err
	}
	trust, err := tf.trust()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc struct {
		Kind     string          `json:"kind"`
		Evidence json.RawMessage `json:"evidence"`
	}
	ev := new(daal.Evidence)
	if err := json.Unmarshal(raw, &doc); err == nil && doc.Evidence != nil {
		raw = doc.Evidence
	}
	if err := json.Unmarshal(raw, ev); err != nil {
		return fmt.Errorf("%s: not DAAL split-view evidence: %w", file, err)
	}
	if err := daal.VerifyEvidence(ev, trust); err != nil {
		return cli.Fail(err)
	}
	fmt.Printf("PROVEN: %s, the anchoring sender of %s, put root %s for size %d on chain (tx %s),\nbut the log's signed tree has root %s at that size.\n",
		trust.Sender.Hex(), trust.LogKey.Name(), ev.OnChainRoot, ev.OnChainSize, ev.Receipt.TxHash().Hex(), ev.LogRoot)
	return nil
}

func runDAALVerify(args []string) error {
	fs := flag.NewFlagSet("daal verify", flag.ContinueOnError)
	var tf trustFlags
	tf.register(fs)
	receipt := fs.String("receipt", "", "a receipt dump you fetched yourself (zt-audit daal dump), used instead of the proof's")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	file, err := fileAndFlags(fs, args, "proof")
	if err != nil {
		return err
	}
	trust, err := tf.trust()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	p, err := daal.ParseProof(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	var dump *daal.ReceiptDump
	if *receipt != "" {
		rraw, err := os.ReadFile(*receipt)
		if err != nil {
			return err
		}
		if dump, err = daal.ParseReceiptDump(rraw); err != nil {
			return fmt.Errorf("%s: %w", *receipt, err)
		}
	}
	verr := daal.VerifyProof(p, trust, dump)
	if *asJSON {
		out := map[string]any{"valid": verr == nil, "index": p.Index, "origin": p.Origin, "anchor": p.Anchor}
		if verr != nil {
			out["error"] = verr.Error()
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Println(string(b))
	}
	if verr != nil {
		return cli.Fail(verr)
	}
	if !*asJSON {
		a := p.Anchor
		fmt.Printf(`VERIFIED: entry %d of %s
  is in the tree of %d entries with root %s (inclusion proof),
  which is a prefix of the log's signed checkpoint (consistency proof),
  and was anchored by %s in DAALog %s on chain %d:
  tx %s, block %d (%s), record %d, status 1.
Check once, against a node you trust, that block %d has hash %s.
`, p.Index, p.Origin, a.Size, a.Root, a.Sender, a.Contract, a.ChainID, a.TxHash, a.Block, a.BlockHash, a.RecordID, a.Block, a.BlockHash)
	}
	return nil
}

func runDAALDump(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("daal dump", flag.ContinueOnError)
	rpcURL := fs.String("rpc", "", "JSON-RPC endpoint of the chain")
	tx := fs.String("tx", "", "transaction hash")
	out := fs.String("out", "", "write the dump here (default: stdout)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	h := common.FromHex(*tx)
	if len(h) != 32 || *rpcURL == "" {
		return errors.New("dump needs --rpc and --tx (a 32-byte 0x-hex transaction hash)")
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// Any address will do: the dump does not look at the contract.
	chain, err := ethrpc.Dial(dctx, *rpcURL, common.HexToAddress("0x0000000000000000000000000000000000000001"))
	if err != nil {
		return err
	}
	d, err := chain.Dump(dctx, common.BytesToHash(h))
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = os.Stdout.Write(d.Marshal())
		return err
	}
	return os.WriteFile(*out, d.Marshal(), 0o644)
}

// ledgerSnapshot is an anchor ledger as read from its file (the operator's
// DATA_DIR/daal), without taking it: Prove only looks up the checkpoint
// an anchor recorded.
type ledgerSnapshot []*daal.Anchor

func (l ledgerSnapshot) Anchors() []daal.Anchor {
	out := make([]daal.Anchor, len(l))
	for i, a := range l {
		out[i] = a.Clone()
	}
	return out
}

func (l ledgerSnapshot) Put(daal.Anchor) error {
	return errors.New("the anchor ledger is read only here")
}
