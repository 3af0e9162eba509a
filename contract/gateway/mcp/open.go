package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/gate/identity"
)

// maxIdleConns is how many idle connections to ztlog each identity keeps.
const maxIdleConns = 64

// Options are the settings of a gateway process (`zt mcp proxy`): where
// ztlog is, the two identities, and the Config fields. Open wires them.
type Options struct {
	// URL is the ztlog service, https://host:port.
	URL string
	// Agent is the identity calls are decided as (the actor); Broker the
	// identity of the gateway's broker (the receipts' audience, the
	// results' signer). Both carry the trust bundle.
	Agent, Broker identity.Source
	// ServerID is ztlog's SPIFFE ID (zero: any member of the trust domain).
	ServerID spiffeid.ID
	// Outbox is the directory keeping signed results until the log
	// commits them (as zt broker's; required). A call is answered once its
	// result is kept there (written and synced); a courier delivers it
	// right after, retries every OutboxInterval (default 30s) what the log
	// could not commit yet, and at start delivers what an earlier process
	// left.
	Outbox         string
	OutboxInterval time.Duration
	// Strict requires each decision's inclusion proof before forwarding.
	Strict *broker.Strict
	// Timeout bounds one decision attempt (default the SDK's).
	Timeout time.Duration

	Mapping    *Mapping
	ServerName string
	Runtime    attest.RuntimeContext
	DigestOnly bool
	// SyncResults answers a call only once its result is committed (kept
	// in the outbox until then).
	SyncResults   bool
	ResultTimeout time.Duration
	// PolicyWatchInterval is Config's: with filter_tools "policy", how
	// often the tools shown are checked against the policy in force
	// (default PossibleTTL, at least MinPolicyWatchInterval).
	PolicyWatchInterval time.Duration
	Observe             func(CallTiming)
	Logger              *slog.Logger
}

// Open builds the SDK client (the agent), reads the receipt issuer from
// ztlog, builds the broker (one-time ids in memory, JWKS from ztlog,
// results kept in the outbox and delivered by its courier with the
// broker's SVID) and connects the gateway to the upstream over t. ctx
// bounds the start and the deliveries. The returned close function closes
// the gateway and waits for the deliveries under way.
func Open(ctx context.Context, o Options, t sdk.Transport) (*Gateway, func(), error) {
	if o.URL == "" || o.Agent == nil || o.Broker == nil || o.Outbox == "" {
		return nil, nil, errors.New("mcp gateway: the ztlog URL, the agent and broker identities and the outbox are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.URL = strings.TrimSuffix(o.URL, "/")
	asvid, err := o.Agent.GetX509SVID()
	if err != nil {
		return nil, nil, fmt.Errorf("mcp gateway: agent SVID: %w", err)
	}
	// Many calls at once: keep as many connections (mutual TLS handshakes
	// are the expensive part) as there are callers.
	agentHTTP := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: maxIdleConns, IdleConnTimeout: 90 * time.Second,
		TLSClientConfig: identity.ClientTLS(o.Agent, o.Agent, o.ServerID, asvid.ID.TrustDomain())}}
	c, err := client.New(client.Config{URL: o.URL, SVID: o.Agent, Bundles: o.Agent, ServerID: o.ServerID, Timeout: o.Timeout,
		HTTPClient: agentHTTP})
	if err != nil {
		return nil, nil, fmt.Errorf("mcp gateway: %w", err)
	}
	issuer, err := c.Issuer(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("mcp gateway: ztlog at %s: %w", o.URL, err)
	}
	bsvid, err := o.Broker.GetX509SVID()
	if err != nil {
		return nil, nil, fmt.Errorf("mcp gateway: broker SVID: %w", err)
	}
	// The gateway honours only the receipts it obtains itself, and uses
	// each at once in this process: their one-time ids are kept in memory,
	// not fsynced to a file (gateway.md, "Receipts").
	replay := broker.NewInProcessReplay(5*time.Second, nil)
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: maxIdleConns, IdleConnTimeout: 90 * time.Second,
		TLSClientConfig: identity.ClientTLS(o.Broker, o.Broker, o.ServerID, bsvid.ID.TrustDomain())}}
	reporter := &broker.HTTPReporter{Client: hc, BaseURL: o.URL}
	outbox, err := broker.OpenOutbox(o.Outbox, o.Logger)
	if err != nil {
		return nil, nil, fmt.Errorf("mcp gateway: %w", err)
	}
	// The courier delivers what an earlier process left in the outbox,
	// and every result kept from now on.
	courier := outbox.StartCourier(ctx, reporter, o.OutboxInterval, broker.DefaultCourierParallel)
	var rep broker.Reporter = courier
	if o.SyncResults {
		rep = outbox.Reporter(reporter)
	}
	b, err := broker.New(broker.Config{SVID: o.Broker, Issuer: issuer, Keys: c.Keys(), Replay: replay, Reporter: rep,
		Strict: o.Strict, Logger: o.Logger})
	if err != nil {
		courier.Close()
		return nil, nil, err
	}
	g, err := New(ctx, Config{Client: c, Broker: b, Mapping: o.Mapping, ServerName: o.ServerName, Runtime: o.Runtime,
		DigestOnly: o.DigestOnly, ResultTimeout: o.ResultTimeout, PolicyWatchInterval: o.PolicyWatchInterval,
		Observe: o.Observe, Logger: o.Logger}, t)
	if err != nil {
		courier.Close()
		return nil, nil, err
	}
	return g, func() { g.Close(); courier.Close() }, nil
}
