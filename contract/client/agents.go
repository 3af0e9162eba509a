package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// The agent registry, for administrators (the client's SVID must be one of
// the service's administrators; an agent may also read its own record).

// RegisterAgent registers (or re-registers) an agent and returns the
// committed change.
func (c *Client) RegisterAgent(ctx context.Context, req api.AgentRequest) (*api.AgentResponse, error) {
	req.Op = entry.AgentRegister
	return c.changeAgent(ctx, req)
}

// RevokeAgent revokes an agent and returns the committed change.
func (c *Client) RevokeAgent(ctx context.Context, id string) (*api.AgentResponse, error) {
	return c.changeAgent(ctx, api.AgentRequest{Op: entry.AgentRevoke, ID: id})
}

func (c *Client) changeAgent(ctx context.Context, req api.AgentRequest) (*api.AgentResponse, error) {
	body, err := json.Marshal(&req)
	if err != nil {
		return nil, err
	}
	var out api.AgentResponse
	if err := c.call(ctx, http.MethodPost, "/v1/agents", body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Agent returns an agent's registry record.
func (c *Client) Agent(ctx context.Context, id string) (*api.Agent, error) {
	var out api.Agent
	if err := c.call(ctx, http.MethodGet, "/v1/agents?id="+url.QueryEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Agents lists every registry record, registered and revoked.
func (c *Client) Agents(ctx context.Context) ([]api.Agent, error) {
	var out api.AgentList
	if err := c.call(ctx, http.MethodGet, "/v1/agents", nil, &out); err != nil {
		return nil, err
	}
	return out.Agents, nil
}

// maxAdminAnswer is the most read of an answer of the agent registry (a
// whole registry listing).
const maxAdminAnswer = 16 << 20

// call makes one request to the service; an answer other than 200 is a
// *ServiceError.
func (c *Client) call(ctx context.Context, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.cfg.URL+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := httperr.ReadBody(resp.Body, maxAdminAnswer)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return serviceError(resp.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not JSON of the expected shape: %w", method, path, err)
	}
	return nil
}
