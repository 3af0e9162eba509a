package broker_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/broker"
)

// Concurrent claims share fsyncs but stay one-time: of many claims of one
// id exactly one succeeds, every distinct id is claimed, and all of them
// are in the file when it is opened again.
func TestReplayConcurrentClaims(t *testing.T) {
	path := filepath.Join(t.TempDir(), "replay")
	r, err := broker.OpenReplay(path, time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	const n = 64
	var wg sync.WaitGroup
	var won, replayed atomic.Int64
	errs := make(chan error, 2*n)
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func(i int) {
			defer wg.Done()
			if err := r.Claim(fmt.Sprintf("distinct-%d", i), exp); err != nil {
				errs <- err
			}
		}(i)
		go func() {
			defer wg.Done()
			switch err := r.Claim("the-same", exp); {
			case err == nil:
				won.Add(1)
			case errors.Is(err, broker.ErrReplayed):
				replayed.Add(1)
			default:
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if won.Load() != 1 || replayed.Load() != n-1 {
		t.Fatalf("one id claimed %d times (%d refused), want once", won.Load(), replayed.Load())
	}
	r.Close()
	again, err := broker.OpenReplay(path, time.Second, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got := again.Len(); got != n+1 {
		t.Fatalf("reopened, the file holds %d ids, want %d", got, n+1)
	}
}
