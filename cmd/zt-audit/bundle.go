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
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/zt-infra/ztlog/cmd/internal/cli"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/verifier/attestation"
	"github.com/zt-infra/ztlog/verifier/bundle"
)

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// runBundle is `zt-audit bundle --log URL|DIR --policy FILE --index N`:
// assemble the evidence bundle of one action from the log.
func runBundle(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bundle", flag.ContinueOnError)
	logSpec := fs.String("log", "", "the log: its tlog-tiles URL (https://host/log/) or its directory")
	policyFile := fs.String("policy", "", "trust policy (C2SP tlog-policy): the log's checkpoint must verify against it")
	index := fs.Int64("index", -1, "the log index of the decision entry")
	result := fs.Int64("result", -1, "the log index of its result entry (default: found in the log after the decision)")
	spiffeBundle := fs.String("spiffe-bundle", "", "SPIFFE trust bundle ([TRUST_DOMAIN=]FILE, PEM or SPIFFE JSON) whose roots the attestation and the broker statement chain to; included in the bundle")
	receiptFile := fs.String("receipt", "", "file holding the receipt (compact JWS) issued for the allow, if you have it")
	jwksSpec := fs.String("jwks", "", "the log's receipt JWKS (file or URL; default: <server>/v1/receipts/jwks.json when --log is a URL)")
	out := fs.String("out", "", "write the bundle here (default: stdout)")
	if err := parseArgs(fs, args, cli.Help{Usage: "zt-audit bundle --log URL|DIR --policy FILE --index N [flags]", About: "Assemble the evidence bundle of the decision at index N: the entry, its inclusion proof under a\ncheckpoint that satisfies --policy, its result, and the SPIFFE roots."}); err != nil {
		return err
	}
	if *index < 0 {
		return errors.New("--index is required: the log index of the decision entry")
	}
	pol, err := loadPolicy(*policyFile)
	if err != nil {
		return err
	}
	src, err := openLog(ctx, *logSpec)
	if err != nil {
		return err
	}
	opts := bundle.BuildOptions{Now: time.Now(), FindResult: true}
	if *result >= 0 {
		r := uint64(*result)
		opts.Result = &r
	}
	if *spiffeBundle != "" {
		if opts.Roots, err = attestation.LoadRoots(*spiffeBundle); err != nil {
			return err
		}
	}
	if *receiptFile != "" {
		tok, err := os.ReadFile(*receiptFile)
		if err != nil {
			return err
		}
		opts.Receipt = strings.TrimSpace(string(tok))
		if opts.JWKS, err = loadJWKS(ctx, *jwksSpec, *logSpec); err != nil {
			return err
		}
	}
	b, err := bundle.Build(ctx, src, pol, uint64(*index), opts)
	if err != nil {
		return err
	}
	enc, err := bundle.Marshal(b)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = os.Stdout.Write(enc)
		return err
	}
	return os.WriteFile(*out, enc, 0o644)
}

// loadJWKS reads the receipt JWKS from a file or URL, or from the server
// the log URL belongs to.
func loadJWKS(ctx context.Context, spec, logSpec string) (*jose.JSONWebKeySet, error) {
	if spec == "" {
		if !strings.HasPrefix(logSpec, "http://") && !strings.HasPrefix(logSpec, "https://") {
			return nil, errors.New("--receipt needs --jwks (the log's receipt JWKS) when --log is a directory")
		}
		spec = strings.TrimSuffix(strings.TrimSuffix(logSpec, "/"), "/log") + "/v1/receipts/jwks.json"
	}
	var raw []byte
	if strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://") {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec, nil)
		if err != nil {
			return nil, err
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			return nil, fmt.Errorf("receipt JWKS: %w", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("receipt JWKS %s: %s", spec, resp.Status)
		}
		if raw, err = httperr.ReadBody(resp.Body, 1<<20); err != nil {
			return nil, fmt.Errorf("receipt JWKS %s: %w", spec, err)
		}
	} else {
		var err error
		if raw, err = os.ReadFile(spec); err != nil {
			return nil, err
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("receipt JWKS %s: %w", spec, err)
	}
	return &set, nil
}

// verifyBundle is `zt-audit verify BUNDLE --policy FILE [--spiffe-bundle FILE]`.
func verifyBundle(w io.Writer, file string, raw []byte, policyFile string, policyHashes []string, spiffeBundle string, asJSON bool) error {
	pol, err := loadPolicy(policyFile)
	if err != nil {
		return err
	}
	opts := bundle.Options{PolicyHashes: policyHashes, Now: time.Now()}
	if spiffeBundle != "" {
		if opts.Roots, err = attestation.LoadRoots(spiffeBundle); err != nil {
			return err
		}
	}
	b, err := bundle.Parse(raw)
	if err != nil {
		if strings.Contains(err.Error(), bundle.FormatV1) {
			return fmt.Errorf("%s: %w", file, err)
		}
		return cli.Fail(fmt.Errorf("%s: %w", file, err))
	}
	rep := bundle.Verify(b, pol, opts)
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		printBundleReport(w, file, rep)
	}
	if !rep.Valid {
		return cli.Fail(fmt.Errorf("%s: %s", rep.FirstFailure.Name, hint(rep.FirstFailure.Detail)))
	}
	return nil
}

