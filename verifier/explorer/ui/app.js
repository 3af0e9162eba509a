// app.js: the explorer's pages. Everything shown as PASS or FAIL is
// computed here by verify.js; the server's answers are bytes to check
// (tiles, checkpoints, policy sources) or hints (the finder's indices).

import * as v from "./verify.js";
import { verifyHistory } from "./history.js";

const main = document.getElementById("main");
const state = { config: null, policy: null, policyText: "", policyError: null, trustKind: "", trustSource: "" };
let renderToken = 0;

// ---- DOM ----

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, val] of Object.entries(attrs)) {
    if (val === undefined || val === null || val === false) continue;
    if (k === "class") e.className = val;
    else if (k.startsWith("data-")) e.setAttribute(k, val);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), val);
    else e.setAttribute(k, val);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svgEl(tag, attrs = {}) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, val] of Object.entries(attrs)) e.setAttribute(k, val);
  return e;
}

function badge(check) {
  if (!check) return el("span", { class: "badge WAIT" }, "…");
  return el("span", { class: "badge " + (check.ok ? "PASS" : "FAIL") }, check.ok ? "PASS" : "FAIL");
}

// checkList renders named checks; data-check and data-status name each one
// (the browser tests read them).
function checkList(items) {
  return el("ul", { class: "checks" }, items.map(([name, check]) =>
    el("li", { "data-check": name, "data-status": check.ok ? "PASS" : "FAIL" },
      badge(check), el("span", { class: "check-name" }, name), el("span", { class: "check-reason" }, check.reason))));
}

function fields(pairs) {
  const dl = el("dl", { class: "fields" });
  for (const [k, val] of pairs) {
    if (val === undefined || val === null || val === "") continue;
    dl.append(el("dt", {}, k), el("dd", { class: typeof val === "string" && /^(sha256:|spiffe:|[A-Za-z0-9+/]{43}=$)/.test(val) ? "mono" : "" }, val));
  }
  return dl;
}

function link(href, text) { return el("a", { href }, text); }

function q(params) {
  const u = new URLSearchParams();
  for (const [k, val] of Object.entries(params)) if (val !== undefined && val !== null && val !== "") u.set(k, val);
  return u.toString();
}

// ---- fetching ----

async function getJSON(url) {
  const r = await fetch(url, { cache: "no-store" });
  const body = await r.text();
  let j = null;
  try { j = JSON.parse(body); } catch { /* not JSON */ }
  if (!r.ok) {
    const err = new Error(j && j.message ? `${url}: ${j.message}` : `${url}: HTTP ${r.status}`);
    err.status = r.status;
    err.code = j && j.code;
    throw err;
  }
  if (j === null) throw new Error(`${url}: the answer is not JSON`);
  return j;
}

