// Package server is the zt-witness HTTP service: a C2SP tlog-witness
// (https://c2sp.org/tlog-witness) that cosigns checkpoints of the logs in
// its configuration with C2SP tlog-cosignature keys.
//
//	POST /add-checkpoint          old size, consistency proof, checkpoint -> cosignature lines
//	GET  /<origin hash>/checkpoint  the latest checkpoint it cosigned for that log
//
// Outcomes of add-checkpoint, in the order they are checked (the spec's):
//
//	400  the body is malformed (tlogwitness.ParseRequest), the checkpoint is
//	     not a signed note or not a checkpoint, or the old size is larger
//	     than the checkpoint's size
//	404  the origin is not a log this witness cosigns
//	403  no signature by the log's key, or one that does not verify
//	409  the old size is not the size of the latest checkpoint cosigned for
//	     the origin (0 if none); Content-Type text/x.tlog.size, body "<size>\n"
//	422  a size-0 checkpoint whose root is not the empty tree's, a proof
//	     when the old size is 0, a root differing from the cosigned one at the
//	     same size, or a consistency proof that does not verify
//	200  cosignature lines, one per witness key
//	500  the state could not be read or written (nothing was cosigned)
//
// Other errors carry the project's JSON error body ({"code","field","message"}).
//
// For each origin, checking the old size, verifying, signing and durably
// storing the new checkpoint happen under one lock, and the cosignature is
// returned only after the state is on disk (package state): the witness
// never cosigns two different trees of one size and never rolls back, even
// across crashes. A 422 for a checkpoint the log did sign is also filed as
// split-view evidence (package evidence).
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	flog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"

	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/verifier/splitview"
	"github.com/zt-infra/ztlog/witness/config"
	"github.com/zt-infra/ztlog/witness/cosigner"
	"github.com/zt-infra/ztlog/witness/evidence"
	"github.com/zt-infra/ztlog/witness/state"
	"github.com/zt-infra/ztlog/witness/tlogwitness"
)

// Options configure New.
type Options struct {
	// Cosigners sign checkpoints; at least one. Each answer carries one
	// cosignature per cosigner.
	Cosigners []*cosigner.Cosigner
	// Store is the opened state directory.
	Store *state.Store
	// Config returns the configuration in force (it may change between
	// calls, e.g. config.Watcher.Current).
	Config func() *config.Config
	// Evidence, when set, files split-view evidence for rejected
	// checkpoints the log did sign.
	Evidence *evidence.Reporter
	// Logger receives structured logs. Default: slog.Default().
	Logger *slog.Logger
	// Registerer receives the witness's metrics. Default: none.
	Registerer prometheus.Registerer
}

