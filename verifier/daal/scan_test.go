package daal

import (
	"context"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
)

// ranges is a query that records the block ranges asked for and answers
// one event per block, every third one removed.
func ranges(asked *[][2]uint64) func(context.Context, uint64, uint64) ([]types.Log, error) {
	return func(_ context.Context, lo, hi uint64) ([]types.Log, error) {
		*asked = append(*asked, [2]uint64{lo, hi})
		var out []types.Log
		for b := lo; b <= hi; b++ {
			out = append(out, types.Log{BlockNumber: b, Removed: b%3 == 0})
		}
		return out, nil
	}
}

func TestScanEventsAsksInSteps(t *testing.T) {
	var asked [][2]uint64
	if _, err := ScanEvents(context.Background(), 10, 34, 10, ranges(&asked)); err != nil {
		t.Fatal(err)
	}
	want := [][2]uint64{{10, 19}, {20, 29}, {30, 34}}
	if len(asked) != len(want) {
		t.Fatalf("asked %v, want %v", asked, want)
	}
	for i := range want {
		if asked[i] != want[i] {
			t.Errorf("range %d: asked %v, want %v", i, asked[i], want[i])
		}
	}
}

func TestScanEventsLeavesOutRemoved(t *testing.T) {
	var asked [][2]uint64
	logs, err := ScanEvents(context.Background(), 1, 9, 4, ranges(&asked))
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, l := range logs {
		got = append(got, l.BlockNumber)
	}
	want := []uint64{1, 2, 4, 5, 7, 8}
	if len(got) != len(want) {
		t.Fatalf("blocks %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d in block %d, want %d", i, got[i], want[i])
		}
	}
}

func TestScanEventsDefaultStep(t *testing.T) {
	var asked [][2]uint64
	if _, err := ScanEvents(context.Background(), 0, DefaultBlockStep, 0, ranges(&asked)); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 {
		t.Fatalf("asked %v, want two ranges", asked)
	}
	if asked[0][1] != DefaultBlockStep-1 {
		t.Errorf("first range ends at %d, want %d", asked[0][1], DefaultBlockStep-1)
	}
}

func TestScanEventsSingleBlock(t *testing.T) {
	var asked [][2]uint64
	logs, err := ScanEvents(context.Background(), 7, 7, 10, ranges(&asked))
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 1 {
		t.Errorf("%d events, want 1", len(logs))
	}
}

func TestScanEventsWrapsTheCause(t *testing.T) {
	cause := errors.New("range too large")
	_, err := ScanEvents(context.Background(), 0, 100, 50, func(context.Context, uint64, uint64) ([]types.Log, error) {
		return nil, cause
	})
	if !errors.Is(err, cause) {
		t.Fatalf("error %v does not wrap the query's", err)
	}
	if want := "read ActionLogged events in blocks 0..49: range too large"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