async function fetchBytes(path) {
  const r = await fetch("/log/" + path, { cache: "no-store" });
  if (!r.ok) throw new Error(`/log/${path}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

// ---- trust policy ----

const storageKey = "ztlog.explorer.trustPolicy";

async function loadTrust() {
  if (state.config.trust_policy) {
    state.policyText = state.config.trust_policy;
    state.trustKind = "auditor";
    state.trustSource = state.config.trust_source || "the auditor's trust policy file";
  } else if (localStorage.getItem(storageKey)) {
    state.policyText = localStorage.getItem(storageKey);
    state.trustKind = "pasted";
    state.trustSource = "the trust policy pasted in this browser";
  } else {
    const wk = await getJSON("/.well-known/ztlog");
    const wp = wk.witness_policy || "quorum none\n";
    state.policyText = /^\s*log\s/m.test(wp) ? wp : `log ${wk.verifier_key}\n${wp}`;
    state.trustKind = "server";
    state.trustSource = "this server's own published keys (/.well-known/ztlog)";
  }
  try {
    state.policy = await v.parsePolicy(state.policyText);
  } catch (e) {
    state.policyError = e.message;
  }
  const banner = document.getElementById("trust");
  banner.replaceChildren();
  if (state.policyError) {
    banner.append(el("div", { class: "server" }, el("b", { class: "error" }, "Trust policy unusable: "), state.policyError, " ", link("#/trust", "Set your trust policy")));
  } else if (state.trustKind === "server") {
    banner.append(el("div", { class: "server", "data-trust": "server" }, el("b", { class: "warn" }, "Not independent: "),
      "verifying against ", state.trustSource, ". Paste the trust policy you obtained independently on the ", link("#/trust", "Trust policy"), " page, or run zt-audit explore --policy FILE."));
  } else {
    const logs = state.policy.logs.map((l) => l.origin).join(", ");
    banner.append(el("div", { class: "independent", "data-trust": state.trustKind }, el("b", {}, "Trust policy: "), state.trustSource,
      ` — log ${logs}; ${state.policy.witnesses.length} witness(es); quorum ${state.policy.quorum ? state.policy.quorum.name : "none"}.`));
  }
}

// ---- the verified checkpoint ----

async function latestCheckpoint() {
  const r = await fetch("/log/checkpoint", { cache: "no-store" });
  if (!r.ok) throw new Error(`/log/checkpoint: HTTP ${r.status}`);
  const text = await r.text();
  if (!state.policy) throw new Error("no usable trust policy: " + state.policyError);
  const res = await v.verifyCheckpoint(text, state.policy, new Date());
  const tree = res.checkpoint ? new v.Tree(res.checkpoint.size, fetchBytes) : null;
  return { text, res, tree, ok: res.signature.ok && res.witnesses.ok };
}

function checkpointChecks(cp) {
  return [["checkpoint signature", cp.res.signature], ["witness cosignatures", cp.res.witnesses]];
}

// verifyIndex verifies entry i under cp and parses it.
async function verifyIndex(cp, i) {
  if (!cp.tree || i >= cp.tree.size) {
    const why = v.fail(`entry ${i} is not in the verified checkpoint (size ${cp.tree ? cp.tree.size : 0})`);
    return { index: i, leaf: why, inclusion: why, entry: null };
  }
  const r = await v.verifyEntry(cp.tree, cp.res.checkpoint.root, i);
  let entry = null;
  if (r.bytes) {
    const s = v.utf8(r.bytes);
    try { entry = s === null ? null : JSON.parse(s); } catch { entry = null; }
  }
  return { index: i, leaf: r.leaf, inclusion: r.inclusion, entry, bytes: r.bytes };
}

function verdictCell(r) {
  const ok = r.leaf.ok && r.inclusion.ok;
  return el("td", { "data-verified": ok ? "PASS" : "FAIL", title: `leaf hash: ${r.leaf.reason}\ninclusion proof: ${r.inclusion.reason}` },
    el("span", { class: "status-row" }, badge(r.leaf), badge(r.inclusion)));
}

function entryRow(r) {
  const e = r.entry || {};
  const what = e.kind === "decision" ? `${e.action} on ${e.resource}`
    : e.kind === "result" ? `result of #${e.decision_index}: ${e.outcome}${e.exit_status !== undefined ? ` (exit ${e.exit_status})` : ""}`
    : e.kind === "agent" ? `${e.op} ${e.id}`
    : e.kind === "policy" ? `${e.engine} policy ${e.revision || ""} ${e.hash}` : "";
  const who = e.actor || e.broker || e.by || e.loaded_by || "";
  return el("tr", { "data-index": r.index },
    el("td", {}, link(`#/entry/${r.index}`, `#${r.index}`)),
    el("td", { class: "mono time", title: e.time || "" }, e.time ? e.time.replace("T", " ").replace(/\.[0-9]+Z$/, "Z") : ""),
    el("td", {}, e.kind || "?"),
    el("td", { class: "mono actor" }, who),
    el("td", {}, what),
    el("td", { class: e.decision || "" }, e.decision || (e.outcome ? e.outcome : "")),
    verdictCell(r));
}

function entryTable(rows) {
  return el("table", { class: "entries" },
    el("thead", {}, el("tr", {}, ["index", "time", "kind", "actor", "what", "decision", "leaf · inclusion"].map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map(entryRow)));
}

// ---- pages ----

async function logPage() {
  const cp = await latestCheckpoint();
  const c = cp.res.checkpoint;
  const out = [el("h1", {}, "The log")];
  out.push(el("div", { class: "card" },
    c ? fields([["origin", c.origin], ["tree size", String(c.size)], ["root hash", v.b64encode(c.root)]]) : el("p", { class: "error" }, "no readable checkpoint"),
    checkList(checkpointChecks(cp))));
  out.push(el("h2", {}, "Witnesses"), witnessTable(cp));
  out.push(el("h2", {}, "Size over time"), await growthChart());
  if (c && c.size > 0) {
    const from = Math.max(0, c.size - 10);
    const rows = [];
    for (let i = c.size - 1; i >= from; i--) rows.push(await verifyIndex(cp, i));
    out.push(el("h2", {}, "Latest entries"), entryTable(rows));
  }
  out.push(el("h2", {}, "Checkpoint"), el("pre", { class: "mono" }, cp.text));
  return out;
}

function witnessTable(cp) {
  const rows = state.policy.witnesses.map((w) => {
    const cs = cp.res.cosignatures.find((x) => x.witness === w.name);
    const rj = cp.res.rejected.find((x) => x.witness === w.name);
    const status = cs ? el("span", {}, badge(v.pass("")), " cosigned at ", cs.time.toISOString())
      : rj ? el("span", {}, badge(v.fail("")), " ", rj.reason) : el("span", { class: "muted" }, "no cosignature on this checkpoint");
    return el("tr", { "data-witness": w.name }, el("td", {}, w.name), el("td", { class: "mono" }, w.key.vkey), el("td", {}, status));
  });
  if (rows.length === 0) return el("p", { class: "muted" }, "The trust policy names no witness (quorum none).");
  const extra = cp.res.unknown.length ? el("p", { class: "muted" }, "Signatures from keys the policy does not name (ignored): " + cp.res.unknown.join(", ")) : null;
  return el("div", {}, el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "witness"), el("th", {}, "key"), el("th", {}, "cosignature"))), el("tbody", {}, rows)), extra,
    el("p", { class: "muted" }, "Quorum: " + (state.policy.quorum ? state.policy.quorum.name : "none")));
}