func printBundleReport(w io.Writer, file string, r *bundle.Report) {
	fmt.Fprintf(w, "evidence bundle %s\n\n", file)
	if c := r.Checkpoint; c != nil {
		var who []string
		for _, s := range c.Cosigners {
			who = append(who, s.Witness+" at "+s.Time.Format(time.RFC3339))
		}
		witnessed := "no witness quorum required"
		if len(who) > 0 {
			witnessed = "witnessed by " + strings.Join(who, ", ")
		}
		fmt.Fprintf(w, "log        %s: checkpoint of size %d, root %s, %s\n", r.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root), witnessed)
	}
	if d := r.Decision; d != nil {
		fmt.Fprintf(w, "decision   %s %s on %s, actor %s, at %s, policy %s %s\n", strings.ToUpper(string(d.Effect)), d.Action, d.Resource, d.Actor, d.Time, d.Policy.Engine, d.Policy.Hash)
	}
	if c := r.Receipt; c != nil {
		fmt.Fprintf(w, "receipt    %s for broker %s, issued %s, expires %s\n", c.ID, c.Audience, time.Unix(c.IssuedAt, 0).UTC().Format(time.RFC3339), time.Unix(c.Expiry, 0).UTC().Format(time.RFC3339))
	}
	if res := r.Result; res != nil {
		fmt.Fprintf(w, "result     %s from broker %s at %s\n", res.Outcome, res.Broker, res.Time)
	}
	if s := r.SPIFFE; s != nil {
		how := "PINNED by you (--spiffe-bundle)"
		if !s.Pinned {
			how = "NOT pinned (taken from the bundle itself: signers are not proven; pass --spiffe-bundle FILE)"
		}
		fmt.Fprintf(w, "spiffe     roots of %s %s, %s\n", strings.Join(s.TrustDomains, ", "), s.Digest, how)
	}
	proven := func(role string, p *attestation.Proven) {
		if p == nil {
			return
		}
		state := "signed by"
		if r.SPIFFE == nil || !r.SPIFFE.Pinned {
			state = "signature verifies for (signer NOT proven: roots not pinned)"
		}
		fmt.Fprintf(w, "%-10s %s %s (SVID valid until %s), judged at %s\n", role, state, p.Signer, p.NotAfter.Format(time.RFC3339), p.At.Format(time.RFC3339Nano))
	}
	proven("agent", r.Attestation)
	proven("broker", r.Statement)
	fmt.Fprintln(w)
	for _, c := range r.Checks {
		fmt.Fprintf(w, "  %-22s %-13s %s\n", c.Name, strings.ToUpper(string(c.Verdict)), hint(c.Detail))
	}
	fmt.Fprintln(w)
	switch {
	case !r.Valid:
		fmt.Fprintf(w, "INVALID: %s: %s\n", r.FirstFailure.Name, hint(r.FirstFailure.Detail))
	case len(r.NotVerified) > 0:
		fmt.Fprintf(w, "VALID for everything checked; NOT VERIFIED by this build: %s\n", strings.Join(r.NotVerified, ", "))
	default:
		fmt.Fprintln(w, "VALID: every check passed")
	}
}
