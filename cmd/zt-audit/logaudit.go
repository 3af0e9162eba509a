package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/verifier/attestation"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/history"
)

// runLogAudit is `zt-audit audit --log URL|DIR --policy FILE`: the whole
// log, from its tiles.
func runLogAudit(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("audit", flag.ContinueOnError)
	logSpec := fs.String("log", "", "the log: its tlog-tiles URL (https://host/log/) or its directory")
	policyFile := fs.String("policy", "", "trust policy (C2SP tlog-policy): the log key and witness quorum you trust")
	window := fs.Duration("window", audit.DefaultWindow, "report allows older than this without a result")
	now := fs.String("now", "", "the time to judge the window against (RFC 3339; default: now)")
	merkleOnly := fs.Bool("merkle-only", false, "replay the tree and check tiles only; do not read entries")
	maxOpen := fs.Int("max-open", audit.DefaultMaxOpen, "most allows tracked while awaiting their result (about 200 bytes each)")
	maxLate := fs.Int("max-late", audit.DefaultMaxLate, "most late results linked after the pass")
	examples := fs.Int("examples", audit.DefaultMaxExamples, "findings listed per check")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	spiffeBundle := fs.String("spiffe-bundle", "", "SPIFFE trust bundle you trust ([TRUST_DOMAIN=]FILE, PEM or SPIFFE JSON): verify every committed attestation and broker statement against it (without it, entry signatures are NOT checked)")
	progress := fs.String("progress", "auto", "progress bar on stderr: auto (when a terminal), always, never")
	if err := parseArgs(fs, args, cli.Help{Usage: "zt-audit audit --log URL|DIR --policy FILE [flags]", About: "Audit the whole log from its tiles: the tree, every entry, and that every allow has its result\nwithin the window."}); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("audit takes no arguments (got %q): zt-audit audit --log URL|DIR --policy FILE", fs.Arg(0))
	}
	pol, err := loadPolicy(*policyFile)
	if err != nil {
		return err
	}
	src, err := openLog(ctx, *logSpec)
	if err != nil {
		return err
	}
	opts := audit.Options{Window: *window, MerkleOnly: *merkleOnly, MaxOpen: *maxOpen, MaxLate: *maxLate, MaxExamples: *examples, Now: time.Now()}
	if *now != "" {
		if opts.Now, err = time.Parse(time.RFC3339Nano, *now); err != nil {
			return fmt.Errorf("--now %q: want an RFC 3339 time such as 2026-11-21T10:00:00Z", *now)
		}
	}
	if opts.Verifiers, err = entryChecks(*spiffeBundle); err != nil {
		return err
	}
	if opts.HistoryIndex, err = servedIndex(ctx, *logSpec); err != nil {
		return err
	}
	var bar *progressBar
	switch *progress {
	case "always":
		bar = newProgressBar(os.Stderr)
	case "auto":
		if isTerminal(os.Stderr) {
			bar = newProgressBar(os.Stderr)
		}
	case "never":
	default:
		return fmt.Errorf("--progress %q: want auto, always or never", *progress)
	}
	if bar != nil {
		opts.Progress = bar.update
	}
	rep, err := audit.Run(ctx, src, pol, opts)
	if bar != nil {
		bar.done()
	}
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printAuditReport(os.Stdout, rep)
	}
	if !rep.Valid {
		return cli.Fail(fmt.Errorf("%s: %s", rep.First.Check, hint(rep.First.Message)))
	}
	return nil
}

