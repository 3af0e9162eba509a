package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/verifier/bundle"
	"github.com/zt-infra/ztlog/verifier/splitview"
)

// runVerify is `zt-audit verify FILE [--policy FILE] [--json]`. It
// recognizes what FILE is and verifies it offline. Today it knows
// evidence bundles (verifier/bundle) and split-view evidence
// (verifier/splitview); --legacy reads the earlier ZT audit records.
func runVerify(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	policyFile := fs.String("policy", "", "trust policy (C2SP tlog-policy) naming the log keys you trust")
	asJSON := fs.Bool("json", false, "print the verdict as JSON")
	legacyFile := fs.String("legacy", "", "verify the earlier ZT adapter's hash-chained audit records in this file")
	kmsKey := fs.String("kms-key", "", "with --legacy: the KMS key's public key (PEM) to verify kms_signature")
	hashOnly := fs.Bool("hash-only", false, "with --legacy: check hashes and chain only; signatures are reported as skipped")
	spiffeBundle := fs.String("spiffe-bundle", "", "for a bundle: the SPIFFE trust bundle you trust ([TRUST_DOMAIN=]FILE, PEM or SPIFFE JSON); pins the roots the attestations must chain to")
	var policyHashes stringList
	fs.Var(&policyHashes, "policy-hash", "for a bundle: a policy hash (sha256:...) you accept; repeat for several (default: any)")
	// The file may come before, between or after the flags.
	files, err := parseInterleaved(fs, args, cli.Help{Usage: "zt-audit verify FILE|BUNDLE [--policy FILE] [flags], or zt-audit verify --legacy FILE [flags]",
		About: "Verify a file offline: split-view evidence (did the log sign two views?), one action's evidence\nbundle, or the earlier ZT adapter's hash-chained audit records (--legacy)."})
	if err != nil {
		return err
	}
	if *legacyFile != "" {
		if len(files) > 0 {
			return errors.New("verify --legacy FILE takes no other file")
		}
		return verifyLegacy(os.Stdout, *legacyFile, *kmsKey, *hashOnly, *asJSON)
	}
	if len(files) != 1 {
		return errors.New("verify takes one file: zt-audit verify FILE [--policy FILE] [--json]")
	}
	file := files[0]
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if bundle.IsBundle(raw) {
		return verifyBundle(os.Stdout, file, raw, *policyFile, policyHashes, *spiffeBundle, *asJSON)
	}
	if splitview.IsEvidence(raw) {
		return verifySplitView(os.Stdout, file, raw, *policyFile, *asJSON)
	}
	return fmt.Errorf("%s is not a file zt-audit verify knows (an evidence bundle, format %q, or split-view evidence, format %q)", file, bundle.Format, splitview.Format)
}
