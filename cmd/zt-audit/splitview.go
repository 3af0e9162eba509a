package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/splitview"
)

// verifySplitView checks split-view evidence and reports whether it proves
// that the log misbehaved. Exit status: 0 when it is valid and conclusive
// (the log signed two checkpoints that cannot both be true), 1 when it is
// invalid or not conclusive ("unproven": the log failed to prove
// consistency, which alone is no proof of a fork), 2 when the policy is
// unusable.
func verifySplitView(w io.Writer, file string, raw []byte, policyFile string, asJSON bool) error {
	var keys note.Verifiers
	keySource := "the evidence file itself (pass --policy to use the keys you trust)"
	e, perr := splitview.Parse(raw)
	if policyFile != "" {
		text, err := os.ReadFile(policyFile)
		if err != nil {
			return err
		}
		p, err := trustpolicy.Parse(text)
		if err != nil {
			return fmt.Errorf("%s: %w", policyFile, err)
		}
		var vs []note.Verifier
		for _, l := range p.Logs {
			if perr == nil && l.Origin == e.Origin {
				vs = append(vs, l.Verifier)
			}
		}
		if perr == nil && len(vs) == 0 {
			return cli.Fail(fmt.Errorf("%s: the policy %s names no log %q; the evidence is not about a log you trust", file, policyFile, e.Origin))
		}
		keys = note.VerifierList(vs...)
		keySource = "the trust policy " + policyFile
	}
	v, err := splitview.Verify(raw, keys)
	if asJSON {
		out := map[string]any{"file": file, "type": "split-view", "valid": err == nil, "log_keys_from": keySource}
		if err != nil {
			out["error"] = err.Error()
		} else {
			out["origin"], out["kind"], out["conclusive"], out["summary"] = v.Origin, v.Kind, v.Conclusive, v.Summary
			out["sizes"] = v.Sizes
			out["roots"] = []string{b64(v.Roots[0]), b64(v.Roots[1])}
		}
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(w, string(b))
	}
	if err != nil {
		return cli.Fail(fmt.Errorf("%s: %w", file, err))
	}
	if !asJSON {
		verdict := "VERIFIED: the log misbehaved"
		if !v.Conclusive {
			verdict = "NOT CONCLUSIVE: the log failed to prove consistency"
		}
		fmt.Fprintf(w, "split-view evidence %s\n%s\n", file, verdict)
		fmt.Fprintf(w, "  log           %s (keys from %s)\n", v.Origin, keySource)
		fmt.Fprintf(w, "  kind          %s\n", v.Kind)
		for i := range v.Sizes {
			fmt.Fprintf(w, "  checkpoint %d  size %d, root %s (%s, %s)\n", i+1, v.Sizes[i], b64(v.Roots[i]), e.Observed[i].Source, e.Observed[i].Time)
		}
		if v.ImpliedRoot != nil {
			fmt.Fprintf(w, "  proof         the tree of size %d has root %s at size %d\n", v.Sizes[1], b64(v.ImpliedRoot), v.Sizes[0])
		}
		fmt.Fprintf(w, "  finding       %s\n", v.Summary)
		fmt.Fprintf(w, "  reported by   %s at %s\n", e.Reporter, e.Time)
	}
	if !v.Conclusive {
		return cli.Fail(fmt.Errorf("%s: the evidence is not conclusive (%s)", file, v.Kind))
	}
	return nil
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