async function growthChart() {
  let g;
  try { g = await getJSON("/ui/api/growth"); } catch (e) { return el("p", { class: "muted" }, "Size over time is not available: " + e.message); }
  const pts = g.points.map((p) => ({ t: Date.parse(p.time), n: p.size })).filter((p) => !Number.isNaN(p.t));
  if (pts.length < 2) return el("p", { class: "muted" }, `${g.tree_size} entries; not enough history for a chart yet.`);
  const W = 1000, H = 180, L = 50, B = 24;
  const t0 = pts[0].t, t1 = Math.max(pts[pts.length - 1].t, t0 + 1), n1 = Math.max(...pts.map((p) => p.n));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - 10), y = (n) => H - B - (n / n1) * (H - B - 10);
  const svg = svgEl("svg", { class: "growth", viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "data-points": String(pts.length) });
  svg.append(svgEl("line", { class: "axis", x1: L, y1: H - B, x2: W - 10, y2: H - B }), svgEl("line", { class: "axis", x1: L, y1: 10, x2: L, y2: H - B }));
  svg.append(svgEl("polyline", { class: "line", points: pts.map((p) => `${x(p.t)},${y(p.n)}`).join(" ") }));
  const label = (tx, ax, ay, anchor = "start") => { const t = svgEl("text", { x: ax, y: ay, "text-anchor": anchor }); t.textContent = tx; svg.append(t); };
  label(String(n1), L - 4, 16, "end");
  label("0", L - 4, H - B, "end");
  label(new Date(t0).toISOString().replace(".000", ""), L, H - 6);
  label(new Date(t1).toISOString().replace(".000", ""), W - 10, H - 6, "end");
  return el("div", {}, svg, el("p", { class: "muted" }, `Entries over time, from the times of ${pts.length} sampled entries (a hint from the server; the entries themselves verify on their pages).`));
}

const searchFields = [["agent", "agent (SPIFFE ID or alias)"], ["action", "action"], ["correlation_id", "correlation id"], ["from", "from (RFC 3339)"], ["to", "to (RFC 3339)"]];

