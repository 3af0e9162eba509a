# The example policy of ztlog (ztlog dev loads it). testdata/policies/cedar
# expresses the same rules in Cedar; testdata/policies/cases.json is the
# table both must decide identically. Deny by default.
package ztlog.authz

import rego.v1

default allow := false

# Allowed: some rule permits the action and no rule denies it.
allow if {
	permitted
	count(deny) == 0
}

# Allow lists: SPIFFE ID prefix x action pattern (* matches anything;
# mcp.tool.*.echo is the echo tool of any MCP server behind the gateway,
# contract/gateway/mcp; other MCP tools are denied by default).
permitted if {
	some rule in data.ztlog.allow
	startswith(input.actor.id, rule.actor_prefix)
	glob.match(rule.action, null, input.action)
}

# search.fast: every registered agent.
permitted if input.action == "search.fast"

# search.deep: the listed agents, or an agent acting for a user who holds
# the search.deep scope.
permitted if {
	input.action == "search.deep"
	input.actor.id in data.ztlog.deep_search_agents
}

permitted if {
	input.action == "search.deep"
	"search.deep" in input.user.scopes
}

# deploy.production: every dev agent, but see assurance below.
permitted if {
	input.action == "deploy.production"
	startswith(input.actor.id, "spiffe://dev.ztlog.local/agent/")
}

# High-risk actions are answered only once witnessed: the allow comes with a
# checkpoint that includes the decision and meets the witness policy, and
# the inclusion proof (contract/gate/pdp/input.md, "Assurance").
default assurance := "sequenced"

assurance := "witnessed" if input.action in data.ztlog.witnessed_actions

deny contains {"code": "agent.revoked", "message": "the agent's registration is revoked"} if {
	input.actor.status == "revoked"
}

deny contains {"code": "agent.unregistered", "message": "the agent is not registered"} if {
	input.actor.status == "unregistered"
}

deny contains {"code": "action.forbidden", "message": "this action is never allowed"} if {
	input.action in data.ztlog.forbidden_actions
}

# Attested agents must run an allowed model.
deny contains {"code": "attestation.model_not_allowed", "message": "the attested model is not on the allow list"} if {
	input.attestation.verified
	not input.attestation.model in data.ztlog.allowed_models
}

# Shell actions need a verified attestation with the strict sandbox.
deny contains {"code": "attestation.required", "message": "shell actions need a verified runtime attestation"} if {
	startswith(input.action, "shell.")
	not input.attestation.verified
}

deny contains {"code": "sandbox.not_strict", "message": "shell actions need the strict sandbox profile"} if {
	startswith(input.action, "shell.")
	input.attestation.verified
	not input.attestation.sandbox_profile == "strict" # also when absent: "!=" would be undefined, not true
}

# Guardrails: any finding in the inspected arguments is a deny.
deny contains {"code": "guardrail.finding", "message": "the arguments contain sensitive data (see findings)"} if {
	count(input.findings) > 0
}

reasons contains r if some r in deny

reasons contains {"code": "policy.allow", "message": "allowed by the example policy"} if allow
