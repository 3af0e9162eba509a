// history.js: verifies a GET /v1/history answer in the browser, as
// verifier/history.Verify does (verifier/history/history.md, "Verification"):
// the log checkpoint under the trust policy, the index checkpoint signed by
// the same log key for the same tree, the key's map leaf (membership or
// absence) under the map root, the hash chain over the returned entries
// (so none is missing, added or changed), one multi-leaf inclusion proof of
// them in the log, and that each entry belongs to the key.

import { b64decode, b64encode, equalBytes, fail, leafHash, nodeHash, parseNote, pass, sha256, verifyCheckpoint, rootFromInclusion } from "./verify.js";

const enc = new TextEncoder();

function u64be(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

function cat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function compare(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

function largestPow2Below(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// parseIndexCheckpoint reads the six lines of an index checkpoint's text.
function parseIndexCheckpoint(text) {
  const lines = text.split("\n");
  if (lines.pop() !== "" || lines.length !== 6) throw new Error(`the index checkpoint text has ${lines.length} lines, want 6`);
  if (lines[0] !== "ztlog-history-index v1") throw new Error(`first line "${lines[0]}", want "ztlog-history-index v1"`);
  const num = (s, what) => { if (!/^(0|[1-9][0-9]*)$/.test(s)) throw new Error(`${what} "${s}" is not a decimal without leading zeros`); return Number(s); };
  const hash = (s, what) => { let h; try { h = b64decode(s); } catch { h = null; } if (!h || h.length !== 32) throw new Error(`${what} is not the base64 of 32 bytes`); return h; };
  return { origin: lines[1], size: num(lines[2], "size"), logRoot: hash(lines[3], "log root"), mapSize: num(lines[4], "map size"), mapRoot: hash(lines[5], "map root") };
}

async function verifyIndexCheckpoint(answer, key, policy, cp) {
  if (answer.v !== 1) return fail(`answer version ${answer.v}, want 1`);
  if (answer.key !== key) return fail(`the answer is for "${answer.key}", not "${key}"`);
  if (!cp.checkpoint || cp.checkpoint.size !== answer.size) return fail(`the answer's size ${answer.size} is not its checkpoint's`);
  let note, ic;
  try {
    note = parseNote(answer.index_checkpoint);
    ic = parseIndexCheckpoint(note.text);
  } catch (e) {
    return fail(`index checkpoint: ${e.message}`);
  }
  const log = policy.logs.find((l) => l.origin === cp.checkpoint.origin);
  const sig = log && note.sigs.find((s) => s.name === log.origin && s.id === log.key.id);
  if (!sig) return fail(`the index checkpoint is not signed by the log key of ${cp.checkpoint.origin}`);
  const k = await crypto.subtle.importKey("raw", log.key.key, { name: "Ed25519" }, false, ["verify"]);
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, k, sig.sig, enc.encode(note.text)))) return fail("the index checkpoint's signature does not verify with the log key");
  if (ic.origin !== cp.checkpoint.origin || ic.size !== cp.checkpoint.size || !equalBytes(ic.logRoot, cp.checkpoint.root)) {
    return fail(`the index checkpoint is for ${ic.origin} size ${ic.size}, not the log checkpoint's ${cp.checkpoint.origin} size ${cp.checkpoint.size} and root`);
  }
  return { check: pass(`signed by the log key for size ${ic.size}; map of ${ic.mapSize} keys, root ${b64encode(ic.mapRoot)}`), ic };
}

async function mapLeafProof(p, ic) {
  const kh = b64decode(p.key_hash), vh = b64decode(p.value_hash);
  const leaf = cat(kh, u64be(p.count), vh);
  const root = await rootFromInclusion(p.position, ic.mapSize, await leafHash(leaf), p.path.map(b64decode));
  if (!equalBytes(root, ic.mapRoot)) throw new Error(`map leaf at ${p.position} does not lead to the map root`);
  return kh;
}

async function verifyMap(answer, key, ic) {
  const want = await sha256(enc.encode(key));
  try {
    if (answer.membership) {
      const kh = await mapLeafProof(answer.membership, ic);
      if (!equalBytes(kh, want)) return fail(`the map leaf's key hash is not SHA-256("${key}")`);
      return pass(`"${key}" is in the map at ${answer.membership.position} with ${answer.membership.count} entries`);
    }
    const a = answer.absence || {};
    if (!a.left && !a.right) {
      if (ic.mapSize !== 0 || !equalBytes(ic.mapRoot, await sha256(new Uint8Array()))) return fail("absence without neighbours in a map that is not empty");
      return pass("the map is empty");
    }
    const l = a.left && (await mapLeafProof(a.left, ic)), r = a.right && (await mapLeafProof(a.right, ic));
    if (l && r && a.right.position !== a.left.position + 1) return fail("the neighbours of the absent key are not adjacent");
    if (!l && a.right.position !== 0) return fail("the only neighbour is not the first leaf");
    if (!r && a.left.position !== ic.mapSize - 1) return fail("the only neighbour is not the last leaf");
    if ((l && compare(l, want) >= 0) || (r && compare(want, r) >= 0)) return fail("the neighbours do not bracket the key's hash");
    return pass(`"${key}" is absent: its neighbours in the map bracket its hash`);
  } catch (e) {
    return fail(e.message);
  }
}

