package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zt-infra/ztlog/log/anchor/daal"
	"github.com/zt-infra/ztlog/log/anchor/daal/daalog"
	vdaal "github.com/zt-infra/ztlog/verifier/daal"
)

const daalUsage = `ztlog daal: anchor the log's checkpoints on the DAAL contract (see DAAL.md)

usage:
  ztlog daal keygen    --out FILE --passphrase-file F   create the anchoring key (keystore v3); prints its address
  ztlog daal deploy    --rpc URL --keystore FILE --passphrase-file F
                                                       deploy ztlog's DAALog; prints its address and block
  ztlog daal anchor    [flags]                          anchor periodically (--once: one step), reconcile on a schedule
  ztlog daal reconcile [flags]                          check every anchor and the chain against the log; exit 1 on alerts
  ztlog daal status    --data-dir D                     print the anchor ledger (no network)

Run a subcommand with -h for its flags. Flags can also be given as ZTLOG_<FLAG>
environment variables or keys of a JSON --config file.
`

func runDAAL(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, daalUsage)
		return usageError{errors.New("daal needs a subcommand")}
	}
	switch args[0] {
	case "keygen":
		return runDAALKeygen(args[1:])
	case "deploy":
		return runDAALDeploy(ctx, args[1:])
	case "anchor":
		return runDAALAnchor(ctx, args[1:])
	case "reconcile":
		return runDAALReconcile(ctx, args[1:])
	case "status":
		return runDAALStatus(args[1:])
	case "-h", "--help", "help":
		fmt.Print(daalUsage)
		return nil
	}
	return usageError{fmt.Errorf("unknown daal subcommand %q\n\n%s", args[0], daalUsage)}
}

// daalFlags are the flags the daal subcommands share.
type daalFlags struct {
	config         string
	rpc            string
	contract       string
	keystore       string
	passphraseFile string
	dataDir        string
	logLoc         string
	logKey         string
	fromBlock      uint64
	blockStep      uint64
	stuckAfter     time.Duration
	maxGap         time.Duration
	expectCode     string
	logLevel       string
}

func (f *daalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "JSON file of settings (keys are flag names)")
	fs.StringVar(&f.rpc, "rpc", "", "JSON-RPC endpoint of the chain (http(s)://, ws(s):// or an IPC path)")
	fs.StringVar(&f.contract, "contract", "", "address of the DAALog contract (from `ztlog daal deploy`)")
	fs.StringVar(&f.keystore, "keystore", "", "anchoring key, a keystore v3 file (from `ztlog daal keygen` or geth)")
	fs.StringVar(&f.passphraseFile, "passphrase-file", "", "file holding the keystore's passphrase")
	fs.StringVar(&f.dataDir, "data-dir", "", "ztlog's data directory; the anchor ledger is kept in DIR/daal")
	fs.StringVar(&f.logLoc, "log", "", "the log: its URL (http://host:port/log/) or POSIX storage directory (default: the data dir's log)")
	fs.StringVar(&f.logKey, "log-key", "", "the log's checkpoint verifier key, or a file holding it")
	fs.Uint64Var(&f.fromBlock, "from-block", 0, "first block to scan for the contract's events (its deployment block)")
	fs.Uint64Var(&f.blockStep, "block-step", 10_000, "most blocks per event query (public endpoints cap it)")
	fs.DurationVar(&f.stuckAfter, "stuck-after", vdaal.DefaultStuckAfter, "alert when an anchor is pending longer than this")
	fs.DurationVar(&f.maxGap, "max-gap", vdaal.DefaultMaxGap, "alert when the log grew and no anchor is newer than this")
	fs.StringVar(&f.expectCode, "expect-code-hash", "", "expected contract runtime code hash (default: ztlog's compiled DAALog)")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
}

func (f *daalFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("%s takes no arguments, got %q", fs.Name(), fs.Args())}
	}
	return applyEnvAndConfig(fs, f.config)
}

func (f *daalFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", f.logLevel)}
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level})), nil
}

func (f *daalFlags) ledgerDir() (string, error) {
	if f.dataDir == "" {
		return "", usageError{errors.New("--data-dir is required: the anchor ledger lives in DIR/daal")}
	}
	return filepath.Join(f.dataDir, "daal"), nil
}