async function searchPage(params) {
  const form = el("form", { class: "search card", id: "search-form" },
    searchFields.map(([name, label]) => el("label", {}, label, el("input", { name, value: params.get(name) || "", placeholder: name === "from" || name === "to" ? "2026-11-21T10:00:00Z" : "" }))),
    el("label", {}, "kind", el("select", { name: "kind" }, ["", "decision", "result", "agent", "policy"].map((k) => el("option", { value: k, selected: params.get("kind") === k ? "selected" : null }, k || "any")))),
    el("div", {}, el("button", { type: "submit" }, "Search")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = {};
    for (const [k, val] of new FormData(form)) p[k] = val.trim();
    location.hash = "#/search?" + q(p);
  });
  const out = [el("h1", {}, "Search"), form];
  const query = {};
  for (const k of ["agent", "action", "correlation_id", "from", "to", "kind", "policy_hash"]) if (params.get(k)) query[k] = params.get(k);
  if (Object.keys(query).length === 0) {
    out.push(el("p", { class: "muted" }, "Find entries by agent, action, time range or correlation id. The server finds candidates; each is verified here against the checkpoint. For proof that none is missing, see History."));
    return out;
  }
  const [cp, found] = await Promise.all([latestCheckpoint(), getJSON("/ui/api/find?" + q(query))]);
  out.push(el("div", { class: "card" }, checkList(checkpointChecks(cp))));
  const rows = [];
  for (const i of found.indices.slice().reverse()) rows.push(await verifyIndex(cp, i));
  out.push(el("p", { id: "search-summary", "data-hits": String(found.indices.length) },
    `${found.matched} match(es) in the first ${found.tree_size} entries${found.truncated ? `, the newest ${found.indices.length} shown` : ""}; each row verified against the checkpoint above (leaf hash · inclusion proof).`));
  if (rows.length) out.push(entryTable(rows));
  return out;
}

async function entryPage(i) {
  const cp = await latestCheckpoint();
  const r = await verifyIndex(cp, i);
  const out = [el("h1", {}, `Entry #${i}`)];
  out.push(el("div", { class: "card" }, checkList([...checkpointChecks(cp), ["leaf hash", r.leaf], ["inclusion proof", r.inclusion]])));
  const e = r.entry;
  if (!e) {
    out.push(el("p", { class: "error" }, "The entry could not be read as JSON."));
    return out;
  }
  if (e.kind === "decision") out.push(...(await decisionView(cp, i, e)));
  else if (e.kind === "result") out.push(...resultView(e));
  else if (e.kind === "policy") out.push(el("h2", {}, "Policy version"), el("div", { class: "card" }, fields([["time", e.time], ["engine", e.engine], ["revision", e.revision], ["hash", e.hash], ["source digest", e.source_digest], ["loaded by", e.loaded_by]]), el("p", {}, link(`#/policy/${i}`, "Show the policy source and check its digest"))));
  else if (e.kind === "agent") out.push(el("h2", {}, "Agent registry change"), el("div", { class: "card" }, fields([["time", e.time], ["op", e.op], ["agent", e.id], ["owner", e.owner], ["brokers", (e.brokers || []).join(", ")], ["aliases", (e.aliases || []).join(", ")], ["labels", e.labels ? JSON.stringify(e.labels) : ""], ["by", e.by]])));
  out.push(el("h2", {}, "The entry as committed"), el("pre", { class: "mono" }, JSON.stringify(e, null, 2)));
  return out;
}

