package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/audit"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// consistencyReport is the --json output of zt-audit consistency.
type consistencyReport struct {
	Consistent bool     `json:"consistent"`
	Origin     string   `json:"origin"`
	OldSize    uint64   `json:"old_size"`
	OldRoot    []byte   `json:"old_root"`
	NewSize    uint64   `json:"new_size"`
	NewRoot    []byte   `json:"new_root"`
	Proof      [][]byte `json:"proof"`
	Failure    string   `json:"failure,omitempty"`
}

// runConsistency is `zt-audit consistency OLD NEW --log URL|DIR --policy
// FILE`: proves that the saved checkpoint OLD is a prefix of NEW (a saved
// checkpoint too, or "-" for the log's current one), with a consistency
// proof built from the log's tiles and checked against both checkpoints.
func runConsistency(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("consistency", flag.ContinueOnError)
	logSpec := fs.String("log", "", "the log: its tlog-tiles URL (https://host/log/) or its directory")
	policyFile := fs.String("policy", "", "trust policy (C2SP tlog-policy): the log key (and witness quorum) both checkpoints must verify against")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	files, err := parseInterleaved(fs, args, cli.Help{Usage: "zt-audit consistency OLD NEW --log URL|DIR --policy FILE [--json]",
		About: "Prove that the saved checkpoint OLD is a prefix of NEW (a saved checkpoint, or - for the log's\ncurrent one) with a consistency proof built from the log's tiles."})
	if err != nil {
		return err
	}
	if len(files) != 2 {
		return fmt.Errorf("consistency takes two checkpoints: zt-audit consistency OLD NEW --log URL|DIR --policy FILE (NEW may be - for the log's current checkpoint)")
	}
	pol, err := loadPolicy(*policyFile)
	if err != nil {
		return err
	}
	src, err := openLog(ctx, *logSpec)
	if err != nil {
		return err
	}
	cps, err := readCheckpoints(ctx, src, pol, files)
	if err != nil {
		return err
	}
	old, new := cps[0], cps[1]
	rep := consistencyReport{Origin: new.Origin, OldSize: old.Size, OldRoot: old.Hash, NewSize: new.Size, NewRoot: new.Hash}
	if old.Size > 0 && old.Size < new.Size && old.Origin == new.Origin {
		pb, err := client.NewProofBuilder(ctx, new.Size, src.ReadTile)
		if err == nil {
			rep.Proof, err = pb.ConsistencyProof(ctx, old.Size, new.Size)
		}
		if err != nil {
			return fmt.Errorf("build the consistency proof %d..%d from the log's tiles: %w", old.Size, new.Size, err)
		}
	}
	verr := proof.Consistency(old, new, rep.Proof)
	rep.Consistent = verr == nil
	if verr != nil {
		rep.Failure = verr.Error()
	}
	printConsistency(&rep, files, *asJSON, verr)
	if verr != nil {
		return cli.Fail(verr)
	}
	return nil
}

// readCheckpoints reads the two checkpoints (a file, or "-" for the log's
// current one) and verifies each against the trust policy.
func readCheckpoints(ctx context.Context, src audit.Source, pol *trustpolicy.Policy, files []string) ([2]*trustpolicy.Checkpoint, error) {
	var cps [2]*trustpolicy.Checkpoint
	for i, name := range files {
		var raw []byte
		var err error
		if name == "-" {
			if raw, err = src.ReadCheckpoint(ctx); err != nil {
				return cps, fmt.Errorf("read the log's checkpoint: %w", err)
			}
		} else if raw, err = os.ReadFile(name); err != nil {
			return cps, err
		}
		cp, err := pol.VerifyCheckpoint(raw, trustpolicy.VerifyOptions{})
		if err != nil {
			return cps, cli.Fail(fmt.Errorf("checkpoint %s: %w", name, err))
		}
		cps[i] = cp
	}
	return cps, nil
}

func printConsistency(rep *consistencyReport, files []string, asJSON bool, verr error) {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
		return
	}
	fmt.Printf("log  %s\nold  size %d, root %s (%s)\nnew  size %d, root %s (%s)\nproof %d hashes\n", rep.Origin,
		rep.OldSize, b64(rep.OldRoot), files[0], rep.NewSize, b64(rep.NewRoot), files[1], len(rep.Proof))
	if verr == nil {
		fmt.Printf("CONSISTENT: the tree of size %d is a prefix of the tree of size %d\n", rep.OldSize, rep.NewSize)
	} else {
		fmt.Printf("INCONSISTENT: %v\n", verr)
	}
}
