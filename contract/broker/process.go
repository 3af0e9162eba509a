package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/contract/broker/sandbox"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// ProcessConfig is what a broker process opens before it takes work: its
// identity, the service it verifies receipts against and commits results
// to, and its files. SVID, Server, HTTP, ReplayPath, OutboxDir and Runner
// are required.
type ProcessConfig struct {
	SVID x509svid.Source
	// Server is the service's base URL (https://host:port); HTTP the
	// mutual-TLS client to it.
	Server string
	HTTP   *http.Client
	// Issuer is the log origin receipts must carry ("": read from the
	// service's /.well-known/ztlog).
	Issuer string
	// Keys gives the receipt JWKS (nil: fetched from the service's
	// /v1/receipts/jwks.json).
	Keys receipt.KeySource
	// ReplayPath is the file of honoured receipt ids; OutboxDir the
	// directory of signed results waiting to be committed.
	ReplayPath, OutboxDir string
	Runner                *sandbox.Runner
	Strict                *Strict
	// Witnesses checks witnessed receipts (see Config.Witnesses).
	Witnesses *trustpolicy.Policy
	Logger    *slog.Logger
}

// Process is a broker with its replay file, its outbox and the reporter
// that commits results to the service. Close it when done.
type Process struct {
	*Broker
	Issuer   string
	Outbox   *Outbox
	Reporter *HTTPReporter
	replay   *Replay
}

// Open opens the replay file and the outbox, reads the issuer if it is not
// given, and builds the broker. Results go to the outbox first, then to
// the service.
func Open(ctx context.Context, cfg ProcessConfig) (*Process, error) {
	if cfg.SVID == nil || cfg.Server == "" || cfg.HTTP == nil || cfg.ReplayPath == "" || cfg.OutboxDir == "" || cfg.Runner == nil {
		return nil, errors.New("broker: SVID, Server, HTTP, ReplayPath, OutboxDir and Runner are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	server := strings.TrimSuffix(cfg.Server, "/")
	issuer := cfg.Issuer
	if issuer == "" {
		info, err := receipt.FetchServiceInfo(ctx, cfg.HTTP, server)
		if err != nil {
			return nil, err
		}
		issuer = info.Origin
	}
	keys := cfg.Keys
	if keys == nil {
		keys = &receipt.HTTPKeys{Client: cfg.HTTP, URL: server + "/v1/receipts/jwks.json"}
	}
	replay, err := OpenReplay(cfg.ReplayPath, 5*time.Second, time.Now())
	if err != nil {
		return nil, fmt.Errorf("replay file %s: %w", cfg.ReplayPath, err)
	}
	outbox, err := OpenOutbox(cfg.OutboxDir, cfg.Logger)
	if err != nil {
		replay.Close()
		return nil, err
	}
	reporter := &HTTPReporter{Client: cfg.HTTP, BaseURL: server}
	b, err := New(Config{SVID: cfg.SVID, Issuer: issuer, Keys: keys, Replay: replay, Runner: cfg.Runner,
		Reporter: outbox.Reporter(reporter), Strict: cfg.Strict, Witnesses: cfg.Witnesses, Logger: cfg.Logger})
	if err != nil {
		replay.Close()
		return nil, err
	}
	return &Process{Broker: b, Issuer: issuer, Outbox: outbox, Reporter: reporter, replay: replay}, nil
}

// Close closes the replay file.
func (p *Process) Close() error { return p.replay.Close() }

// Flush commits the results waiting in the outbox: how many it committed,
// and an error if some still wait.
func (p *Process) Flush(ctx context.Context) (int, error) { return p.Outbox.Flush(ctx, p.Reporter) }

// FlushEvery commits waiting results now and then every interval until ctx
// ends, logging what it committed and what still waits.
func (p *Process) FlushEvery(ctx context.Context, every time.Duration, logger *slog.Logger) {
	for {
		if n, err := p.Flush(ctx); err != nil {
			logger.Warn("results still wait in the outbox", "outbox", p.Outbox.Dir(), "error", err.Error())
		} else if n > 0 {
			logger.Info("committed results from the outbox", "outbox", p.Outbox.Dir(), "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// Pending is how many results wait in the outbox (-1 if unreadable).
func (p *Process) Pending() int {
	names, err := p.Outbox.Pending()
	if err != nil {
		return -1
	}
	return len(names)
}
