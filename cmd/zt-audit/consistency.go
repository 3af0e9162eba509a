package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/transparency-dev/tessera/client"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
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
	var files []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
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
	read := func(name string) ([]byte, error) {
		if name == "-" {
			b, err := src.ReadCheckpoint(ctx)
			if err != nil {
				return nil, fmt.Errorf("read the log's checkpoint: %v", err)
			}
			return b, nil
		}
		return os.ReadFile(name)
	}
	var cps [2]*trustpolicy.Checkpoint
	for i, name := range files {
		raw, err := read(name)
		if err != nil {
			return err
		}
		cp, err := pol.VerifyCheckpoint(raw, trustpolicy.VerifyOptions{})
		if err != nil {
			return failedError{fmt.Errorf("checkpoint %s: %v", name, err)}
		}
		cps[i] = cp
	}
	old, new := cps[0], cps[1]
	rep := consistencyReport{Origin: new.Origin, OldSize: old.Size, OldRoot: old.Hash, NewSize: new.Size, NewRoot: new.Hash}
	var path [][]byte
	if old.Size > 0 && old.Size < new.Size && old.Origin == new.Origin {
		pb, err := client.NewProofBuilder(ctx, new.Size, src.ReadTile)
		if err == nil {
			path, err = pb.ConsistencyProof(ctx, old.Size, new.Size)
		}
		if err != nil {
			return fmt.Errorf("build the consistency proof %d..%d from the log's tiles: %v", old.Size, new.Size, err)
		}
	}
	rep.Proof = path
	verr := proof.Consistency(old, new, path)
	rep.Consistent = verr == nil
	if verr != nil {
		rep.Failure = verr.Error()
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		fmt.Printf("log  %s\nold  size %d, root %s (%s)\nnew  size %d, root %s (%s)\nproof %d hashes\n", rep.Origin, old.Size, b64(old.Hash), files[0], new.Size, b64(new.Hash), files[1], len(path))
		if verr == nil {
			fmt.Printf("CONSISTENT: the tree of size %d is a prefix of the tree of size %d\n", old.Size, new.Size)
		} else {
			fmt.Printf("INCONSISTENT: %v\n", verr)
		}
	}
	if verr != nil {
		return failedError{verr}
	}
	return nil
}
