package bundle

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/transparency-dev/tessera/api"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/verifier/policy"
	"github.com/zt-infra/ztlog/verifier/proof"
	"github.com/zt-infra/ztlog/verifier/tlogproof"
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
	// Now is the clock for the checkpoint's cosignature timestamps.
	Now time.Time
}

// Build assembles the bundle for the decision at index from the log: the
// log's current checkpoint (which must verify against pol, so that the
// bundle will), the entries and their inclusion proofs built from the
// log's tiles, and the receipt with its key.
func Build(ctx context.Context, src Source, pol *policy.Policy, index uint64, opts BuildOptions) (*Bundle, error) {
	raw, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the log's checkpoint: %v", err)
	}
	cp, err := pol.VerifyCheckpoint(raw, policy.VerifyOptions{Now: opts.Now})
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
			return Entry{}, fmt.Errorf("read entry %d: %v", i, err)
		}
		var eb api.EntryBundle
		if err := eb.UnmarshalText(rawBundle); err != nil || uint64(len(eb.Entries)) <= i%layout.EntryBundleWidth {
			return Entry{}, fmt.Errorf("entry bundle for entry %d is malformed: %v", i, err)
		}
		leaf := eb.Entries[i%layout.EntryBundleWidth]
		path, err := pb.InclusionProof(ctx, i)
		if err != nil {
			return Entry{}, fmt.Errorf("inclusion proof for entry %d: %v", i, err)
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
	if opts.Result != nil {
		r, err := entry(*opts.Result)
		if err != nil {
			return nil, err
		}
		b.Result = &r
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
