package config

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultPoll is how often a Watcher looks at its file.
const DefaultPoll = time.Second

// Watcher holds the current configuration of a file and re-reads the file
// when its content changes. An invalid new version is logged and ignored:
// the previous configuration stays in force.
type Watcher struct {
	path   string
	logger *slog.Logger
	cur    atomic.Pointer[Config]

	mu      sync.Mutex
	sum     [32]byte
	lastErr error
}

// Watch loads path (which must be valid) and, until ctx ends, re-reads it
// every poll interval (DefaultPoll when 0).
func Watch(ctx context.Context, path string, poll time.Duration, logger *slog.Logger) (*Watcher, error) {
	if poll == 0 {
		poll = DefaultPoll
	}
	if poll < 0 {
		return nil, fmt.Errorf("config poll interval %s is negative (0 takes the default, %s)", poll, DefaultPoll)
	}
	if logger == nil {
		logger = slog.Default()
	}
	w := &Watcher{path: path, logger: logger}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(path, raw)
	if err != nil {
		return nil, err
	}
	w.cur.Store(c)
	w.sum = sha256.Sum256(raw)
	go func() {
		t := time.NewTicker(poll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.Reload()
			}
		}
	}()
	return w, nil
}

// Current is the configuration in force.
func (w *Watcher) Current() *Config { return w.cur.Load() }

// Err is the error of the last reload attempt that failed, or nil when the
// file in force is the file on disk.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lastErr
}

// Reload re-reads the file now. It returns nil when the file is unchanged
// or was loaded, and the error when the new content is invalid (the
// previous configuration stays in force).
func (w *Watcher) Reload() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	raw, err := os.ReadFile(w.path)
	if err != nil {
		if w.lastErr == nil || w.lastErr.Error() != err.Error() {
			w.logger.Error("config file unreadable; keeping the configuration in force", "path", w.path, "error", err)
		}
		w.lastErr = err
		return err
	}
	sum := sha256.Sum256(raw)
	if sum == w.sum {
		return w.lastErr
	}
	w.sum = sum
	c, err := Parse(w.path, raw)
	if err != nil {
		w.lastErr = err
		w.logger.Error("config file changed but is invalid; keeping the configuration in force", "path", w.path, "error", err)
		return err
	}
	w.lastErr = nil
	w.cur.Store(c)
	w.logger.Info("config reloaded", "path", w.path, "logs", len(c.Logs), "peers", len(c.Peers))
	return nil
}
