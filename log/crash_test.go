package log

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
)

const (
	crashChildEnv = "ZTLOG_CRASH_CHILD_DIR"
	crashKeyEnv   = "ZTLOG_CRASH_CHILD_KEY"
)

// crashChild runs in a child process: it appends from many goroutines
// forever and acknowledges each sequenced entry on stdout as
// "ack <index> <base64 entry>". The parent kills it with SIGKILL.
func crashChild() {
	dir, skey := os.Getenv(crashChildEnv), os.Getenv(crashKeyEnv)
	key, err := ParseKey(skey)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	ctx := context.Background()
	b, err := posix.Open(ctx, posix.Config{Dir: dir}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	l, err := Open(ctx, Options{Backend: b, Key: key, CheckpointInterval: 100 * time.Millisecond, Logger: quietLogger})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var mu sync.Mutex
	for g := range 16 {
		go func() {
			for i := 0; ; i++ {
				nonce := make([]byte, 8+(i*7+g)%120)
				rand.Read(nonce)
				e := []byte(fmt.Sprintf(`{"g":%d,"i":%d,"nonce":"%s"}`, g, i, hex.EncodeToString(nonce)))
				idx, err := l.Append(ctx, e)
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(4)
				}
				line := fmt.Sprintf("ack %d %s\n", idx, base64.StdEncoding.EncodeToString(e))
				mu.Lock()
				os.Stdout.WriteString(line) // one write(2) per ack
				mu.Unlock()
			}
		}()
	}
	select {}
}

// TestCrashDurability kills a process that is appending with SIGKILL, three
// times, restarting it on the same directory each time, and proves that
// every index ever acknowledged holds the acknowledged bytes and that the
// final checkpoint is consistent with every checkpoint published before a
// kill.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test starts and kills real processes; skipped with -short")
	}
	dir := logtest.Dir(t)
	skey, _, err := GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseKey(skey)
	if err != nil {
		t.Fatal(err)
	}
	acked := map[uint64][]byte{}
	var before [][]byte // checkpoints read from disk while appends were in flight

	for round := range 3 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashKeyEnv+"="+skey)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		newAcks := 0
		killed := false
		timeout := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
		for sc.Scan() {
			idx, e, err := parseAck(sc.Text())
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if prev, ok := acked[idx]; ok && !bytes.Equal(prev, e) {
				t.Fatalf("round %d: index %d acknowledged twice with different entries", round, idx)
			}
			acked[idx] = e
			newAcks++
			if newAcks == 400 {
				// Take the published checkpoint while appends are in flight.
				if cp, err := os.ReadFile(filepath.Join(dir, "checkpoint")); err == nil {
					before = append(before, cp)
				}
			}
			if newAcks == 1500 && !killed {
				// Kill mid-flight; acks already in the pipe are still read.
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		timeout.Stop()
		err = cmd.Wait()
		if !killed {
			t.Fatalf("round %d: child exited before the kill: %v\n%s", round, err, stderr.String())
		}
		ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
		if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child did not die by SIGKILL: %v\n%s", round, err, stderr.String())
		}
		t.Logf("round %d: %d acknowledgements (%d total)", round, newAcks, len(acked))
	}
	if len(before) == 0 {
		t.Fatal("no checkpoint was read while appends were in flight")
	}

	// Restart in this process and check everything that was acknowledged.
	l := openTestLog(t, dir, key, nil)
	defer closeLog(t, l)
	var maxIdx uint64
	for idx := range acked {
		maxIdx = max(maxIdx, idx)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cp, err := l.Await(ctx, maxIdx)
	if err != nil {
		t.Fatalf("no checkpoint covering acknowledged index %d after restart: %v", maxIdx, err)
	}
	for idx, want := range acked {
		leaf, _, err := l.Entry(ctx, idx)
		if err != nil {
			t.Fatalf("acknowledged index %d: %v", idx, err)
		}
		if !bytes.Equal(leaf, want) {
			t.Fatalf("acknowledged index %d holds %q, acknowledged %q", idx, leaf, want)
		}
		p, err := l.InclusionProof(ctx, idx, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(rfc6962.DefaultHasher, idx, cp.Size, LeafHash(leaf), p, cp.Hash); err != nil {
			t.Fatalf("inclusion of acknowledged index %d: %v", idx, err)
		}
	}
	for i, raw := range before {
		old, _, _, err := flog.ParseCheckpoint(raw, testOrigin, key.Verifier)
		if err != nil {
			t.Fatalf("checkpoint %d read before a kill does not verify: %v", i, err)
		}
		p, err := l.ConsistencyProof(ctx, old.Size, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, p, old.Hash, cp.Hash); err != nil {
			t.Fatalf("checkpoint of size %d from before a kill is not a prefix of the restarted log (size %d): %v", old.Size, cp.Size, err)
		}
	}
	t.Logf("%d acknowledged entries verified in a tree of %d after 3 SIGKILLs", len(acked), cp.Size)
}

func parseAck(line string) (uint64, []byte, error) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "ack" {
		return 0, nil, fmt.Errorf("bad ack line %q", line)
	}
	idx, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, nil, err
	}
	e, err := base64.StdEncoding.DecodeString(f[2])
	return idx, e, err
}