async function decisionView(cp, i, e) {
  const out = [el("h2", {}, "Decision")];
  out.push(el("div", { class: "card" }, fields([
    ["decision", el("span", { class: e.decision, "data-decision": e.decision }, e.decision)],
    ["time", e.time], ["actor", e.actor], ["actor alias", e.actor_alias], ["claimed actor", e.claimed_actor],
    ["action", e.action], ["resource", e.resource], ["broker", e.broker],
    ["reasons", e.reasons && e.reasons.length ? e.reasons.map((x) => `${x.code}: ${x.message}`).join("\n") : "none"],
    ["policy", el("span", {}, link(`#/policies?hash=${encodeURIComponent(e.policy.hash)}`, e.policy.hash), ` (${e.policy.engine}${e.policy.revision ? ", " + e.policy.revision : ""})`)],
    ["correlation id", link(`#/search?correlation_id=${encodeURIComponent(e.correlation_id)}`, e.correlation_id)],
    ["authenticated by", e.authn ? `${e.authn.method}${e.authn.serial ? ", serial " + e.authn.serial : ""}${e.authn.expires ? ", SVID expires " + e.authn.expires : ""}` : ""],
    ["user", e.user ? `${e.user.subject} (${e.user.issuer})${e.user.scopes ? " scopes " + e.user.scopes.join(" ") : ""}` : ""],
    ["action digest", e.action_digest], ["arguments digest", e.args_digest], ["capabilities digest", e.capabilities_digest],
    ["guardrail findings", e.findings ? e.findings.map((f) => `${f.type}${f.rule ? " (" + f.rule + ")" : ""} in ${f.arg || "?"} at ${f.offset}+${f.length}`).join("\n") : ""],
  ])));
  out.push(el("h2", {}, "Attestation"));
  if (e.attestation) {
    const c = e.attestation.claims || {};
    out.push(el("div", { class: "card", id: "attestation" }, fields([
      ["model", [c["model.provider"], c["model.name"]].filter(Boolean).join("/") + (c["model.version"] ? "@" + c["model.version"] : "")],
      ["model digest", c["model.digest"]],
      ["tool", [c["tool.name"], c["tool.version"]].filter(Boolean).join(" ")], ["tool manifest digest", c["tool.manifestDigest"]],
      ["sandbox profile", c["sandbox.profile"]], ["sandbox capabilities", c["sandbox.capabilities"]],
      ["code digest", c["code.digest"]], ["code", c["code.uri"]], ["policy hash (attested)", c.policyHash], ["broker (attested)", c.broker],
      ["signer", c.signer], ["issued / expires", c.issuedAt ? `${c.issuedAt} / ${c.expiresAt}` : ""], ["envelope digest", e.attestation.digest],
    ]), el("p", { class: "muted" }, "Claims as committed; the service verified the DSSE signature before policy saw them. zt-audit verify re-checks the envelope against your SPIFFE roots.")));
  } else out.push(el("p", { class: "muted" }, "The agent sent no attestation with this request."));
  out.push(el("h2", {}, "Receipt"));
  out.push(e.receipt ? el("div", { class: "card" }, fields([["receipt id", e.receipt.id], ["key id", e.receipt.kid], ["audience (broker)", e.receipt.audience], ["expires", e.receipt.expires]]),
    el("p", { class: "muted" }, "The receipt (a JWS naming this entry's index and leaf hash) is held by the agent and broker; the log commits its id.")) : el("p", { class: "muted" }, "No receipt: only an allow gets one."));
  out.push(el("h2", {}, "Broker result"));
  if (e.decision === "allow") {
    const found = await getJSON("/ui/api/find?" + q({ decision_index: i, kind: "result" }));
    if (found.indices.length === 0) out.push(el("p", { class: "muted", id: "result" }, "No result committed for this decision (yet)."));
    for (const ri of found.indices) {
      const rr = await verifyIndex(cp, ri);
      const re = rr.entry || {};
      const ok = rr.entry && re.decision_index === i && re.action_digest === e.action_digest;
      out.push(el("div", { class: "card", id: "result", "data-result-index": String(ri) },
        el("p", {}, link(`#/entry/${ri}`, `Result #${ri}`), " ", badge(rr.leaf), " ", badge(rr.inclusion), " ",
          ok ? "links to this decision and its action digest" : el("span", { class: "error" }, "does not link to this decision's index and action digest")),
        fields([["outcome", re.outcome], ["exit status", re.exit_status !== undefined ? String(re.exit_status) : ""], ["broker", re.broker], ["time", re.time],
          ["sandbox", re.statement && re.statement.claims ? [re.statement.claims["sandbox.kind"], re.statement.claims["sandbox.version"]].filter(Boolean).join(" ") : ""]])));
    }
  } else out.push(el("p", { class: "muted" }, "A deny hands no work to a broker."));
  return out;
}

function resultView(e) {
  const c = (e.statement && e.statement.claims) || {};
  return [el("h2", {}, "Broker result"), el("div", { class: "card" }, fields([
    ["decision", link(`#/entry/${e.decision_index}`, `#${e.decision_index}`)], ["decision leaf hash", e.decision_leaf_hash],
    ["outcome", e.outcome], ["exit status", e.exit_status !== undefined ? String(e.exit_status) : ""], ["time", e.time],
    ["broker", e.broker], ["receipt id", e.receipt_id], ["action digest", e.action_digest],
    ["started / finished", c.started_at ? `${c.started_at} / ${c.finished_at}` : ""],
    ["stdout", c["stdout.digest"] ? `${c["stdout.size"]} bytes, ${c["stdout.digest"]}` : ""], ["stderr", c["stderr.digest"] ? `${c["stderr.size"]} bytes, ${c["stderr.digest"]}` : ""],
    ["sandbox", [c["sandbox.kind"], c["sandbox.version"]].filter(Boolean).join(" ")], ["sandbox capabilities", c["sandbox.capabilities"]],
    ["error", c["error.class"] ? `${c["error.class"]}: ${c["error.message"]}` : ""],
  ]))];
}

