# The example policy of ztlog (ztlog dev loads it). Deny by default.
package ztlog.authz

import rego.v1

default allow := false

# An action is allowed when an allow-list rule matches the actor's SPIFFE ID
# prefix and the action name, and nothing denies it.
allow if {
	input.actor.status == "registered"
	some rule in data.ztlog.allow
	startswith(input.actor.id, rule.actor_prefix)
	glob.match(rule.action, ["."], input.action)
	count(deny) == 0
}

deny contains {"code": "agent.revoked", "message": "the agent's registration is revoked"} if {
	input.actor.status == "revoked"
}

deny contains {"code": "agent.unregistered", "message": "the agent is not registered"} if {
	input.actor.status == "unregistered"
}

deny contains {"code": "action.forbidden", "message": sprintf("%s is never allowed by this policy", [input.action])} if {
	input.action in data.ztlog.forbidden_actions
}

reasons contains r if some r in deny

reasons contains {"code": "policy.allow", "message": "allowed by the allow list"} if allow
