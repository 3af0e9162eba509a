package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/verifier/history"
)

// runHistory is `zt-audit history --agent X | --correlation-id Y --log URL
// --policy FILE`: every entry of an agent or a correlation id, with the
// proof that none is missing (verifier/history/history.md).
func runHistory(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	var q history.Query
	fs.StringVar(&q.Agent, "agent", "", "the agent's SPIFFE `ID`")
	fs.StringVar(&q.CorrelationID, "correlation-id", "", "a correlation `id` (an incident, a request)")
	logURL := fs.String("log", "", "the log server's `URL` (https://host or https://host/log/)")
	policyFile := fs.String("policy", "", "trust policy (C2SP tlog-policy): the log key and witness quorum you trust")
	since := fs.String("since", "", "show entries from this RFC 3339 `time` on (the proof still covers them all)")
	size := fs.Uint64("size", 0, "ask for the history at this log `size` (default: the size the server has indexed)")
	asJSON := fs.Bool("json", false, "print the timeline as JSON")
	if err := parseArgs(fs, args, cli.Help{Usage: "zt-audit history --agent ID | --correlation-id ID --log URL --policy FILE [--since T] [--json]",
		About: "Every entry of an agent or a correlation id, verified complete: the log checkpoint under your\ntrust policy, the log-signed index, the key's map proof, the entries' chain and their inclusion."}); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("history takes no arguments (got %q)", fs.Arg(0))
	}
	if (q.Agent == "") == (q.CorrelationID == "") {
		return fmt.Errorf("give exactly one of --agent ID and --correlation-id ID")
	}
	q.Size = *size
	var from time.Time
	if *since != "" {
		t, err := time.Parse(time.RFC3339Nano, *since)
		if err != nil {
			return fmt.Errorf("--since %q: want an RFC 3339 time such as 2026-11-21T10:00:00Z", *since)
		}
		from = t
	}
	pol, err := loadPolicy(*policyFile)
	if err != nil {
		return err
	}
	if *logURL == "" {
		return fmt.Errorf("--log is required: the log server's URL (https://host)")
	}
	base, err := history.ServerBase(*logURL)
	if err != nil {
		return fmt.Errorf("--log: %w", err)
	}
	raw, err := history.Fetch(ctx, &http.Client{Timeout: 5 * time.Minute}, base, q)
	if err != nil {
		return err
	}
	h, err := history.Verify(raw, q.Key(), pol, time.Now())
	if err != nil {
		return cli.Fail(fmt.Errorf("history of %s: %w", q.Key(), err))
	}
	tl := history.NewTimeline(h, from)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(tl)
	}
	tl.WriteText(os.Stdout)
	return nil
}