// Witness is a running witness.
type Witness struct {
	opts    Options
	signers []note.Signer
	name    string
	logger  *slog.Logger
	metrics *metrics

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// Error is a protocol outcome other than success.
type Error struct {
	// Status is the HTTP status code the spec assigns.
	Status int
	// Code is the machine-readable reason (httperr.Error code).
	Code string
	// Message says what is wrong and what to do.
	Message string
	// LatestSize is, for 409, the size of the latest cosigned checkpoint.
	LatestSize uint64
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func fail(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// New returns a witness.
func New(opts Options) (*Witness, error) {
	if len(opts.Cosigners) == 0 || opts.Store == nil || opts.Config == nil {
		return nil, errors.New("witness: New needs cosigners, a store and a config")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w := &Witness{opts: opts, locks: map[string]*sync.Mutex{}, name: opts.Cosigners[0].Name()}
	for _, c := range opts.Cosigners {
		w.signers = append(w.signers, c.Signer)
	}
	w.logger = opts.Logger.With("component", "witness", "witness", w.name)
	w.metrics = newMetrics(opts.Registerer)
	return w, nil
}

// Name is the witness's (first key's) name.
func (w *Witness) Name() string { return w.name }

func (w *Witness) lock(origin string) func() {
	w.mu.Lock()
	l, ok := w.locks[origin]
	if !ok {
		l = &sync.Mutex{}
		w.locks[origin] = l
	}
	w.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// AddCheckpoint performs one add-checkpoint call: the request body in, the
// cosignature lines out, or an *Error. source names the requester in logs
// and evidence.
func (w *Witness) AddCheckpoint(ctx context.Context, body []byte, source string) ([]byte, error) {
	sigs, origin, err := w.addCheckpoint(body, source)
	status := http.StatusOK
	var e *Error
	if errors.As(err, &e) {
		status = e.Status
	} else if err != nil {
		status = http.StatusInternalServerError
	}
	w.metrics.requests.WithLabelValues(fmt.Sprint(status)).Inc()
	if err != nil {
		level := slog.LevelInfo
		if status >= 500 || status == http.StatusUnprocessableEntity || status == http.StatusForbidden {
			level = slog.LevelWarn
		}
		w.logger.Log(ctx, level, "add-checkpoint refused", "status", status, "origin", origin, "source", source, "error", err)
	}
	return sigs, err
}

func (w *Witness) addCheckpoint(body []byte, source string) ([]byte, string, error) {
	req, err := tlogwitness.ParseRequest(body)
	if err != nil {
		return nil, "", fail(http.StatusBadRequest, "bad_request", "%v", err)
	}
	origin, _, ok := bytes.Cut(req.Checkpoint, []byte("\n"))
	if !ok || len(origin) == 0 {
		return nil, "", fail(http.StatusBadRequest, "bad_checkpoint", "the checkpoint has no origin line")
	}
	l, ok := w.opts.Config().Log(string(origin))
	if !ok || !l.Witnessed() {
		return nil, string(origin), fail(http.StatusNotFound, "unknown_origin", "this witness does not cosign the log %q; add it to the witness configuration", truncate(origin))
	}
	n, err := note.Open(req.Checkpoint, note.VerifierList(l.Verifier()))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalidSig *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return nil, l.Origin, fail(http.StatusForbidden, "no_log_signature", "the checkpoint carries no signature by the log key %s", l.VerifierKey)
		case errors.As(err, &invalidSig):
			return nil, l.Origin, fail(http.StatusForbidden, "bad_log_signature", "the log key's signature on the checkpoint does not verify")
		default:
			return nil, l.Origin, fail(http.StatusBadRequest, "bad_checkpoint", "the checkpoint is not a signed note: %v", err)
		}
	}
	cp, err := parseCheckpoint(n.Text)
	if err != nil {
		return nil, l.Origin, fail(http.StatusBadRequest, "bad_checkpoint", "%v", err)
	}
	if req.OldSize > cp.Size {
		return nil, l.Origin, fail(http.StatusBadRequest, "old_size_too_large", "old size %d is larger than the checkpoint's size %d", req.OldSize, cp.Size)
	}

	unlock := w.lock(l.Origin)
	defer unlock()
	prevNote, err := w.opts.Store.Load(l.Origin)
	if err != nil {
		return nil, l.Origin, err
	}
	var prev *flog.Checkpoint
	if prevNote != nil {
		text, _, _ := bytes.Cut(prevNote, []byte("\n\n"))
		prev, err = parseCheckpoint(string(text) + "\n")
		if err != nil || prev.Origin != l.Origin {
			return nil, l.Origin, fmt.Errorf("state of %q is unreadable (%v); refusing to cosign rather than forget it", l.Origin, err)
		}
	}
	var prevSize uint64
	if prev != nil {
		prevSize = prev.Size
	}
	if req.OldSize != prevSize {
		e := fail(http.StatusConflict, "old_size_mismatch", "the latest checkpoint cosigned for %q has size %d, not %d; retry with old size %d", l.Origin, prevSize, req.OldSize, prevSize)
		e.LatestSize = prevSize
		return nil, l.Origin, e
	}
	if cp.Size == 0 && !bytes.Equal(cp.Hash, rfc6962.DefaultHasher.EmptyRoot()) {
		return nil, l.Origin, fail(http.StatusUnprocessableEntity, "bad_empty_root", "a checkpoint of size 0 must have the empty tree's root")
	}
	switch {
	case req.OldSize == 0:
		if len(req.Proof) != 0 {
			return nil, l.Origin, fail(http.StatusUnprocessableEntity, "unexpected_proof", "old size 0 takes no consistency proof, got %d lines", len(req.Proof))
		}
	default:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, req.OldSize, cp.Size, req.Proof, prev.Hash, cp.Hash); err != nil {
			msg := fmt.Sprintf("the consistency proof from the cosigned size %d to %d does not verify: %v", req.OldSize, cp.Size, oneLine(err))
			if req.OldSize == cp.Size {
				msg = fmt.Sprintf("the checkpoint's root differs from the root cosigned at size %d", cp.Size)
			}
			w.fileEvidence(l, prevNote, req, n, source, msg)
			return nil, l.Origin, fail(http.StatusUnprocessableEntity, "inconsistent", "%s", msg)
		}
	}

	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signers...)
	if err != nil {
		return nil, l.Origin, fmt.Errorf("cosign: %w", err)
	}
	cosigs := signed[len(n.Text)+1:]
	var stored bytes.Buffer
	stored.WriteString(n.Text)
	stored.WriteString("\n")
	for _, s := range n.Sigs {
		fmt.Fprintf(&stored, "— %s %s\n", s.Name, s.Base64)
	}
	stored.Write(cosigs)
	if err := w.opts.Store.Store(l.Origin, stored.Bytes()); err != nil {
		return nil, l.Origin, err
	}
	w.metrics.cosignedSize.WithLabelValues(l.Origin).Set(float64(cp.Size))
	w.logger.Debug("cosigned", "origin", l.Origin, "size", cp.Size, "old", req.OldSize, "source", source)
	return cosigs, l.Origin, nil
}

// fileEvidence records a rejected but log-signed checkpoint against the
// cosigned one.
func (w *Witness) fileEvidence(l *config.Log, prevNote []byte, req *tlogwitness.Request, n *note.Note, source, why string) {
	if w.opts.Evidence == nil {
		return
	}
	var incoming bytes.Buffer
	incoming.WriteString(n.Text + "\n")
	for _, s := range n.Sigs {
		fmt.Fprintf(&incoming, "— %s %s\n", s.Name, s.Base64)
	}
	now := time.Now()
	hashes := make([]string, len(req.Proof))
	for i, h := range req.Proof {
		hashes[i] = b64(h)
	}
	e, raw, err := splitview.Build([]string{l.VerifierKey}, [2][]byte{prevNote, incoming.Bytes()},
		[2]splitview.Observation{
			{Source: "cosigned by " + w.name + " (state)", Time: now.UTC().Format(time.RFC3339)},
			{Source: "add-checkpoint from " + source, Time: now.UTC().Format(time.RFC3339)},
		},
		&splitview.ProofAttempt{Hashes: hashes, Source: "add-checkpoint request from " + source, Error: why},
		w.name, now)
	if err != nil {
		w.logger.Warn("rejected checkpoint is not filable as split-view evidence", "origin", l.Origin, "error", err)
		return
	}
	if _, _, err := w.opts.Evidence.Report(e, raw); err != nil {
		w.logger.Error("could not file split-view evidence", "origin", l.Origin, "error", err)
	}
}

// Checkpoint returns the latest cosigned checkpoint of the log whose
// origin hash is given, or nil if there is none.
func (w *Witness) Checkpoint(originHash string) ([]byte, error) {
	return w.opts.Store.LoadHash(originHash)
}

func parseCheckpoint(text string) (*flog.Checkpoint, error) {
	var cp flog.Checkpoint
	if _, err := cp.Unmarshal([]byte(text)); err != nil {
		return nil, fmt.Errorf("not a checkpoint: %w", err)
	}
	if len(cp.Hash) != rfc6962.DefaultHasher.Size() {
		return nil, fmt.Errorf("not a checkpoint: the root hash is %d bytes, want %d", len(cp.Hash), rfc6962.DefaultHasher.Size())
	}
	return &cp, nil
}

// Handler serves the witness's HTTP API.
func (w *Witness) Handler() http.Handler {
	return http.HandlerFunc(w.serveHTTP)
}

func (w *Witness) serveHTTP(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path == tlogwitness.AddCheckpointPath {
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			httperr.WriteError(rw, http.StatusMethodNotAllowed, &httperr.Error{Code: "method_not_allowed", Message: "add-checkpoint takes POST"})
			return
		}
		w.serveAddCheckpoint(rw, r)
		return
	}
	if hash, ok := strings.CutSuffix(strings.TrimPrefix(r.URL.Path, "/"), "/checkpoint"); ok && !strings.Contains(hash, "/") {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			rw.Header().Set("Allow", "GET, HEAD")
			httperr.WriteError(rw, http.StatusMethodNotAllowed, &httperr.Error{Code: "method_not_allowed", Message: "checkpoint takes GET"})
			return
		}
		w.serveCheckpoint(rw, hash)
		return
	}
	httperr.WriteError(rw, http.StatusNotFound, &httperr.Error{Code: "no_such_endpoint", Field: "path",
		Message: fmt.Sprintf("no endpoint at %s; a witness serves POST /add-checkpoint and GET /<origin hash>/checkpoint", r.URL.Path)})
}

