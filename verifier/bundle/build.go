package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/tlogproof"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
	"github.com/zt-infra/ztlog/verifier/attestation"
	"github.com/zt-infra/ztlog/verifier/proof"
)

// Source reads a tlog-tiles log (tessera's client.HTTPFetcher and
// client.FileFetcher satisfy it).
type Source interface {
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

// BuildOptions say what else goes into a bundle.
type BuildOptions struct {
	// Result is the index of the result entry for the allow, if any.
	Result *uint64
	// Receipt is the receipt issued for the allow, if the caller holds it;
	// JWKS is the log's receipt key set, to take the signing key from.
	Receipt string
	JWKS    *jose.JSONWebKeySet
	// FindResult, when Result is nil, looks for the decision's result entry
	// in the log after it (reading every entry bundle from the decision's
	// to the checkpoint's end) and includes it when there is one.
	FindResult bool
	// Roots is SPIFFE trust bundle material to include: the authorities of
	// the trust domains of the attestation's and the statement's signers
	// are taken from it. Build fails when one is missing.
	Roots *attestation.Roots
	// Now is the clock for the checkpoint's cosignature timestamps.
	Now time.Time
}

// Build assembles the bundle for the decision at index from the log: the
// log's current checkpoint (which must verify against pol, so that the
// bundle will), the entries and their inclusion proofs built from the
// log's tiles, and the receipt with its key.
func Build(ctx context.Context, src Source, pol *trustpolicy.Policy, index uint64, opts BuildOptions) (*Bundle, error) {
	raw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the log's checkpoint: %w", err)
	}
	cp, err := pol.VerifyCheckpoint(raw, trustpolicy.VerifyOptions{Now: opts.Now})
	if err != nil {
		return nil, fmt.Errorf("the log's checkpoint does not verify against the policy: %w", err)
	}
	pb, err := client.NewProofBuilder(ctx, cp.Size, src.ReadTile)
	if err != nil {
		return nil, err
	}
	entry := func(i uint64) (Entry, error) {
		if i >= cp.Size {
			return Entry{}, fmt.Errorf("entry %d is not in the log's tree of size %d", i, cp.Size)
		}
		n := i / layout.EntryBundleWidth
		rawBundle, err := src.ReadEntryBundle(ctx, n, layout.PartialTileSize(0, n, cp.Size))
		if err != nil {
			return Entry{}, fmt.Errorf("read entry %d: %w", i, err)
		}
		var eb api.EntryBundle
		if err := eb.UnmarshalText(rawBundle); err != nil || uint64(len(eb.Entries)) <= i%layout.EntryBundleWidth {
			return Entry{}, fmt.Errorf("entry bundle for entry %d is malformed: %v", i, err)
		}
		leaf := eb.Entries[i%layout.EntryBundleWidth]
		path, err := pb.InclusionProof(ctx, i)
		if err != nil {
			return Entry{}, fmt.Errorf("inclusion proof for entry %d: %w", i, err)
		}
		if err := proof.Inclusion(cp, i, proof.LeafHash(leaf), path); err != nil {
			return Entry{}, fmt.Errorf("the log serves entry %d with a proof that does not verify: %w", i, err)
		}
		return Entry{Index: i, Leaf: append([]byte(nil), leaf...), Proof: string(tlogproof.Format(&tlogproof.Proof{Index: i, Hashes: path, Checkpoint: cp.Note}))}, nil
	}
	b := &Bundle{Format: Format, Origin: cp.Origin}
	if b.Decision, err = entry(index); err != nil {
		return nil, err
	}
	if opts.Result == nil && opts.FindResult {
		if opts.Result, err = FindResult(ctx, src, cp.Size, index); err != nil {
			return nil, err
		}
	}
	if opts.Result != nil {
		r, err := entry(*opts.Result)
		if err != nil {
			return nil, err
		}
		b.Result = &r
	}
	if opts.Roots != nil {
		tds, err := SignerTrustDomains(b)
		if err != nil {
			return nil, err
		}
		sel := opts.Roots.Select(tds...)
		if len(sel.Domains) != len(tds) {
			return nil, fmt.Errorf("the SPIFFE bundle given has roots for %s; the bundle's signers are of %s", strings.Join(opts.Roots.TrustDomains(), ", "), strings.Join(tds, ", "))
		}
		if len(tds) > 0 {
			b.SPIFFE = sel.Domains
		}
	}
	if opts.Receipt != "" {
		rc, err := receipt.Parse(opts.Receipt)
		if err != nil {
			return nil, err
		}
		if opts.JWKS == nil {
			return nil, errors.New("a receipt needs the log's receipt JWKS, to include the key that signed it")
		}
		keys := opts.JWKS.Key(rc.KeyID)
		if len(keys) != 1 {
			return nil, fmt.Errorf("the receipt's key %s is not in the JWKS", rc.KeyID)
		}
		k, err := keys[0].Public().MarshalJSON()
		if err != nil {
			return nil, err
		}
		b.Receipt, b.ReceiptKey = opts.Receipt, k
	}
	return b, nil
}

