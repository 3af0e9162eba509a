package server

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strconv"
	"testing"

	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/tlogwitness"
	"golang.org/x/mod/sumdb/note"
)

// FuzzAddCheckpoint feeds arbitrary request bodies to a witness that
// cosigns one log. Whatever comes in, the answer is a cosignature that
// verifies over the submitted checkpoint or one of the spec's refusals,
// never a server error, and the cosigned size never goes down.
func FuzzAddCheckpoint(f *testing.F) {
	l := newTestLog(f, "fuzz.example/log")
	l.grow(20, "e")
	fx := newBenchFixture(f, []*testLog{l}, cosigner.Ed25519)
	f.Add([]byte("old 0\n\n" + l.checkpoint(f, 3)))
	f.Add([]byte(l.request(f, 3, 7)))
	f.Add([]byte(l.request(f, 7, 7)))
	f.Add([]byte(l.request(f, 7, 20)))
	f.Add([]byte("old 5\n\n" + l.checkpoint(f, 4)))
	if raw, err := os.ReadFile("../../testdata/tlog-witness/spec-example-request.txt"); err == nil {
		f.Add(raw)
	}
	var high uint64
	f.Fuzz(func(t *testing.T, body []byte) {
		sigs, err := fx.w.AddCheckpoint(context.Background(), body, "fuzz")
		var e *Error
		switch {
		case err == nil:
			req, perr := tlogwitness.ParseRequest(body)
			if perr != nil {
				t.Fatalf("cosigned an unparseable request: %v", perr)
			}
			if _, err := note.Open(append(append([]byte{}, req.Checkpoint...), sigs...), fx.verifiers()); err != nil {
				t.Fatalf("cosignature does not verify: %v", err)
			}
		case errors.As(err, &e):
			switch e.Status {
			case http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusUnprocessableEntity:
			default:
				t.Fatalf("status %d: %v", e.Status, err)
			}
		default:
			t.Fatalf("internal error: %v", err)
		}
		stored, _ := fx.w.opts.Store.Load(l.origin)
		if stored != nil {
			lines := bytes.SplitN(stored, []byte("\n"), 3)
			size, _ := strconv.ParseUint(string(lines[1]), 10, 64)
			if size < high {
				t.Fatalf("cosigned size went from %d to %d", high, size)
			}
			high = size
		}
	})
}
