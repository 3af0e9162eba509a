// Package federation is `zt-witness federate`: the cross-checks a witness
// runs on partner logs and with peer witnesses, so that a log cannot show
// one history to its clients and another to the world without being caught.
//
// Each round, for every log in the configuration that has a URL:
//
//  1. Fetch the log's checkpoint from its C2SP tlog-tiles URL (over TLS
//     authenticated with the X.509 bundle of the log's SPIFFE trust domain,
//     fetched from its federation bundle endpoint with go-spiffe, when the
//     log has a "federation" section) and verify the log's signature.
//  2. Check it against the last checkpoint seen for that log (persisted in
//     the state directory): same size means same root; otherwise a
//     consistency proof built from the log's tiles must verify. Only a
//     consistent, larger checkpoint replaces the last one seen.
//  3. If the witness cosigns that log ("witness": true), submit the
//     checkpoint to the local witness (tlog-witness add-checkpoint, proof
//     from the log's tiles), so partner logs are cosigned even when they do
//     not push to us.
//  4. Gossip: read the latest cosigned checkpoint of that log from every
//     peer witness and from the local witness (GET <origin hash>/checkpoint),
//     verify the log signature and the witness's cosignature, and check it
//     against the view from step 1 the same way. The peers read ours the
//     same way, from the local witness's monitoring endpoint.
//
// Any two log-signed checkpoints that cannot both be true become split-view
// evidence (verifier/splitview), filed with an alert (witness/evidence).
// When the larger tree's tiles are available the evidence is conclusive
// (kind "inconsistent" or "same-size"); otherwise it records the failed
// proof attempt (kind "unproven").
package federation

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spiffe/go-spiffe/v2/bundle/spiffebundle"
	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/federation"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/client"
	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/verifier/splitview"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/evidence"
	"github.com/zt-infra/ztlog/witness/state"
	"github.com/zt-infra/ztlog/witness/tlogwitness"
	"golang.org/x/mod/sumdb/note"
)

