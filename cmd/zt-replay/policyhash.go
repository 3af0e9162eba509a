package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zt-infra/ztlog/contract/gate/pdp"
)

// PolicyHash is what `zt-replay policy-hash` prints.
type PolicyHash struct {
	Engine       string   `json:"engine"`
	Hash         string   `json:"hash"`
	SourceDigest string   `json:"source_digest"`
	Files        []string `json:"files"`
}

// runPolicyHash is `zt-replay policy-hash DIR|BUNDLE`: the same collect
// and compile the service runs, so the hash and source digest are the
// ones its policy entry would commit.
func runPolicyHash(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("policy-hash", flag.ContinueOnError)
	engine := fs.String("engine", "", "opa or cedar (default: cedar when the directory holds *.cedar files, else opa)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("policy-hash takes one policy directory or bundle: zt-replay policy-hash DIR|BUNDLE")
	}
	path := fs.Arg(0)
	if *engine == "" {
		*engine = guessEngine(path)
	}
	src, err := pdp.Collect(*engine, path)
	if err != nil {
		return err
	}
	p, err := pdp.Compile(ctx, src, "", path)
	if err != nil {
		return err
	}
	out := PolicyHash{Engine: src.Engine, Hash: p.Version().Hash, SourceDigest: src.Digest(), Files: src.Paths()}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Printf("engine         %s\npolicy hash    %s\nsource digest  %s\nfiles          %d\n", out.Engine, out.Hash, out.SourceDigest, len(out.Files))
	for _, f := range out.Files {
		fmt.Printf("  %s\n", f)
	}
	return nil
}

// guessEngine is cedar for a directory holding *.cedar files, else opa.
func guessEngine(path string) string {
	if m, _ := filepath.Glob(filepath.Join(path, "*.cedar")); len(m) > 0 {
		return "cedar"
	}
	return "opa"
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	// Flags may follow the positional argument (zt-replay policy-hash DIR --json).
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return fs.Parse(pos)
}