// SignerTrustDomains lists the trust domains of the bundle's signed
// statements' signers: the decision's actor when its attestation is
// embedded with a chain, the result's broker when there is a result.
func SignerTrustDomains(b *Bundle) ([]string, error) {
	var tds []string
	add := func(id string) error {
		sid, err := spiffeid.FromString(id)
		if err != nil {
			return fmt.Errorf("signer %q is not a SPIFFE ID: %w", id, err)
		}
		if !slices.Contains(tds, sid.TrustDomain().Name()) {
			tds = append(tds, sid.TrustDomain().Name())
		}
		return nil
	}
	e, err := entry.Parse(b.Decision.Leaf)
	if err != nil {
		return nil, err
	}
	if d, ok := e.(*entry.Decision); ok && d.Attestation != nil && len(d.Attestation.Envelope) > 0 && len(d.Attestation.Chain) > 0 {
		if err := add(d.Actor); err != nil {
			return nil, err
		}
	}
	if b.Result != nil {
		e, err := entry.Parse(b.Result.Leaf)
		if err != nil {
			return nil, err
		}
		if r, ok := e.(*entry.Result); ok && len(r.Statement.Envelope) > 0 {
			if err := add(r.Broker); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(tds)
	return tds, nil
}

// FindResult looks for the result entry of the decision at index among
// the entries after it in the tree of the given size, reading the log's
// entry bundles one at a time. It returns nil when there is none.
func FindResult(ctx context.Context, src Source, size, index uint64) (*uint64, error) {
	want := []byte(`"decision_index":` + strconv.FormatUint(index, 10) + `,`)
	for ri := range layout.Range(index+1, size-min(size, index+1), size) {
		raw, err := src.ReadEntryBundle(ctx, ri.Index, ri.Partial)
		if err != nil {
			return nil, fmt.Errorf("read entry bundle %d while looking for the result of entry %d: %w", ri.Index, index, err)
		}
		var eb api.EntryBundle
		if err := eb.UnmarshalText(raw); err != nil {
			return nil, fmt.Errorf("entry bundle %d is malformed: %w", ri.Index, err)
		}
		for k := uint64(ri.First); k < uint64(ri.First)+uint64(ri.N) && k < uint64(len(eb.Entries)); k++ {
			leaf := eb.Entries[k]
			if !bytes.Contains(leaf, want) || !bytes.Contains(leaf, []byte(`"kind":"result"`)) {
				continue
			}
			if e, err := entry.Parse(leaf); err == nil {
				if r, ok := e.(*entry.Result); ok && r.DecisionIndex == index {
					i := ri.Index*layout.EntryBundleWidth + k
					return &i, nil
				}
			}
		}
	}
	return nil, nil
}