// Options configure New.
type Options struct {
	// Config returns the configuration in force.
	Config func() *config.Config
	// Seen is the store of the last checkpoint seen per log (a state
	// directory of its own, not the witness's).
	Seen *state.Store
	// Evidence files split views.
	Evidence *evidence.Reporter
	// Reporter names this federator in evidence files.
	Reporter string
	// HTTPClient is used for logs without a federation section, for peers
	// and for the local witness. Default: a client with a 30s timeout.
	HTTPClient *http.Client
	// Logger receives structured logs. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives metrics. Default: none.
	Registerer prometheus.Registerer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Federator runs the cross-checks.
type Federator struct {
	opts   Options
	logger *slog.Logger
	checks *prometheus.CounterVec

	mu      sync.Mutex
	bundles map[spiffeid.TrustDomain]*spiffebundle.Bundle // last good bundle per trust domain
}

// New returns a federator.
func New(opts Options) (*Federator, error) {
	if opts.Config == nil || opts.Seen == nil || opts.Evidence == nil {
		return nil, errors.New("federation: New needs a config, a state store and an evidence reporter")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	opts.Logger = cmp.Or(opts.Logger, slog.Default())
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Reporter == "" {
		opts.Reporter = "zt-witness federate"
	}
	f := &Federator{
		opts:    opts,
		logger:  opts.Logger.With("component", "federate"),
		bundles: map[spiffeid.TrustDomain]*spiffebundle.Bundle{},
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztwitness_federation_checks_total",
			Help: "Federation cross-checks by log origin, source (log, witness, peer name) and outcome (consistent, split_view, error).",
		}, []string{"origin", "source", "outcome"}),
	}
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(f.checks); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Run checks every log each interval (from the configuration) until ctx
// ends.
func (f *Federator) Run(ctx context.Context) error {
	for {
		f.CheckAll(ctx)
		interval := config.DefaultInterval
		if fc := f.opts.Config().Federate; fc != nil {
			interval = time.Duration(fc.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(interval):
		}
	}
}

// Result is the outcome of checking one log.
type Result struct {
	Origin string
	// Size is the size of the log's checkpoint as fetched (0 if it could
	// not be fetched).
	Size uint64
	// Cosigned is true when the local witness cosigned it this round.
	Cosigned bool
	// SplitViews are the evidence files filed this round (new or not).
	SplitViews []string
	// Errors are the problems met (unreachable log or peer, bad signature).
	Errors []error
}

// CheckAll checks every log with a URL once.
func (f *Federator) CheckAll(ctx context.Context) []Result {
	var out []Result
	for _, l := range f.opts.Config().Logs {
		if l.URL == "" {
			continue
		}
		out = append(out, f.Check(ctx, l))
	}
	return out
}

// view is a log-signed checkpoint and where it came from.
type view struct {
	note   []byte // the signed note as obtained
	cp     *flog.Checkpoint
	source string
	seen   time.Time
}

// Check runs one round of cross-checks on one log.
func (f *Federator) Check(ctx context.Context, l *config.Log) Result {
	res := Result{Origin: l.Origin}
	fail := func(source string, err error) {
		res.Errors = append(res.Errors, err)
		f.checks.WithLabelValues(l.Origin, source, "error").Inc()
		f.logger.Warn("cross-check failed", "origin", l.Origin, "source", source, "error", err)
	}
	fetcher, err := f.fetcher(ctx, l)
	if err != nil {
		fail("log", err)
		return res
	}
	var current *view
	raw, err := fetcher.ReadCheckpoint(ctx)
	if err == nil {
		current, err = f.open(l, raw, l.URL+"checkpoint", nil)
	}
	if err != nil {
		fail("log", fmt.Errorf("checkpoint of %s from %s: %w", l.Origin, l.URL, err))
	} else {
		res.Size = current.cp.Size
	}

	// 2. Against the last checkpoint seen.
	lastRaw, err := f.opts.Seen.Load(l.Origin)
	if err != nil {
		fail("state", err)
		return res
	}
	var last *view
	if lastRaw != nil {
		last, err = f.open(l, lastRaw, "last checkpoint seen by "+f.opts.Reporter, nil)
		if err != nil {
			// The key may have been rotated in the configuration; start over.
			f.logger.Warn("last checkpoint seen no longer verifies; starting over", "origin", l.Origin, "error", err)
			last = nil
		}
	}
	consistent := true
	if current != nil && last != nil {
		consistent = f.crossCheck(ctx, l, last, current, fetcher, "log", &res)
		if consistent && current.cp.Size > last.cp.Size {
			last = nil // replace below
		}
	}
	if current != nil && last == nil {
		if err := f.opts.Seen.Store(l.Origin, current.note); err != nil {
			fail("state", err)
		}
	}
	ours := current
	if ours == nil {
		ours = last
	}
	if ours == nil {
		return res
	}

	// 3. Cosign through the local witness.
	fc := f.opts.Config().Federate
	// Only a checkpoint consistent with the last one seen: the cross-check
	// can fail without filing evidence (the evidence store is broken).
	if fc != nil && l.Witnessed() && current != nil && consistent && len(res.SplitViews) == 0 {
		ok, err := f.submit(ctx, l, fc, current, fetcher)
		switch {
		case err != nil:
			fail("witness", err)
		case ok:
			res.Cosigned = true
		}
	}

	// 4. Gossip with the local witness and the peers.
	if fc != nil {
		f.gossip(ctx, l, "witness", fc.WitnessURL, fc.Verifier(), ours, fetcher, &res)
	}
	for _, p := range f.opts.Config().Peers {
		f.gossip(ctx, l, "peer:"+p.Name, p.URL, p.Verifier(), ours, fetcher, &res)
	}
	return res
}

// open verifies a log-signed checkpoint (and, if wv is set, a cosignature
// by that witness).
func (f *Federator) open(l *config.Log, raw []byte, source string, wv note.Verifier) (*view, error) {
	n, err := note.Open(raw, note.VerifierList(l.Verifier()))
	if err != nil {
		return nil, fmt.Errorf("not validly signed by the log key %s: %w", l.VerifierKey, err)
	}
	if wv != nil {
		if _, err := note.Open(raw, note.VerifierList(wv)); err != nil {
			return nil, fmt.Errorf("no valid cosignature by %s: %w", wv.Name(), err)
		}
	}
	var cp flog.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return nil, err
	}
	if cp.Origin != l.Origin {
		return nil, fmt.Errorf("checkpoint origin %q, want %q", cp.Origin, l.Origin)
	}
	return &view{note: raw, cp: &cp, source: source, seen: f.opts.Now()}, nil
}

// crossCheck compares two views of one log. It returns true when they are
// consistent, and files evidence (noting it in res) when not.
func (f *Federator) crossCheck(ctx context.Context, l *config.Log, a, b *view, fetcher *client.HTTPFetcher, source string, res *Result) bool {
	small, large := a, b
	if small.cp.Size > large.cp.Size {
		small, large = large, small
	}
	var attempt *splitview.ProofAttempt
	switch {
	case small.cp.Size == large.cp.Size:
		if bytes.Equal(small.cp.Hash, large.cp.Hash) {
			f.checks.WithLabelValues(l.Origin, source, "consistent").Inc()
			return true
		}
	case small.cp.Size == 0:
		f.checks.WithLabelValues(l.Origin, source, "consistent").Inc()
		return true
	default:
		p, implied, err := proveFromTiles(ctx, fetcher, small.cp.Size, large.cp.Size)
		attempt = &splitview.ProofAttempt{Hashes: encode(p), Source: l.URL + "tile/"}
		if err != nil {
			attempt.Error = "could not build a consistency proof from the log's tiles: " + err.Error()
		} else if err := proof.VerifyConsistency(rfc6962.DefaultHasher, small.cp.Size, large.cp.Size, p, small.cp.Hash, large.cp.Hash); err == nil {
			f.checks.WithLabelValues(l.Origin, source, "consistent").Inc()
			return true
		} else {
			attempt.Error = fmt.Sprintf("the consistency proof from %d to %d built from the log's tiles does not verify: %s", small.cp.Size, large.cp.Size, strings.ReplaceAll(err.Error(), "\n", " "))
			if implied != nil && proof.VerifyConsistency(rfc6962.DefaultHasher, small.cp.Size, large.cp.Size, p, implied, large.cp.Hash) == nil {
				attempt.ImpliedRoot = base64.StdEncoding.EncodeToString(implied)
			}
		}
	}
	f.checks.WithLabelValues(l.Origin, source, "split_view").Inc()
	obs := [2]splitview.Observation{
		{Source: a.source, Time: a.seen.UTC().Format(time.RFC3339)},
		{Source: b.source, Time: b.seen.UTC().Format(time.RFC3339)},
	}
	e, raw, err := splitview.Build([]string{l.VerifierKey}, [2][]byte{a.note, b.note}, obs, attempt, f.opts.Reporter, f.opts.Now())
	if err != nil && attempt != nil && attempt.ImpliedRoot != "" {
		// The tiles' root did not hold up; keep what the proof shows.
		attempt.ImpliedRoot = ""
		e, raw, err = splitview.Build([]string{l.VerifierKey}, [2][]byte{a.note, b.note}, obs, attempt, f.opts.Reporter, f.opts.Now())
	}
	if err != nil {
		f.logger.Error("checkpoints disagree but do not make valid evidence", "origin", l.Origin, "error", err)
		res.Errors = append(res.Errors, fmt.Errorf("%s: checkpoints of sizes %d and %d (%s, %s) are not consistent, and they do not make valid split-view evidence: %w", l.Origin, small.cp.Size, large.cp.Size, a.source, b.source, err))
		return false
	}
	path, _, err := f.opts.Evidence.Report(e, raw)
	if err != nil {
		f.logger.Error("could not file split-view evidence", "origin", l.Origin, "error", err)
		res.Errors = append(res.Errors, fmt.Errorf("%s: checkpoints of sizes %d and %d (%s, %s) are not consistent, and the split-view evidence could not be filed: %w", l.Origin, small.cp.Size, large.cp.Size, a.source, b.source, err))
		return false
	}
	res.SplitViews = append(res.SplitViews, path)
	return false
}

// proveFromTiles builds the consistency proof from small to large from the
// log's tiles, and the root at small of the tree whose tiles they are.
func proveFromTiles(ctx context.Context, fetcher *client.HTTPFetcher, small, large uint64) ([][]byte, []byte, error) {
	pb, err := client.NewProofBuilder(ctx, large, fetcher.ReadTile)
	if err != nil {
		return nil, nil, err
	}
	p, err := pb.ConsistencyProof(ctx, small, large)
	if err != nil {
		return nil, nil, err
	}
	var implied []byte
	if nodes, err := client.FetchRangeNodes(ctx, small, fetcher.ReadTile); err == nil {
		rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
		if r, err := rf.NewRange(0, small, nodes); err == nil {
			implied, _ = r.GetRootHash(nil)
		}
	}
	return p, implied, nil
}

func encode(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}

// submit offers the checkpoint to the local witness, following 409s, and
// reports whether it was cosigned. A 422 means the witness holds a view this
// checkpoint does not extend; gossip with the witness then files the
// evidence.
func (f *Federator) submit(ctx context.Context, l *config.Log, fc *config.Federate, v *view, fetcher *client.HTTPFetcher) (bool, error) {
	u, err := url.JoinPath(fc.WitnessURL, tlogwitness.AddCheckpointPath)
	if err != nil {
		return false, err
	}
	var old uint64
	for attempt := 0; attempt < 3; attempt++ {
		req := &tlogwitness.Request{OldSize: old, Checkpoint: stripCosignatures(v.note, l)}
		if old > 0 && old < v.cp.Size {
			pb, err := client.NewProofBuilder(ctx, v.cp.Size, fetcher.ReadTile)
			if err == nil {
				req.Proof, err = pb.ConsistencyProof(ctx, old, v.cp.Size)
			}
			if err != nil {
				return false, fmt.Errorf("consistency proof from %d to %d for the witness: %w", old, v.cp.Size, err)
			}
		}
		hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(tlogwitness.FormatRequest(req)))
		if err != nil {
			return false, err
		}
		resp, err := f.opts.HTTPClient.Do(hreq)
		if err != nil {
			return false, fmt.Errorf("local witness %s: %w", u, err)
		}
		body, err := httperr.ReadBody(resp.Body, tlogwitness.MaxRequestSize)
		resp.Body.Close()
		if err != nil {
			return false, fmt.Errorf("local witness %s: reading the answer: %w", u, err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			if _, err := note.Open(append(append([]byte{}, req.Checkpoint...), body...), note.VerifierList(fc.Verifier())); err != nil {
				return false, fmt.Errorf("local witness answered with a cosignature that does not verify with witness_key: %w", err)
			}
			return true, nil
		case http.StatusConflict:
			size, err := tlogwitness.ParseSize(body)
			if err != nil {
				return false, fmt.Errorf("local witness: 409 with %w", err)
			}
			if size > v.cp.Size {
				// The witness has cosigned more than the log now shows; gossip
				// with the witness checks the two views.
				return false, nil
			}
			old = size
		case http.StatusUnprocessableEntity:
			return false, nil
		default:
			return false, fmt.Errorf("local witness refused the checkpoint of %s: HTTP %d %s", l.Origin, resp.StatusCode, strings.TrimSpace(string(body)))
		}
	}
	return false, errors.New("local witness kept answering 409")
}

// stripCosignatures keeps the note's text and the log's signatures only.
func stripCosignatures(raw []byte, l *config.Log) []byte {
	n, err := note.Open(raw, note.VerifierList(l.Verifier()))
	if err != nil {
		return raw
	}
	var b bytes.Buffer
	b.WriteString(n.Text + "\n")
	for _, s := range n.Sigs {
		fmt.Fprintf(&b, "— %s %s\n", s.Name, s.Base64)
	}
	return b.Bytes()
}

// gossip reads a witness's latest cosigned checkpoint of the log and checks
// it against ours.
func (f *Federator) gossip(ctx context.Context, l *config.Log, source, base string, wv note.Verifier, ours *view, fetcher *client.HTTPFetcher, res *Result) {
	u, err := url.JoinPath(base, state.OriginHash(l.Origin), "checkpoint")
	if err != nil {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return
	}
	resp, err := f.opts.HTTPClient.Do(req)
	if err != nil {
		res.Errors = append(res.Errors, err)
		f.checks.WithLabelValues(l.Origin, source, "error").Inc()
		f.logger.Warn("gossip: witness unreachable", "origin", l.Origin, "witness", source, "error", err)
		return
	}
	body, err := httperr.ReadBody(resp.Body, splitview.MaxSize)
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return // that witness has not cosigned this log
	}
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", u, err)
		res.Errors = append(res.Errors, err)
		f.checks.WithLabelValues(l.Origin, source, "error").Inc()
		f.logger.Warn("gossip: witness answered an error", "origin", l.Origin, "witness", source, "error", err)
		return
	}
	theirs, err := f.open(l, body, "latest checkpoint cosigned by "+wv.Name()+" ("+u+")", wv)
	if err != nil {
		res.Errors = append(res.Errors, err)
		f.checks.WithLabelValues(l.Origin, source, "error").Inc()
		f.logger.Warn("gossip: witness checkpoint does not verify", "origin", l.Origin, "witness", source, "error", err)
		return
	}
	f.crossCheck(ctx, l, ours, theirs, fetcher, source, res)
}