async function verifyChain(answer) {
  const m = answer.membership;
  const entries = answer.entries || [];
  let prev = -1;
  for (const e of entries) {
    if (!(e.index > prev) || e.index >= answer.size) return fail(`entry indices are not strictly increasing below ${answer.size} (at ${e.index})`);
    prev = e.index;
  }
  if (!m) return entries.length === 0 ? pass("no entries, as the map says") : fail(`${entries.length} entries for a key the map does not hold`);
  if (entries.length !== m.count) return fail(`${entries.length} entries returned, the map commits ${m.count}: the answer is incomplete`);
  let v = new Uint8Array(32);
  for (const e of entries) v = await sha256(cat(v, u64be(e.index), await leafHash(b64decode(e.leaf))));
  if (!equalBytes(v, b64decode(m.value_hash))) return fail(`the chain over the ${entries.length} entries is ${b64encode(v)}, not the committed ${m.value_hash}: an entry is missing, added or changed`);
  return pass(`all ${m.count} entries: their hash chain is the committed value hash`);
}

// verifyMultiInclusion runs the recursion of history.md, "Multi-leaf
// inclusion proof".
async function verifyMultiInclusion(answer, root) {
  const entries = answer.entries || [];
  const proof = (answer.log_proof || []).map(b64decode);
  if (entries.length === 0) return proof.length === 0 ? pass("no entries to prove") : fail("a proof without entries");
  const leaves = await Promise.all(entries.map((e) => leafHash(b64decode(e.leaf))));
  let p = 0, e = 0;
  const rec = async (lo, hi) => {
    if (e >= entries.length || entries[e].index >= hi) {
      if (p >= proof.length) throw new Error("the proof has too few hashes");
      return proof[p++];
    }
    if (hi - lo === 1) return leaves[e++];
    const k = largestPow2Below(hi - lo);
    const left = await rec(lo, lo + k);
    return nodeHash(left, await rec(lo + k, hi));
  };
  try {
    const got = await rec(0, answer.size);
    if (p !== proof.length) return fail(`${proof.length - p} proof hashes left over`);
    if (!equalBytes(got, root)) return fail(`the ${entries.length} entries and ${proof.length} hashes lead to ${b64encode(got)}, not the checkpoint's root`);
    return pass(`the ${entries.length} entries are in the log of size ${answer.size} (${proof.length} proof hash${proof.length === 1 ? "" : "es"})`);
  } catch (err) {
    return fail(err.message);
  }
}

async function verifyBelonging(answer, key) {
  const parsed = [];
  for (const e of answer.entries || []) {
    let x;
    try { x = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(b64decode(e.leaf))); } catch { return fail(`entry ${e.index} is not a JSON entry`); }
    if (x.v !== 1 || !["decision", "result", "agent", "policy"].includes(x.kind)) return fail(`entry ${e.index} is not a v1 contract entry`);
    parsed.push({ index: e.index, entry: x, leafHash: b64encode(await leafHash(b64decode(e.leaf))) });
  }
  for (const p of parsed) {
    const x = p.entry;
    let ok;
    if (key.startsWith("agent:")) {
      const id = key.slice(6);
      if (x.kind === "decision") ok = x.actor === id;
      else if (x.kind === "agent") ok = x.id === id;
      else if (x.kind === "result") ok = parsed.some((d) => d.index === x.decision_index && d.entry.kind === "decision" && d.leafHash === x.decision_leaf_hash);
      else ok = false;
    } else {
      ok = x.kind !== "policy" && x.correlation_id === key.slice(5);
    }
    if (!ok) return fail(`entry ${p.index} (${x.kind}) does not belong to "${key}"`);
  }
  return { check: pass(`each of the ${parsed.length} entries belongs to "${key}"`), parsed };
}

// verifyHistory returns the named checks of a history answer and the
// parsed entries.
export async function verifyHistory(answer, key, policy, now = new Date()) {
  const cp = await verifyCheckpoint(answer.checkpoint || "", policy, now);
  const checks = [["checkpoint signature", cp.signature], ["witness cosignatures", cp.witnesses]];
  const ic = cp.signature.ok ? await verifyIndexCheckpoint(answer, key, policy, cp) : fail("the log checkpoint did not verify");
  checks.push(["index checkpoint", ic.check || ic]);
  const skip = fail("the index checkpoint did not verify");
  checks.push(["map proof", ic.ic ? await verifyMap(answer, key, ic.ic) : skip]);
  checks.push(["completeness", ic.ic ? await verifyChain(answer) : skip]);
  checks.push(["log inclusion", cp.checkpoint ? await verifyMultiInclusion(answer, cp.checkpoint.root) : fail("no checkpoint")]);
  const b = await verifyBelonging(answer, key);
  checks.push(["entries belong to the key", b.check || b]);
  return { checks, entries: b.parsed || [] };
}