func printAuditReport(w io.Writer, r *audit.Report) {
	if r.Origin != "" {
		fmt.Fprintf(w, "log       %s\n", r.Origin)
		fmt.Fprintf(w, "tree      size %d, root %s\n", r.TreeSize, base64.StdEncoding.EncodeToString(r.RootHash))
	}
	if len(r.Cosigners) > 0 {
		fmt.Fprintf(w, "witnessed by %s\n", strings.Join(r.Cosigners, ", "))
	}
	if r.Entries > 0 {
		var kinds []string
		for k := range r.Kinds {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		var parts []string
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Kinds[k]))
		}
		fmt.Fprintf(w, "entries   %d (%s)\n", r.Entries, strings.Join(parts, ", "))
		fmt.Fprintf(w, "audited   in %s, %.0f entries/s; %d allows still within the result window\n", r.Duration.Round(time.Millisecond), r.EntriesPerSec, r.Open)
	}
	fmt.Fprintf(w, "\n%-56s %-8s %10s %8s %8s\n", "CHECK", "STATUS", "CHECKED", "FAILED", "WARNED")
	for _, c := range r.Checks {
		fmt.Fprintf(w, "%-56s %-8s %10d %8d %8d\n", c.Title, c.Status(), c.Checked, c.Failed, c.Warned)
	}
	warned := 0
	for _, c := range r.Checks {
		if len(c.Examples) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s (%s):\n", c.ID, c.Title)
		for _, f := range c.Examples {
			fmt.Fprintf(w, "  %-4s %s\n", f.Severity, hint(f.Message))
		}
		if n := c.Failed + c.Warned; n > uint64(len(c.Examples)) {
			fmt.Fprintf(w, "  ... and %d more\n", n-uint64(len(c.Examples)))
		}
		warned += int(c.Warned)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "entry signatures (agents' attestations, brokers' statements): %s\n", r.EntrySignatures)
	if strings.HasPrefix(r.EntrySignatures, "NOT") {
		fmt.Fprintln(w, "  (pass --spiffe-bundle FILE to verify them against the SPIFFE roots you trust; VALID below does not cover them)")
	}
	switch {
	case !r.Valid:
		fmt.Fprintf(w, "INVALID: first failing check %s: %s\n", r.First.Check, hint(r.First.Message))
	case warned > 0:
		fmt.Fprintf(w, "VALID: every check passed; %d warning(s) above\n", warned)
	default:
		fmt.Fprintln(w, "VALID: every check passed")
	}
}

// progressBar draws "[#####     ] 52% 520000/1000000 entries 410000/s" on
// a terminal, at most ten times a second.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer) *progressBar {
	return &progressBar{w: w, start: time.Now()}
}

func (p *progressBar) update(done, total uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && done != total {
		return
	}
	p.last, p.drawn = now, true
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * width)
	rate := float64(done) / now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "\r[%s%s] %3.0f%% %d/%d entries %.0f/s ", strings.Repeat("#", n), strings.Repeat(" ", width-n), frac*100, done, total, rate)
}

func (p *progressBar) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

// entryChecks are the entry signature checks of an audit or a monitor:
// with the SPIFFE roots the auditor trusts (--spiffe-bundle), every
// committed attestation and broker statement; none without.
func entryChecks(spiffeBundle string) ([]audit.EntryVerifier, error) {
	if spiffeBundle == "" {
		return nil, nil
	}
	roots, err := attestation.LoadRoots(spiffeBundle)
	if err != nil {
		return nil, err
	}
	set, err := roots.Set()
	if err != nil {
		return nil, err
	}
	return []audit.EntryVerifier{attestation.EntryCheck{V: attestation.NewVerifier(set)}}, nil
}

// servedIndex is the history index checkpoint a log server serves (read
// before the log's checkpoint, so that the audit reaches its size), or nil
// for a log directory or a server without a history index.
func servedIndex(ctx context.Context, spec string) ([]byte, error) {
	if !strings.HasPrefix(spec, "http://") && !strings.HasPrefix(spec, "https://") {
		return nil, nil
	}
	base, err := history.ServerBase(spec)
	if err != nil {
		return nil, fmt.Errorf("--log %q: %w", spec, err)
	}
	note, found, err := history.FetchIndexCheckpoint(ctx, &http.Client{Timeout: 30 * time.Second}, base)
	var se *history.ServerError
	if errors.As(err, &se) && se.Code == "index_not_ready" {
		fmt.Fprintf(os.Stderr, "zt-audit: the history index is not ready (%s): it is not checked\n", se.Message)
		return nil, nil
	}
	if err != nil || !found {
		return nil, err
	}
	return note, nil
}
