package gate

import (
	"fmt"
	"log/slog"
	"net/http"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/gate/agents"
	"github.com/zt-infra/ztlog/contract/gate/correlation"
	"github.com/zt-infra/ztlog/contract/gate/pdp"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// possible answers POST /v1/actions/possible: for each action named,
// whether the policy in force could ever allow it for the caller
// (pdp.PDP.Possible). It is advisory and commits nothing: no entry, no
// receipt. The caller is authenticated as for /v1/actions; an agent that
// /v1/actions would deny for its registration (unregistered, revoked) is
// refused 403 with the same reason code, uncommitted.
func (g *Gate) possible(w http.ResponseWriter, r *http.Request) {
	caller := g.authenticate(w, r)
	if caller == nil {
		return
	}
	req, _, ok := readRequest(g, w, r, api.DecodePossibleRequest)
	if !ok {
		return
	}
	actor := caller.ID.String()
	rec, registered := g.cfg.Agents.Lookup(actor)
	switch {
	case !registered:
		g.refuse(w, r, http.StatusForbidden, &httperr.Error{Code: ReasonUnregistered, Message: fmt.Sprintf("%s is not a registered agent; every action it asks for is denied", actor)})
		return
	case rec.Status == agents.Revoked:
		g.refuse(w, r, http.StatusForbidden, &httperr.Error{Code: ReasonRevoked, Message: fmt.Sprintf("%s was revoked (log index %d); every action it asks for is denied", actor, rec.Index)})
		return
	}
	answers, v, err := g.cfg.PDP.Possible(r.Context(), pdp.ActorID{ID: actor, TrustDomain: caller.ID.TrustDomain().Name(), Path: caller.ID.Path()}, req.Actions)
	if err != nil {
		g.cfg.Logger.Warn("possible: the policy could not answer every action; those are answered possible", "error", err.Error(),
			"correlation_id", correlation.ID(r.Context()))
	}
	resp := api.PossibleResponse{Actor: actor, Policy: v.Ref(), Answers: make([]api.PossibleAnswer, len(answers))}
	never := 0
	for i, a := range answers {
		resp.Answers[i] = api.PossibleAnswer{Action: req.Actions[i], Answer: string(a)}
		if a == pdp.Never {
			never++
		}
	}
	correlation.Annotate(r.Context(), slog.Int("possible_asked", len(answers)), slog.Int("possible_never", never))
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, resp)
}