// tree opens the log: --log, or the data dir's log (DIR itself when it
// holds a checkpoint, as `ztlog serve --data-dir DIR` writes it; DIR/log
// as `ztlog dev` does).
func (f *daalFlags) tree() (*vdaal.Tree, error) {
	loc := f.logLoc
	if loc == "" && f.dataDir != "" {
		loc = filepath.Join(f.dataDir, "log")
		if _, err := os.Stat(filepath.Join(f.dataDir, "checkpoint")); err == nil {
			loc = f.dataDir
		}
	}
	if loc == "" {
		return nil, usageError{errors.New("--log (or --data-dir) is required")}
	}
	vkey, err := vdaal.LoadVerifierKey(f.logKey)
	if err != nil {
		return nil, usageError{fmt.Errorf("--log-key: %w", err)}
	}
	src, err := daal.OpenSource(loc)
	if err != nil {
		return nil, usageError{err}
	}
	return vdaal.NewTree(src, vkey)
}

func (f *daalFlags) chain(ctx context.Context) (*daal.Chain, error) {
	if f.rpc == "" {
		return nil, usageError{errors.New("--rpc is required: the chain's JSON-RPC endpoint")}
	}
	addr, err := vdaal.ParseAddress("--contract", f.contract)
	if err != nil {
		return nil, usageError{err}
	}
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return daal.Dial(dctx, f.rpc, addr)
}

func (f *daalFlags) signer() (*daal.KeySigner, error) {
	if f.keystore == "" {
		return nil, usageError{errors.New("--keystore is required: the anchoring key (create one with `ztlog daal keygen`)")}
	}
	if f.passphraseFile == "" {
		return nil, usageError{errors.New("--passphrase-file is required: the file holding the keystore's passphrase")}
	}
	return daal.LoadKeystore(f.keystore, f.passphraseFile)
}

func (f *daalFlags) reconcileConfig(tree *vdaal.Tree, chain *daal.Chain, sender common.Address, ledger *daal.Ledger) (vdaal.ReconcileConfig, error) {
	cfg := vdaal.ReconcileConfig{Tree: tree, Chain: chain, Sender: sender, FromBlock: f.fromBlock,
		BlockStep: f.blockStep, StuckAfter: f.stuckAfter, MaxGap: f.maxGap, ExpectedCodeHash: daalog.RuntimeCodeHash, Now: time.Now}
	if ledger != nil {
		cfg.Ledger = ledger
	}
	if f.expectCode != "" {
		h, err := vdaal.ParseCodeHash("--expect-code-hash", f.expectCode)
		if err != nil {
			return cfg, usageError{err}
		}
		cfg.ExpectedCodeHash = h
	}
	return cfg, nil
}

// open opens what daal anchor and daal reconcile work on: the log, the
// chain and the ledger's directory.
func (f *daalFlags) open(ctx context.Context) (*vdaal.Tree, *daal.Chain, string, error) {
	tree, err := f.tree()
	if err != nil {
		return nil, nil, "", err
	}
	dir, err := f.ledgerDir()
	if err != nil {
		return nil, nil, "", err
	}
	chain, err := f.chain(ctx)
	return tree, chain, dir, err
}

// sender is whose anchors are ours: --sender, or the --keystore's address.
func (f *daalFlags) sender(flagged string) (common.Address, error) {
	switch {
	case flagged != "":
		a, err := vdaal.ParseAddress("--sender", flagged)
		if err != nil {
			return a, usageError{err}
		}
		return a, nil
	case f.keystore != "":
		s, err := f.signer()
		if err != nil {
			return common.Address{}, err
		}
		return s.Address(), nil
	}
	return common.Address{}, usageError{errors.New("--sender (or --keystore) is required: whose anchors are ours")}
}

// addLegacy adds the --legacy records and --legacy-sender addresses to cfg.
func addLegacy(cfg *vdaal.ReconcileConfig, records, senders string) error {
	var err error
	if records != "" {
		if cfg.Legacy, err = vdaal.ReadLegacyRecords(records); err != nil {
			return usageError{fmt.Errorf("--legacy: %w", err)}
		}
	}
	if cfg.LegacySenders, err = vdaal.ParseAddresses("--legacy-sender", senders); err != nil {
		return usageError{err}
	}
	return nil
}

func runDAALKeygen(args []string) error {
	fs := flag.NewFlagSet("daal keygen", flag.ContinueOnError)
	out := fs.String("out", "", "keystore file to create (mode 0600; never overwritten)")
	pass := fs.String("passphrase-file", "", "file holding the passphrase that encrypts the key")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *out == "" || *pass == "" {
		return usageError{errors.New("daal keygen needs --out and --passphrase-file")}
	}
	addr, err := daal.WriteKeystore(*out, *pass, false)
	if err != nil {
		return err
	}
	fmt.Println(addr.Hex())
	return nil
}

