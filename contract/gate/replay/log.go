package replay

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/client"

	"github.com/zt-infra/ztlog/contract/entry"
)

// Source reads a log's tlog-tiles resources (tessera's client.HTTPFetcher
// and client.FileFetcher are Sources).
type Source interface {
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
}

// Summary counts the decisions a Run replayed.
type Summary struct {
	TreeSize  uint64 `json:"tree_size"`
	Entries   uint64 `json:"entries"`
	Decisions uint64 `json:"decisions"`
	Same      uint64 `json:"same"`
	Different uint64 `json:"different"`
	Gate      uint64 `json:"gate"`
	// Unreplayable counts decisions whose policy could not be replayed
	// (Replayer.KeepGoing).
	Unreplayable uint64        `json:"unreplayable"`
	Duration     time.Duration `json:"duration_ns"`
	// PerSec is decisions replayed per second (reading the log included).
	PerSec float64 `json:"decisions_per_sec"`
}

// Run reads the log from index 0 up to (not including) end — 0: the
// checkpoint's size — observing every entry, and replays each decision
// whose index want accepts (nil: all), reporting each result. It stops at
// the first error (a policy that cannot be replayed included).
func (r *Replayer) Run(ctx context.Context, src Source, end uint64, want func(uint64) bool, report func(*Result) error) (*Summary, error) {
	start := time.Now()
	size, err := treeSize(ctx, src)
	if err != nil {
		return nil, err
	}
	sum := &Summary{TreeSize: size}
	if end == 0 || end > size {
		if end > size {
			return nil, fmt.Errorf("replay: index %d is beyond the log's checkpoint (size %d)", end-1, size)
		}
		end = size
	}
	for i := uint64(0); i < end; {
		b, err := client.GetEntryBundle(ctx, src.ReadEntryBundle, i/256, size)
		if err != nil {
			return nil, fmt.Errorf("replay: read entry bundle %d: %w", i/256, err)
		}
		for _, leaf := range b.Entries[i%256:] {
			if i >= end {
				break
			}
			if err := r.entry(ctx, i, leaf, want, report, sum); err != nil {
				return nil, err
			}
			i++
		}
	}
	sum.Entries = end
	sum.Duration = time.Since(start)
	if s := sum.Duration.Seconds(); s > 0 {
		sum.PerSec = float64(sum.Decisions) / s
	}
	return sum, nil
}

func (r *Replayer) entry(ctx context.Context, i uint64, leaf []byte, want func(uint64) bool, report func(*Result) error, sum *Summary) error {
	e, err := entry.Parse(leaf)
	if err != nil {
		return fmt.Errorf("replay: entry %d: %w", i, err)
	}
	if err := r.Observe(i, leaf, e); err != nil {
		return err
	}
	d, ok := e.(*entry.Decision)
	if !ok || (want != nil && !want(i)) {
		return nil
	}
	res, err := r.Decision(ctx, i, d)
	if errors.Is(err, ErrPolicy) && r.KeepGoing {
		res, err = &Result{Index: i, Verdict: Unreplayable, Committed: Decided{Effect: d.Effect, Reasons: d.Reasons}, Saw: Saw, Error: err.Error()}, nil
	}
	if err != nil {
		return err
	}
	sum.Decisions++
	switch res.Verdict {
	case Same:
		sum.Same++
	case Gate:
		sum.Gate++
	case Unreplayable:
		sum.Unreplayable++
	default:
		sum.Different++
	}
	return report(res)
}

// treeSize is the size line of the log's checkpoint (not verified here).
func treeSize(ctx context.Context, src Source) (uint64, error) {
	cp, err := src.ReadCheckpoint(ctx)
	if err != nil {
		return 0, fmt.Errorf("replay: read the checkpoint: %w", err)
	}
	lines := strings.SplitN(string(cp), "\n", 3)
	if len(lines) < 3 {
		return 0, fmt.Errorf("replay: the checkpoint is not a signed note")
	}
	n, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("replay: checkpoint size %q: %w", lines[1], err)
	}
	return n, nil
}