async function historyPage(params) {
  const form = el("form", { class: "search card" },
    el("label", {}, "agent (SPIFFE ID)", el("input", { name: "agent", value: params.get("agent") || "" })),
    el("label", {}, "or correlation id", el("input", { name: "correlation_id", value: params.get("correlation_id") || "" })),
    el("div", {}, el("button", { type: "submit" }, "Show history")));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = {};
    for (const [k, val] of new FormData(form)) p[k] = val.trim();
    location.hash = "#/history?" + q(p);
  });
  const out = [el("h1", {}, "Verified history"), form];
  const key = params.get("agent") ? { agent: params.get("agent") } : params.get("correlation_id") ? { correlation_id: params.get("correlation_id") } : null;
  if (!key) {
    out.push(el("p", { class: "muted" }, "Everything one agent did, or everything under one correlation id, with a proof that no entry is missing."));
    return out;
  }
  const cp = await latestCheckpoint();
  out.push(el("div", { class: "card" }, checkList(checkpointChecks(cp))));
  let h;
  try {
    h = await getJSON("/v1/history?" + q(key)); // at the size the log has indexed; its checkpoint is verified below
  } catch (e) {
    if ([403, 404, 405, 501].includes(e.status)) {
      out.push(el("div", { class: "card", id: "history-unavailable", "data-history": "unavailable" },
        el("p", {}, el("b", {}, "History not served by this log. "), "It answers GET /v1/history with: ", e.message),
        el("p", { class: "muted" }, "Without a verifiable history, Search still finds entries and verifies each one, but cannot prove that none is missing.")));
      return out;
    }
    throw e;
  }
  const keyName = key.agent ? "agent:" + key.agent : "corr:" + key.correlation_id;
  const res = await verifyHistory(h, keyName, state.policy, new Date());
  out.splice(2, 1, el("div", { class: "card" }, checkList(res.checks)));
  const proven = res.checks.find(([n]) => n === "log inclusion")[1];
  const rows = res.entries.slice().reverse().map((p) => ({ index: p.index, entry: p.entry, leaf: proven, inclusion: proven }));
  const policies = [...new Set(res.entries.filter((p) => p.entry.kind === "decision").map((p) => p.entry.policy.hash))];
  out.push(el("p", { id: "history-summary", "data-entries": String(res.entries.length) },
    `${res.entries.length} entries of ${keyName} up to size ${h.size}, newest first. The checks above prove that none is missing.`));
  if (rows.length) out.push(entryTable(rows));
  if (policies.length) out.push(el("h2", {}, "Policy versions in force"), el("ul", {}, policies.map((p) => el("li", {}, link(`#/policies?hash=${encodeURIComponent(p)}`, p)))));
  return out;
}

async function policiesPage(params) {
  const cp = await latestCheckpoint();
  const found = await getJSON("/ui/api/find?" + q({ kind: "policy", policy_hash: params.get("hash") }));
  const out = [el("h1", {}, "Policy versions"), el("div", { class: "card" }, checkList(checkpointChecks(cp)))];
  if (params.get("hash")) out.push(el("p", {}, "Versions with policy hash ", el("span", { class: "mono" }, params.get("hash")), " — ", link("#/policies", "all versions")));
  const rows = [];
  for (const i of found.indices.slice().reverse()) {
    const r = await verifyIndex(cp, i);
    const e = r.entry || {};
    rows.push(el("tr", { "data-index": i }, el("td", {}, link(`#/policy/${i}`, `#${i}`)), el("td", { class: "mono" }, e.time || ""), el("td", {}, e.engine || ""),
      el("td", {}, e.revision || ""), el("td", { class: "mono" }, e.hash || ""), el("td", {}, e.loaded_by || ""), verdictCell(r)));
  }
  out.push(rows.length ? el("table", {}, el("thead", {}, el("tr", {}, ["entry", "in force from", "engine", "revision", "policy hash", "loaded by", "leaf · inclusion"].map((h) => el("th", {}, h)))), el("tbody", {}, rows))
    : el("p", { class: "muted" }, "No policy entry in the log."));
  return out;
}

