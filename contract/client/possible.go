package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/zt-infra/ztlog/contract/api"
)

// Possible asks POST /v1/actions/possible whether the policy in force could
// ever allow each action for this client's identity. The answer is
// advisory — never evidence, never an authorization, nothing is committed
// — and is for presentation only (hiding what can never be allowed): every
// action must still be decided with Decide. At most api.MaxPossibleActions
// names per call. The answer is checked to hold one answer per action
// asked, in order, each "never" or "possible".
func (c *Client) Possible(ctx context.Context, actions []string) (*api.PossibleResponse, error) {
	body, err := json.Marshal(&api.PossibleRequest{Actions: actions})
	if err != nil {
		return nil, err
	}
	var out api.PossibleResponse
	if err := c.call(ctx, http.MethodPost, "/v1/actions/possible", body, &out); err != nil {
		return nil, err
	}
	if len(out.Answers) != len(actions) {
		return nil, fmt.Errorf("POST /v1/actions/possible: %d answers for %d actions", len(out.Answers), len(actions))
	}
	for i, a := range out.Answers {
		if a.Action != actions[i] {
			return nil, fmt.Errorf("POST /v1/actions/possible: answer %d is for %q, asked %q", i, a.Action, actions[i])
		}
		if a.Answer != "never" && a.Answer != "possible" {
			return nil, fmt.Errorf("POST /v1/actions/possible: answer %d is %q, want never or possible", i, a.Answer)
		}
	}
	if out.Policy.Hash == "" {
		return nil, fmt.Errorf("POST /v1/actions/possible: the answer names no policy hash")
	}
	return &out, nil
}
