package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/verifier/legacy"
)

// verifyLegacy is `zt-audit verify --legacy FILE [--kms-key PEM]
// [--hash-only] [--json]`: the earlier ZT adapter's hash-chained records.
func verifyLegacy(w io.Writer, file, kmsKey string, hashOnly, asJSON bool) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	recs, err := legacy.ReadRecords(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	opts := legacy.Options{HashOnly: hashOnly}
	if kmsKey != "" {
		pem, err := os.ReadFile(kmsKey)
		if err != nil {
			return err
		}
		if opts.KMSKey, err = legacy.ParseKMSPublicKey(pem); err != nil {
			return fmt.Errorf("--kms-key %s: %w", kmsKey, err)
		}
	}
	rep := legacy.Verify(recs, opts)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		fmt.Fprintf(w, "legacy ZT audit records: %s (%d record(s))\n", file, len(rep.Records))
		for _, r := range rep.Records {
			form := r.Form
			if form == "" {
				form = "no form matches"
			}
			fmt.Fprintf(w, "\nrecord %d  %s  %s  %s  %s  (%s)\n", r.Index, r.Actor, r.Action, r.Decision, r.Timestamp, form)
			for _, c := range r.Checks {
				name := c.Name[strings.Index(c.Name, ": ")+2:]
				fmt.Fprintf(w, "  %-14s %-13s %s\n", name, strings.ToUpper(string(c.Verdict)), hint(c.Detail))
			}
		}
		fmt.Fprintln(w)
		if rep.Valid {
			fmt.Fprintln(w, "VALID: every hash, link and signature verifies")
		} else {
			fmt.Fprintf(w, "NOT VALID: %s is %s: %s\n", rep.FirstProblem.Name, rep.FirstProblem.Verdict, hint(rep.FirstProblem.Detail))
		}
	}
	if !rep.Valid {
		return cli.Fail(fmt.Errorf("%s is %s: %s", rep.FirstProblem.Name, rep.FirstProblem.Verdict, hint(rep.FirstProblem.Detail)))
	}
	return nil
}