async function policyPage(i) {
  const cp = await latestCheckpoint();
  const r = await verifyIndex(cp, i);
  const e = r.entry || {};
  const out = [el("h1", {}, `Policy version #${i}`)];
  const checks = [...checkpointChecks(cp), ["leaf hash", r.leaf], ["inclusion proof", r.inclusion]];
  if (e.kind !== "policy") {
    out.push(el("div", { class: "card" }, checkList(checks)), el("p", { class: "error" }, `Entry ${i} is not a policy entry.`));
    return out;
  }
  let doc = null, digestCheck;
  try {
    doc = await getJSON(`/v1/policies/${encodeURIComponent(e.hash)}?` + q({ source_digest: e.source_digest }));
    const got = await v.sourceDigest(doc.files || {});
    digestCheck = got === e.source_digest ? v.pass(`the ${Object.keys(doc.files).length} files served hash to ${got}, the committed source digest`)
      : v.fail(`the files served hash to ${got}, not the committed source digest ${e.source_digest}: this is not the policy that was in force`);
  } catch (err) {
    digestCheck = v.fail(`the policy source could not be fetched: ${err.message}`);
  }
  checks.push(["policy source digest", digestCheck]);
  out.push(el("div", { class: "card" }, checkList(checks)));
  out.push(el("div", { class: "card" }, fields([["time", e.time], ["engine", e.engine], ["revision", e.revision], ["policy hash", e.hash], ["source digest", e.source_digest], ["loaded by", e.loaded_by]]),
    el("p", {}, link(`#/search?kind=decision&policy_hash=${encodeURIComponent(e.hash)}`, "Decisions under this policy hash"))));
  if (doc && doc.files) {
    for (const [path, b64] of Object.entries(doc.files)) {
      const text = v.utf8(v.b64decode(b64));
      out.push(el("h2", { class: "mono" }, path), el("pre", { class: "mono" }, text === null ? `(${v.b64decode(b64).length} bytes, not text)` : text));
    }
  }
  return out;
}

function trustPage() {
  const ta = el("textarea", { id: "trust-text", spellcheck: "false" }, state.policyText);
  const out = [el("h1", {}, "Trust policy"),
    el("p", {}, "Pages verify checkpoints against this C2SP tlog-policy: the log's key, the witnesses and their quorum. Source: ", state.trustSource, ".")];
  if (state.trustKind === "auditor") {
    out.push(el("pre", { class: "mono" }, state.policyText), el("p", { class: "muted" }, "Given to zt-audit explore with --policy; restart it to change."));
    return out;
  }
  out.push(ta, el("p", {},
    el("button", { type: "button", onclick: () => { localStorage.setItem(storageKey, ta.value); location.reload(); } }, "Use this policy"), " ",
    el("button", { type: "button", onclick: () => { localStorage.removeItem(storageKey); location.reload(); } }, "Forget mine")),
  el("p", { class: "muted" }, "Kept in this browser only. Use the policy you got from the log operator out of band, not from this server."));
  return out;
}

// ---- router ----

async function route() {
  const token = ++renderToken;
  main.dataset.ready = "0";
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  let content;
  try {
    let m;
    if (path === "/" || path === "") content = await logPage();
    else if (path === "/search") content = await searchPage(params);
    else if ((m = /^\/entry\/(0|[1-9][0-9]*)$/.exec(path))) content = await entryPage(Number(m[1]));
    else if (path === "/history") content = await historyPage(params);
    else if (path === "/policies") content = await policiesPage(params);
    else if ((m = /^\/policy\/(0|[1-9][0-9]*)$/.exec(path))) content = await policyPage(Number(m[1]));
    else if (path === "/trust") content = trustPage();
    else content = [el("h1", {}, "Not found"), el("p", {}, `No page ${path}. `, link("#/", "The log"))];
  } catch (e) {
    content = [el("h1", {}, "Error"), el("p", { class: "error", id: "page-error" }, e.message)];
  }
  if (token !== renderToken) return;
  main.replaceChildren(...content);
  main.dataset.ready = "1";
}

async function init() {
  try {
    state.config = await getJSON("/ui/config.json");
    await loadTrust();
  } catch (e) {
    main.replaceChildren(el("h1", {}, "Error"), el("p", { class: "error", id: "page-error" }, e.message));
    main.dataset.ready = "1";
    return;
  }
  window.addEventListener("hashchange", route);
  route();
}

init();
