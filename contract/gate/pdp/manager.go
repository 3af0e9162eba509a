package pdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// CommitFunc commits a `policy` entry for a version coming into force and
// returns its log index. The Manager puts a version in force only after its
// entry is committed, so every decision carrying a hash comes after that
// hash's policy entry in the log.
type CommitFunc func(ctx context.Context, v Version, loadedBy string) (uint64, error)

// Manager keeps the policy in force: it loads it, commits each version that
// comes into force, reloads on request (SIGHUP) or on file change, and keeps
// the old version when a new one fails to load or to commit.
type Manager struct {
	engine, path, revision string
	commit                 CommitFunc
	logger                 *slog.Logger
	pdp                    *PDP

	reloadMu sync.Mutex // one reload at a time
	mu       sync.Mutex
	status   Status
}

// Status is the policy in force and the outcome of the last reload, as
// GET /v1/policy and /readyz show it.
type Status struct {
	Version
	// LoadedAt and LoadedBy say when and why this version came into force;
	// LogIndex is its policy entry.
	LoadedAt string `json:"loaded_at"`
	LoadedBy string `json:"loaded_by"`
	LogIndex uint64 `json:"log_index"`
	// ReloadError is why the last reload failed (the version above stays
	// in force), with its time; empty after a successful reload.
	ReloadError   string `json:"reload_error,omitempty"`
	ReloadErrorAt string `json:"reload_error_at,omitempty"`
}

// ManagerConfig configures NewManager.
type ManagerConfig struct {
	Engine, Path, Revision string
	// Timeout bounds each evaluation (see NewPDP).
	Timeout time.Duration
	Commit  CommitFunc
	Logger  *slog.Logger
}

// NewManager loads the policy, commits its entry (loaded by "startup") and
// returns the manager with the policy in force.
func NewManager(ctx context.Context, cfg ManagerConfig) (*Manager, error) {
	if cfg.Commit == nil {
		return nil, errors.New("policy: a manager needs a CommitFunc")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p, err := Load(ctx, cfg.Engine, cfg.Path, cfg.Revision)
	if err != nil {
		return nil, err
	}
	idx, err := cfg.Commit(ctx, p.Version(), "startup")
	if err != nil {
		return nil, fmt.Errorf("policy: commit the policy entry of %s: %w", p.Version().Hash, err)
	}
	m := &Manager{engine: cfg.Engine, path: cfg.Path, revision: cfg.Revision, commit: cfg.Commit, logger: cfg.Logger,
		pdp: NewPDP(p, cfg.Timeout)}
	m.status = Status{Version: p.Version(), LoadedAt: time.Now().UTC().Format(time.RFC3339), LoadedBy: "startup", LogIndex: idx}
	m.logger.Info("policy in force", "engine", cfg.Engine, "hash", p.Version().Hash, "source", cfg.Path, "log_index", idx, "loaded_by", "startup")
	return m, nil
}

// PDP is the decision point whose policy the manager keeps.
func (m *Manager) PDP() *PDP { return m.pdp }

// Status is the policy in force and the last reload's outcome.
func (m *Manager) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status
}

// Reload loads the policy again. A version whose hash and sources equal the
// one in force changes nothing. A new version is committed, then put in
// force. If loading or committing fails, the version in force stays and
// the error is kept in Status (and returned).
func (m *Manager) Reload(ctx context.Context, loadedBy string) error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	fail := func(err error) error {
		m.mu.Lock()
		m.status.ReloadError = err.Error()
		m.status.ReloadErrorAt = time.Now().UTC().Format(time.RFC3339)
		hash := m.status.Hash
		m.mu.Unlock()
		m.logger.Error("policy reload failed; the previous version stays in force", "error", err.Error(), "in_force", hash, "trigger", loadedBy)
		return err
	}
	p, err := Load(ctx, m.engine, m.path, m.revision)
	if err != nil {
		return fail(err)
	}
	v := p.Version()
	cur := m.Status()
	if v.Hash == cur.Hash && v.SourceDigest == cur.SourceDigest {
		m.mu.Lock()
		m.status.ReloadError, m.status.ReloadErrorAt = "", ""
		m.mu.Unlock()
		m.logger.Info("policy unchanged", "hash", v.Hash, "trigger", loadedBy)
		return nil
	}
	idx, err := m.commit(ctx, v, loadedBy)
	if err != nil {
		return fail(fmt.Errorf("commit the policy entry of %s: %w", v.Hash, err))
	}
	m.pdp.Swap(p)
	m.mu.Lock()
	m.status = Status{Version: v, LoadedAt: time.Now().UTC().Format(time.RFC3339), LoadedBy: loadedBy, LogIndex: idx}
	m.mu.Unlock()
	m.logger.Info("policy in force", "engine", v.Engine, "hash", v.Hash, "previous", cur.Hash, "log_index", idx, "loaded_by", loadedBy)
	return nil
}

// Watch reloads the policy when its files change (after changes settle for
// settle, default 300ms), until ctx ends.
func (m *Manager) Watch(ctx context.Context, settle time.Duration) error {
	if settle <= 0 {
		settle = 300 * time.Millisecond
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	dir := m.path
	if st, err := os.Stat(m.path); err == nil && !st.IsDir() {
		dir = filepath.Dir(m.path) // a bundle file: watch its directory
	}
	add := func(root string) error {
		return filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return w.Add(p)
			}
			return nil
		})
	}
	if err := add(dir); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		var timer <-chan time.Time
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				if ev.Op&fsnotify.Create != 0 {
					if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
						add(ev.Name)
					}
				}
				timer = time.After(settle)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				m.logger.Warn("policy watch", "error", err.Error())
			case <-timer:
				timer = nil
				m.Reload(ctx, "file-change")
			}
		}
	}()
	return nil
}
