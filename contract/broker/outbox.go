package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/internal/fsx"
)

// Outbox keeps signed results on disk until the log has committed them, so
// that a result whose POST /v1/results failed (server down, network, a
// crash of the broker right after the run) is not lost: it is written,
// synced, before the first attempt, removed once committed, and committed
// later by Flush (zt broker flushes at start and periodically; zt run
// flushes before it runs anything). A result the server refuses for good
// (4xx other than 429) is renamed NAME.rejected and kept for inspection.
//
// Files are named result-<sha256 of the body>.json and hold exactly the
// POST /v1/results body (ResultBody): the DSSE envelope as signed and the
// signer's chain. Re-posting a committed result is safe: the server answers
// with the entry it already committed.
type Outbox struct {
	dir    string
	logger *slog.Logger
}

// OpenOutbox opens (creating, mode 0700) the outbox directory.
func OpenOutbox(dir string, logger *slog.Logger) (*Outbox, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Outbox{dir: dir, logger: logger}, nil
}

// Dir is the outbox directory.
func (o *Outbox) Dir() string { return o.dir }

// Reporter returns a Reporter that keeps each result in the outbox until r
// has committed it.
func (o *Outbox) Reporter(r *HTTPReporter) Reporter { return &outboxReporter{o: o, r: r} }

type outboxReporter struct {
	o *Outbox
	r *HTTPReporter
}

func (or *outboxReporter) Report(ctx context.Context, s *attest.Signed) (*api.ResultResponse, error) {
	body := ResultBody(s)
	path, err := or.o.put(body)
	if err != nil {
		// Not kept: still try to commit it now, and say so if that fails.
		res, _, perr := or.r.commit(ctx, body)
		if perr != nil {
			return nil, fmt.Errorf("%w; and it could not be kept in the outbox: %w", perr, err)
		}
		return res, nil
	}
	return or.o.send(ctx, or.r, path, body)
}

// Pending lists the results waiting to be committed.
func (o *Outbox) Pending() ([]string, error) {
	ents, err := os.ReadDir(o.dir)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); e.Type().IsRegular() && strings.HasPrefix(n, "result-") && strings.HasSuffix(n, ".json") {
			out = append(out, filepath.Join(o.dir, n))
		}
	}
	slices.Sort(out)
	return out, nil
}

// Flush commits every pending result through r. It stops at the first
// result that cannot be committed for now (the server is unreachable or
// overloaded) and returns how many were committed and that error; results
// refused for good are set aside as .rejected and do not stop it.
func (o *Outbox) Flush(ctx context.Context, r *HTTPReporter) (int, error) {
	pending, err := o.Pending()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, path := range pending {
		body, err := os.ReadFile(path)
		if err != nil {
			return n, fmt.Errorf("outbox: %w", err)
		}
		if _, err := o.send(ctx, r, path, body); err != nil {
			if errors.As(err, new(*rejectedError)) {
				continue
			}
			return n, err
		}
		n++
	}
	return n, nil
}

// rejectedError is a result the server refused for good.
type rejectedError struct{ err error }

func (e *rejectedError) Error() string { return e.err.Error() }
func (e *rejectedError) Unwrap() error { return e.err }

// send commits the result kept at path; committed, the file is removed;
// refused for good, it becomes path.rejected.
func (o *Outbox) send(ctx context.Context, r *HTTPReporter, path string, body []byte) (*api.ResultResponse, error) {
	res, retryable, err := r.commit(ctx, body)
	switch {
	case err == nil:
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			o.logger.Warn("committed result left in the outbox (re-posting it is harmless)", "file", path, "error", rerr.Error())
		}
		return res, nil
	case retryable:
		o.logger.Warn("result kept in the outbox until the log commits it", "file", path, "error", err.Error())
		return nil, fmt.Errorf("%w (kept in %s; it is committed by the next flush)", err, path)
	default:
		o.logger.Error("the log refused a result; set aside", "file", path+".rejected", "error", err.Error())
		if rerr := os.Rename(path, path+".rejected"); rerr != nil {
			return nil, &rejectedError{fmt.Errorf("%w (and setting %s aside failed: %w)", err, path, rerr)}
		}
		return nil, &rejectedError{fmt.Errorf("%w (set aside as %s.rejected)", err, path)}
	}
}

// put writes body durably under its content name (an existing copy is
// the same result: kept as is).
func (o *Outbox) put(body []byte) (string, error) {
	sum := sha256.Sum256(body)
	name := "result-" + hex.EncodeToString(sum[:]) + ".json"
	path := filepath.Join(o.dir, name)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	return path, fsx.WriteAtomic(path, body, 0o600)
}
