package server

// Interoperability: Tessera's own witness client (tessera.WithWitnesses,
// driven by a policy parsed with tessera.NewWitnessGroupFromPolicy) gets
// cosignatures from this witness, and the log publishes checkpoints that
// carry them.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	ztlog "github.com/zt-infra/ztlog/log"
	"github.com/zt-infra/ztlog/log/logtest"
	"github.com/zt-infra/ztlog/log/storage/posix"
	"github.com/zt-infra/ztlog/witness/cosigner"
)

func TestTesseraWitnessClientInterop(t *testing.T) {
	for _, alg := range []string{cosigner.Ed25519, cosigner.MLDSA44} {
		t.Run(alg, func(t *testing.T) { testTesseraInterop(t, alg) })
	}
}

func testTesseraInterop(t *testing.T, alg string) {
	skey, vkey, err := ztlog.GenerateKey("interop.example/log")
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ztlog.ParseKey(skey)
	f := newFixture(t, []*testLog{{origin: "interop.example/log", vkey: vkey}}, alg)

	policy := fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", vkey, f.cosigners[0].VerifierKey, f.url)
	group, err := tessera.NewWitnessGroupFromPolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	b, err := posix.Open(ctx, posix.Config{Dir: logtest.Dir(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ztlog.Open(ctx, ztlog.Options{
		Backend: b, Key: key, CheckpointInterval: 100 * time.Millisecond,
		Witnesses: &group, WitnessOptions: &tessera.WitnessOptions{Timeout: 5 * time.Second},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(context.Background())

	wv := note.VerifierList(f.cosigners[0].Verifier)
	var last uint64
	for round := 0; round < 3; round++ {
		var idx uint64
		for i := 0; i < 5; i++ {
			idx, err = l.Append(ctx, []byte(fmt.Sprintf(`{"round":%d,"i":%d}`, round, i)))
			if err != nil {
				t.Fatal(err)
			}
		}
		actx, cancel := context.WithTimeout(ctx, 20*time.Second)
		cp, err := l.Await(actx, idx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if cp.Size <= last {
			t.Fatalf("round %d: size %d did not grow from %d", round, cp.Size, last)
		}
		last = cp.Size
		// The published checkpoint carries the witness's cosignature.
		if _, err := note.Open(cp.Note, wv); err != nil {
			t.Fatalf("round %d: published checkpoint has no verifying cosignature: %v\n%s", round, err, cp.Note)
		}
		// And the witness's state agrees.
		stored, _ := f.store.Load("interop.example/log")
		var size uint64
		if _, err := fmt.Sscanf(string(stored), "interop.example/log\n%d\n", &size); err != nil || size < cp.Size {
			t.Fatalf("witness state %q, published size %d", stored, cp.Size)
		}
	}
}