func (w *Witness) serveAddCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, tlogwitness.MaxRequestSize+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			httperr.WriteError(rw, http.StatusBadRequest, &httperr.Error{Code: "bad_request", Field: "body",
				Message: fmt.Sprintf("the request body is larger than %d bytes", tlogwitness.MaxRequestSize)})
			return
		}
		httperr.WriteError(rw, http.StatusBadRequest, &httperr.Error{Code: "bad_request", Field: "body", Message: "reading the body: " + err.Error()})
		return
	}
	sigs, err := w.AddCheckpoint(r.Context(), body, r.RemoteAddr)
	var e *Error
	switch {
	case err == nil:
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Header().Set("Cache-Control", "no-store")
		rw.WriteHeader(http.StatusOK)
		rw.Write(sigs)
	case errors.As(err, &e) && e.Status == http.StatusConflict:
		rw.Header().Set("Content-Type", tlogwitness.SizeContentType)
		rw.Header().Set("Cache-Control", "no-store")
		rw.WriteHeader(http.StatusConflict)
		rw.Write(tlogwitness.FormatSize(e.LatestSize))
	case errors.As(err, &e):
		httperr.WriteError(rw, e.Status, &httperr.Error{Code: e.Code, Message: e.Message})
	default:
		httperr.WriteError(rw, http.StatusInternalServerError, &httperr.Error{Code: "state_error",
			Message: "the witness could not read or write its state; nothing was cosigned: " + err.Error()})
	}
}

func (w *Witness) serveCheckpoint(rw http.ResponseWriter, hash string) {
	if !state.ValidOriginHash(hash) {
		httperr.WriteError(rw, http.StatusNotFound, &httperr.Error{Code: "not_found", Field: "path",
			Message: fmt.Sprintf("%q is not an origin hash (lowercase hex SHA-256 of the log's origin)", truncate([]byte(hash)))})
		return
	}
	cp, err := w.Checkpoint(hash)
	if err != nil {
		httperr.WriteError(rw, http.StatusInternalServerError, &httperr.Error{Code: "state_error", Message: err.Error()})
		return
	}
	if cp == nil {
		httperr.WriteError(rw, http.StatusNotFound, &httperr.Error{Code: "not_found", Field: "path",
			Message: "this witness has never cosigned a checkpoint of that log"})
		return
	}
	rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-cache")
	rw.Write(cp)
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
