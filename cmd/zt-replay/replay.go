package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/contract/gate/replay"
	"github.com/zt-infra/ztlog/contract/policysource"
)

// runDecision is `zt-replay decision --log URL|DIR --index N`.
func runDecision(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("decision", flag.ContinueOnError)
	logSpec := fs.String("log", "", "the log: the server's URL (https://host or https://host/log/) or a POSIX log directory")
	index := fs.Int64("index", -1, "index of the decision entry to replay")
	policyDir := fs.String("policy-dir", "", "the policy files you reviewed, used instead of fetching them (refused unless they are the committed ones)")
	engine := fs.String("engine", "", "engine of --policy-dir: opa or cedar (default: cedar when it holds *.cedar files)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *index < 0 {
		return errors.New("--index is required: the log index of the decision to replay")
	}
	src, fetch, err := openLog(*logSpec)
	if err != nil {
		return err
	}
	var local *policysource.Source
	if *policyDir != "" {
		if *engine == "" {
			*engine = guessEngine(*policyDir)
		}
		if local, err = pdp.Collect(*engine, *policyDir); err != nil {
			return err
		}
	}
	var got *replay.Result
	target := uint64(*index)
	_, err = replay.New(fetch, local).Run(ctx, src, target+1, func(i uint64) bool { return i == target },
		func(r *replay.Result) error { got = r; return nil })
	if errors.Is(err, replay.ErrPolicy) {
		return cli.Fail(err)
	}
	if err != nil {
		return err
	}
	if got == nil {
		return fmt.Errorf("entry %d is not a decision", target)
	}
	if *asJSON {
		if err := printJSON(got); err != nil {
			return err
		}
	} else {
		printResult(os.Stdout, got)
	}
	if got.Verdict == replay.Different {
		return cli.Fail(fmt.Errorf("decision %d: the committed policy decides otherwise: %s", got.Index, strings.Join(got.Differences, "; ")))
	}
	return nil
}

// runLog is `zt-replay log --log URL|DIR`: every decision.
func runLog(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("log", flag.ContinueOnError)
	logSpec := fs.String("log", "", "the log: the server's URL (https://host or https://host/log/) or a POSIX log directory")
	asJSON := fs.Bool("json", false, "print the summary and every differing decision as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	src, fetch, err := openLog(*logSpec)
	if err != nil {
		return err
	}
	var differing []*replay.Result
	rp := replay.New(fetch, nil)
	rp.KeepGoing = true
	sum, err := rp.Run(ctx, src, 0, nil, func(r *replay.Result) error {
		if r.Verdict == replay.Different || r.Verdict == replay.Unreplayable {
			differing = append(differing, r)
		}
		return nil
	})
	if errors.Is(err, replay.ErrPolicy) {
		return cli.Fail(err)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		if err := printJSON(struct {
			Summary   *replay.Summary  `json:"summary"`
			Differing []*replay.Result `json:"differing"`
			Saw       string           `json:"saw"`
		}{sum, differing, replay.Saw}); err != nil {
			return err
		}
	} else {
		fmt.Printf("log        %d entries, %d decisions replayed in %s (%.0f decisions/s)\n", sum.Entries, sum.Decisions, sum.Duration.Round(time.Millisecond), sum.PerSec)
		fmt.Printf("same       %d\ngate       %d (refused before the policy; refusals re-derived from the log)\ndifferent  %d\nunreplayable %d (the policy could not be had or did not match its entry)\n",
			sum.Same, sum.Gate, sum.Different, sum.Unreplayable)
		for _, r := range differing {
			fmt.Printf("  %d: %s%s\n", r.Index, strings.Join(r.Differences, "; "), r.Error)
		}
		fmt.Printf("note: %s\n", replay.Saw)
	}
	if sum.Different > 0 || sum.Unreplayable > 0 {
		return cli.Fail(fmt.Errorf("of %d decisions, %d replay differently and %d could not be replayed", sum.Decisions, sum.Different, sum.Unreplayable))
	}
	return nil
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printResult(w io.Writer, r *replay.Result) {
	fmt.Fprintf(w, "decision   %d\n", r.Index)
	if p := r.Policy; p != nil {
		fmt.Fprintf(w, "policy     %s (%s), policy entry %d, source digest %s: matches the log\n", p.Hash, p.Engine, p.Index, p.SourceDigest)
	}
	fmt.Fprintf(w, "committed  %s %s\n", r.Committed.Effect, reasonCodes(r.Committed.Reasons))
	if r.Replayed != nil {
		fmt.Fprintf(w, "replayed   %s %s\n", r.Replayed.Effect, reasonCodes(r.Replayed.Reasons))
	} else {
		fmt.Fprintln(w, "replayed   (not evaluated: the gate refused before asking the policy; its refusals were re-derived from the log)")
	}
	for _, d := range r.Differences {
		fmt.Fprintf(w, "  differs: %s\n", d)
	}
	fmt.Fprintf(w, "verdict    %s\n", strings.ToUpper(r.Verdict))
	fmt.Fprintf(w, "note: %s\n", r.Saw)
}

func reasonCodes(rs []entry.Reason) string {
	var cs []string
	for _, r := range rs {
		cs = append(cs, r.Code)
	}
	return "[" + strings.Join(cs, ", ") + "]"
}