func runDAALDeploy(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("daal deploy", flag.ContinueOnError)
	var f daalFlags
	f.register(fs)
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the deployment to be mined")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	s, err := f.signer()
	if err != nil {
		return err
	}
	if f.rpc == "" {
		return usageError{errors.New("--rpc is required")}
	}
	rc, err := rpc.DialContext(ctx, f.rpc)
	if err != nil {
		return err
	}
	defer rc.Close()
	dctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	d, err := daal.Deploy(dctx, rc, s, 2*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("contract   %s\ntx         %s\nblock      %d\ncode hash  %s\n\nAnchor with: ztlog daal anchor --contract %s --from-block %d ...\n",
		d.Contract.Hex(), d.TxHash.Hex(), d.Block, d.CodeHash.Hex(), d.Contract.Hex(), d.Block)
	return nil
}

func runDAALAnchor(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("daal anchor", flag.ContinueOnError)
	var f daalFlags
	f.register(fs)
	once := fs.Bool("once", false, "take one anchoring step and exit")
	interval := fs.Duration("interval", daal.DefaultInterval, "least time between two anchors")
	poll := fs.Duration("poll", daal.DefaultPoll, "how often to look at the log and at the anchor in flight")
	minNew := fs.Uint64("min-new-entries", daal.DefaultMinNewEntries, "entries the log must grow by before the next anchor")
	confs := fs.Uint64("confirmations", daal.DefaultConfirmations, "block depth at which an anchor is confirmed")
	resubmit := fs.Duration("resubmit-after", daal.DefaultResubmitAfter, "replace an unmined transaction with higher fees after this")
	gasLimit := fs.Uint64("gas-limit", 0, "gas limit of an anchor transaction (default: estimated)")
	maxFee := fs.Float64("max-fee-gwei", 0, "most fee per gas to pay, in gwei (default: no limit)")
	reconcileEvery := fs.Duration("reconcile-interval", 10*time.Minute, "reconcile on this schedule, alerts as JSON lines on stdout (0: never)")
	metricsListen := fs.String("metrics-listen", "", "serve Prometheus metrics (GET /metrics) on this address, e.g. 127.0.0.1:9464 (default: none)")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	logger, err := f.logger()
	if err != nil {
		return err
	}
	feeCap, err := daal.MaxFeeCap(*maxFee)
	if err != nil {
		return usageError{fmt.Errorf("--max-fee-gwei: %w", err)}
	}
	s, err := f.signer()
	if err != nil {
		return err
	}
	tree, chain, dir, err := f.open(ctx)
	if err != nil {
		return err
	}
	ledger, err := daal.OpenLedger(dir)
	if err != nil {
		return err
	}
	defer ledger.Close()
	a, err := daal.NewAnchorer(daal.AnchorConfig{Tree: tree, Chain: chain, Signer: s, Ledger: ledger, Interval: *interval, Poll: *poll,
		MinNewEntries: *minNew, Confirmations: *confs, ResubmitAfter: *resubmit, GasLimit: *gasLimit, MaxFeeCap: feeCap, Logger: logger})
	if err != nil {
		return usageError{err}
	}
	rcfg, err := f.reconcileConfig(tree, chain, s.Address(), ledger)
	if err != nil {
		return err
	}
	// Anchors in a contract that is not ztlog's DAALog prove nothing an
	// auditor accepts: refuse to start rather than spend gas on them.
	var wrong *daal.CodeError
	if err := chain.CheckCode(ctx, rcfg.ExpectedCodeHash); errors.As(err, &wrong) {
		return fmt.Errorf("refusing to anchor: %w; check --contract and --rpc, or deploy with `ztlog daal deploy`", err)
	} else if err != nil {
		return err
	}
	if *once {
		return a.Step(ctx)
	}
	metrics, stop, err := serveMetrics(*metricsListen, ledger, logger)
	if err != nil {
		return err
	}
	defer stop()
	if *reconcileEvery > 0 {
		a.SetReconcile(rcfg, *reconcileEvery, printAlerts(os.Stdout, metrics))
	}
	logger.Info("anchoring", "contract", chain.Contract().Hex(), "chain_id", chain.ChainID().String(), "sender", s.Address().Hex(),
		"origin", tree.Origin(), "ledger", dir, "interval", interval.String(), "min_new_entries", *minNew)
	return a.Run(ctx)
}

// serveMetrics serves the anchorer's Prometheus metrics on addr, if any
// (metrics is then non-nil); stop ends the server.
func serveMetrics(addr string, ledger *daal.Ledger, logger *slog.Logger) (metrics *daal.Metrics, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	reg := prometheus.NewRegistry()
	if metrics, err = daal.NewMetrics(ledger, reg); err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, usageError{fmt.Errorf("--metrics-listen %s: %w", addr, err)}
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	logger.Info("metrics", "addr", ln.Addr().String())
	return metrics, func() { srv.Close() }, nil
}

// printAlerts writes each alert of a scheduled reconciliation to w as a
// JSON line, and counts the report in metrics (if not nil).
func printAlerts(w io.Writer, metrics *daal.Metrics) func(*vdaal.Report) {
	return func(rep *vdaal.Report) {
		if metrics != nil {
			metrics.ObserveReport(rep, time.Now())
		}
		enc := json.NewEncoder(w)
		for _, al := range rep.Alerts {
			enc.Encode(al)
		}
	}
}

// errAlerts makes the command exit 1 after printing its report.
type errAlerts struct{ n int }

func (e errAlerts) Error() string { return fmt.Sprintf("%d alert(s)", e.n) }

func runDAALReconcile(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("daal reconcile", flag.ContinueOnError)
	var f daalFlags
	f.register(fs)
	sender := fs.String("sender", "", "anchoring sender address (default: the --keystore's address)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	legacyRecords := fs.String("legacy", "", "legacy ZT audit records (JSON object, array or lines) to match legacy logAction anchors to")
	legacySenders := fs.String("legacy-sender", "", "comma-separated addresses whose logAction records are legacy anchors")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	from, err := f.sender(*sender)
	if err != nil {
		return err
	}
	tree, chain, dir, err := f.open(ctx)
	if err != nil {
		return err
	}
	ledger, err := daal.OpenLedgerOrSnapshot(dir)
	if err != nil {
		return err
	}
	defer ledger.Close()
	if ledger.ReadOnly() {
		fmt.Fprintln(os.Stderr, "ztlog: the anchor ledger is held by a running `ztlog daal anchor`; reconciling a snapshot (nothing is recorded)")
	}
	cfg, err := f.reconcileConfig(tree, chain, from, ledger)
	if err != nil {
		return err
	}
	if err := addLegacy(&cfg, *legacyRecords, *legacySenders); err != nil {
		return err
	}
	rep, err := vdaal.Reconcile(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printReport(os.Stdout, rep)
	}
	if len(rep.Alerts) > 0 {
		return errAlerts{len(rep.Alerts)}
	}
	return nil
}

// printReport writes a reconciliation report for a person.
func printReport(w io.Writer, rep *vdaal.Report) {
	fmt.Fprintf(w, "log       %s  size %d  root %s\n", rep.Origin, rep.Checkpoint.Size, rep.Checkpoint.Root)
	fmt.Fprintf(w, "contract  %s on chain %d (head block %d), code hash ", rep.Contract, rep.ChainID, rep.Head)
	if rep.Code.OK {
		fmt.Fprintln(w, "as expected")
	} else {
		fmt.Fprintf(w, "%s, expected %s\n", rep.Code.Hash, rep.Code.Expected)
	}
	fmt.Fprintf(w, "sender    %s\n\n", rep.Sender)
	if len(rep.Anchors) > 0 {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ANCHOR\tSTATE\tATTESTATION\tSIZE\tBLOCK\tRECORD\tTX\tREASON")
		for _, a := range rep.Anchors {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", a.ID, a.State, a.Attestation, a.Size, a.Block, a.RecordID, a.TxHash, a.Reason)
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	counts := rep.Verdicts()
	fmt.Fprintf(w, "on chain: %d verified anchor(s), %d split-view, %d unexpected, %d legacy, %d foreign\n",
		counts["verified"], counts["split_view"], counts["unexpected"], counts["legacy"], counts["foreign"])
	rep.WriteFindings(w)
	if len(rep.Alerts) == 0 {
		fmt.Fprintln(w, "\nno alerts")
		return
	}
	fmt.Fprintf(w, "\n%d ALERT(S)\n", len(rep.Alerts))
	for _, a := range rep.Alerts {
		fmt.Fprintf(w, "  [%s] %s\n", a.Kind, a.Message)
	}
}

func runDAALStatus(args []string) error {
	fs := flag.NewFlagSet("daal status", flag.ContinueOnError)
	var f daalFlags
	f.register(fs)
	asJSON := fs.Bool("json", false, "print the anchors as JSON")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	dir, err := f.ledgerDir()
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(filepath.Join(dir, "anchors.jsonl"))
	if err != nil {
		return fmt.Errorf("no anchor ledger in %s: %w", dir, err)
	}
	anchors, _, err := vdaal.ParseLedger(raw)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(anchors)
	}
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ANCHOR\tSTATE\tATTESTATION\tSIZE\tQUEUED\tBLOCK\tRECORD\tTX\tREASON")
	for _, a := range anchors {
		tx := a.TxHash
		if tx == "" && len(a.Txs) > 0 {
			tx = a.Txs[len(a.Txs)-1].Hash
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\n", a.ID, a.State, a.Attestation, a.Size, a.QueuedAt.UTC().Format(time.RFC3339), a.Block, a.RecordID, tx, a.Reason)
	}
	return tw.Flush()
}
