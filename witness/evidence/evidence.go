// Package evidence files split-view evidence and raises the alert: each
// distinct pair of conflicting checkpoints becomes one file in the evidence
// directory (format: verifier/splitview), one ERROR log line with
// "alert":"split_view", and one increment of the
// ztwitness_split_views_total counter.
//
// Files are named split-view-<origin hash prefix>-<pair digest>.json, where
// the pair digest is over the two checkpoint bodies, so seeing the same
// conflict again (every poll, every retry) does not write a new file or
// raise a new alert.
package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/zt-infra/ztlog/verifier/splitview"
	"github.com/zt-infra/ztlog/witness/state"
)

// Reporter files evidence in one directory.
type Reporter struct {
	dir    string
	logger *slog.Logger
	count  *prometheus.CounterVec

	mu sync.Mutex
}

// New returns a reporter writing into dir (created if needed). reg may be
// nil.
func New(dir string, logger *slog.Logger, reg prometheus.Registerer) (*Reporter, error) {
	if dir == "" {
		return nil, errors.New("evidence: no directory given")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	if logger == nil {
		logger = slog.Default()
	}
	r := &Reporter{
		dir:    dir,
		logger: logger,
		count: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztwitness_split_views_total",
			Help: "Distinct split views (pairs of conflicting checkpoints of one log) detected, by origin and kind.",
		}, []string{"origin", "kind"}),
	}
	if reg != nil {
		if err := reg.Register(r.count); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, err
			}
			r.count = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return r, nil
}

// Dir is the evidence directory.
func (r *Reporter) Dir() string { return r.dir }

// Report files e (raw is its encoding, from splitview.Build) unless the
// same pair was filed before, and raises the alert for a new one. It
// returns the file's path and whether it is new.
func (r *Reporter) Report(e *splitview.Evidence, raw []byte) (string, bool, error) {
	h := sha256.New()
	for _, cp := range e.Checkpoints {
		body, _, _ := strings.Cut(cp, "\n\n")
		h.Write([]byte(body))
		h.Write([]byte{0})
	}
	name := fmt.Sprintf("split-view-%s-%s.json", state.OriginHash(e.Origin)[:12], hex.EncodeToString(h.Sum(nil))[:16])
	path := filepath.Join(r.dir, name)
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := os.Stat(path); err == nil {
		return path, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("evidence: %w", err)
	}
	if err := state.WriteFileAtomic(r.dir, name, raw); err != nil {
		return "", false, fmt.Errorf("evidence: %w", err)
	}
	r.count.WithLabelValues(e.Origin, e.Kind).Inc()
	sizes := [2]string{}
	for i, cp := range e.Checkpoints {
		lines := strings.SplitN(cp, "\n", 3)
		if len(lines) > 1 {
			sizes[i] = lines[1]
		}
	}
	r.logger.Error("ALERT: split view of a log detected; evidence filed",
		"alert", "split_view", "origin", e.Origin, "kind", e.Kind,
		"sizes", sizes[0]+","+sizes[1], "conclusive", e.Kind != splitview.Unproven,
		"evidence", path, "seen", e.Observed[0].Source+" | "+e.Observed[1].Source,
		"verify_with", "zt-audit verify "+path)
	return path, true, nil
}