// fetcher returns a tlog-tiles reader for the log, authenticated with its
// trust domain's bundle when the log is federated.
func (f *Federator) fetcher(ctx context.Context, l *config.Log) (*client.HTTPFetcher, error) {
	u, err := url.Parse(l.URL)
	if err != nil {
		return nil, err
	}
	hc := f.opts.HTTPClient
	if l.Federation != nil {
		hc, err = f.federatedClient(ctx, l.Federation)
		if err != nil {
			return nil, err
		}
	}
	return client.NewHTTPFetcher(u, hc)
}

// federatedClient fetches the trust domain's bundle from its SPIFFE bundle
// endpoint (falling back to the last good one if the endpoint fails) and
// returns a client that accepts only X.509-SVIDs of that trust domain (or
// exactly server_spiffe_id).
func (f *Federator) federatedClient(ctx context.Context, fed *config.Federation) (*http.Client, error) {
	td, err := spiffeid.TrustDomainFromString(fed.TrustDomain)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	cached := f.bundles[td]
	f.mu.Unlock()
	var opts []federation.FetchOption
	switch {
	case fed.BundleEndpointSPIFFEID != "":
		id, err := spiffeid.FromString(fed.BundleEndpointSPIFFEID)
		if err != nil {
			return nil, err
		}
		var src x509bundle.Source
		if cached != nil {
			src = cached
		} else {
			b, err := x509bundle.Load(id.TrustDomain(), fed.BootstrapBundle)
			if err != nil {
				return nil, fmt.Errorf("bootstrap_bundle: %w", err)
			}
			src = b
		}
		opts = append(opts, federation.WithSPIFFEAuth(src, id))
	case fed.BundleEndpointCA != "":
		pem, err := os.ReadFile(fed.BundleEndpointCA)
		if err != nil {
			return nil, fmt.Errorf("bundle_endpoint_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bundle_endpoint_ca %s holds no PEM certificate", fed.BundleEndpointCA)
		}
		opts = append(opts, federation.WithWebPKIRoots(pool))
	}
	fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	b, err := federation.FetchBundle(fctx, td, fed.BundleEndpoint, opts...)
	cancel()
	switch {
	case err == nil:
		f.mu.Lock()
		f.bundles[td] = b
		f.mu.Unlock()
	case cached != nil:
		f.logger.Warn("bundle endpoint unavailable; using the last bundle fetched", "trust_domain", td.String(), "error", err)
		b = cached
	default:
		return nil, fmt.Errorf("trust bundle of %s from %s: %w", td, fed.BundleEndpoint, err)
	}
	authorize := tlsconfig.AuthorizeMemberOf(td)
	if fed.ServerSPIFFEID != "" {
		id, err := spiffeid.FromString(fed.ServerSPIFFEID)
		if err != nil {
			return nil, err
		}
		authorize = tlsconfig.AuthorizeID(id)
	}
	return &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsconfig.TLSClientConfig(b, authorize)},
	}, nil
}
