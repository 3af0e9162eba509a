package gate

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/gorilla/mux"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/gate/agents"
	"github.com/zt-infra/ztlog/contract/gate/correlation"
	"github.com/zt-infra/ztlog/internal/httperr"
)

// changeAgent is POST /v1/agents: administrators register or revoke an
// agent; the change is committed as an agent entry before it takes effect.
func (g *Gate) changeAgent(w http.ResponseWriter, r *http.Request) {
	caller := g.authenticate(w, r)
	if caller == nil {
		return
	}
	if !g.admins[caller.ID.String()] {
		g.metrics.refusals.WithLabelValues("not_admin").Inc()
		httperr.WriteError(w, http.StatusForbidden, &httperr.Error{Code: "not_admin",
			Message: fmt.Sprintf("%s is not an administrator of this service", caller.ID)})
		return
	}
	req, _, ok := readRequest(g, w, r, api.DecodeAgentRequest)
	if !ok {
		return
	}
	cid, ok := correlationID(w, r, "")
	if !ok {
		return
	}
	ctx, cancel := contextWithTimeout(r, g.cfg.DecisionTimeout)
	defer cancel()
	rec, idx, leaf, err := g.cfg.Agents.Commit(ctx, req, caller.ID.String(), cid, g.cfg.Now())
	var taken *agents.AliasTakenError
	switch {
	case errors.As(err, &taken):
		g.metrics.refusals.WithLabelValues("alias_taken").Inc()
		httperr.WriteError(w, http.StatusConflict, &httperr.Error{Code: "alias_taken", Field: taken.Field, Message: err.Error()})
		return
	case errors.Is(err, agents.ErrUnknownAgent):
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "unknown_agent", Field: "id", Message: err.Error()})
		return
	case errors.Is(err, entry.ErrMalformed) || errors.Is(err, entry.ErrTooLarge):
		g.refuse(w, r, http.StatusBadRequest, &httperr.Error{Code: api.CodeInvalidField, Message: err.Error()})
		return
	case err != nil:
		g.commitFailed(w, r, "", err)
		return
	}
	correlation.Annotate(r.Context(), slog.String("agent", req.ID), slog.String("op", req.Op), slog.Uint64("index", idx))
	g.cfg.Logger.Info("agent registry changed", "op", req.Op, "agent", req.ID, "by", caller.ID.String(), "index", idx, "correlation_id", cid)
	httperr.WriteJSON(w, http.StatusOK, api.AgentResponse{Agent: rec, CorrelationID: cid,
		Log: g.logRef(outcome{index: idx, leafHash: leafHash(leaf)})})
}

// getAgent is GET /v1/agents/{td}/{path}.
func (g *Gate) getAgent(w http.ResponseWriter, r *http.Request) {
	v := mux.Vars(r)
	g.agentRecord(w, r, "spiffe://"+v["td"]+"/"+v["path"])
}

// getAgentByQuery is GET /v1/agents?id=spiffe://..., and without id the
// list of every record (administrators only).
func (g *Gate) getAgentByQuery(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if id == "" && !r.URL.Query().Has("id") {
		g.listAgents(w, r)
		return
	}
	if id == "" {
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: api.CodeMissingField, Field: "id",
			Message: "name the agent: GET /v1/agents/{trust-domain}/{path} or /v1/agents?id=" + url.QueryEscape("spiffe://td/path")})
		return
	}
	g.agentRecord(w, r, id)
}

// listAgents is GET /v1/agents: every record, for administrators.
func (g *Gate) listAgents(w http.ResponseWriter, r *http.Request) {
	caller := g.authenticate(w, r)
	if caller == nil {
		return
	}
	if !g.admins[caller.ID.String()] {
		httperr.WriteError(w, http.StatusForbidden, &httperr.Error{Code: "not_admin",
			Message: fmt.Sprintf("%s is not an administrator of this service; only administrators list agents", caller.ID)})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, api.AgentList{Agents: g.cfg.Agents.All()})
}

func (g *Gate) agentRecord(w http.ResponseWriter, r *http.Request, id string) {
	caller := g.authenticate(w, r)
	if caller == nil {
		return
	}
	if err := entry.ValidSPIFFEID(id); err != nil {
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: api.CodeInvalidField, Field: "id", Message: err.Error()})
		return
	}
	if !g.admins[caller.ID.String()] && caller.ID.String() != id {
		httperr.WriteError(w, http.StatusForbidden, &httperr.Error{Code: "forbidden", Field: "id",
			Message: "only administrators and the agent itself may read an agent's record"})
		return
	}
	rec, ok := g.cfg.Agents.Lookup(id)
	if !ok {
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "unknown_agent", Field: "id", Message: id + " was never registered"})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, rec)
}

// rawMember returns the raw JSON of a top-level member of an object.
func rawMember(body []byte, name string) []byte {
	var m map[string]jsontext.Value
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	return []byte(m[name])
}
