// verify.js: the explorer's verification, done in the browser with
// WebCrypto. It is the same verification as the Go verifier's, written a
// second time so that the page trusts no server:
//
//   - trust policies, C2SP tlog-policy (internal/trustpolicy/policy.md):
//     log, witness, group and quorum lines; verifier keys with their key ID
//     recomputed (SHA-256(name || "\n" || type || key)[:4]);
//   - checkpoints, C2SP signed-note + tlog-checkpoint: the log's Ed25519
//     signature over the note text, and witness cosignatures
//     (C2SP tlog-cosignature, cosignature/v1: Ed25519 over
//     "cosignature/v1\ntime <t>\n" || note text, signature = 8-byte
//     big-endian time || 64-byte signature) counted against the quorum;
//   - tiles, C2SP tlog-tiles: hash tiles of height 8, entry bundles of
//     16-bit length-prefixed entries, partial tiles named .p/<W>;
//   - RFC 6962 / RFC 9162 hashing: leaf = SHA-256(0x00 || entry), node =
//     SHA-256(0x01 || left || right); the inclusion proof of an index is
//     built from the hash tiles and checked against the checkpoint's root.
//
// Every function is pure over bytes it is handed (fetching is the caller's,
// through a fetch function), and every failure says what failed and why.

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

// ---- bytes ----

export function b64decode(s) {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) throw new Error(`not standard base64: ${short(s)}`);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(b) {
  let s = "";
  for (const x of b) s += String.fromCharCode(x);
  return btoa(s);
}

export function hex(b) {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function short(s) { return s.length > 40 ? s.slice(0, 40) + "…" : s; }

export async function sha256(b) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b));
}

// ---- RFC 6962 hashing ----

export async function leafHash(entry) { return sha256(concat(new Uint8Array([0]), entry)); }
export async function nodeHash(left, right) { return sha256(concat(new Uint8Array([1]), left, right)); }

// ---- signed-note verifier keys ----

export const TypeEd25519 = 0x01, TypeECDSA = 0x02, TypeCosigEd25519 = 0x04, TypeCosigMLDSA44 = 0x06;

async function keyID(name, typ, key) {
  const h = await sha256(concat(enc.encode(name + "\n"), new Uint8Array([typ]), key));
  return ((h[0] << 24) | (h[1] << 16) | (h[2] << 8) | h[3]) >>> 0;
}

// parseVKey reads <name>+<8 hex key ID>+<base64(type || key)> and checks the
// key ID against the key.
export async function parseVKey(vkey) {
  const i = vkey.indexOf("+"), j = i < 0 ? -1 : vkey.indexOf("+", i + 1);
  if (i < 0 || j < 0) throw new Error("not a verifier key; want <name>+<8 hex digits>+<base64 key>");
  const name = vkey.slice(0, i), id = vkey.slice(i + 1, j), key64 = vkey.slice(j + 1);
  if (name === "" || /\s/u.test(name)) throw new Error("key name is empty or contains a space");
  if (!/^[0-9a-f]{8}$/i.test(id)) throw new Error(`key ID "${id}" is not 8 hex digits`);
  let raw;
  try { raw = b64decode(key64); } catch { raw = null; }
  if (!raw || raw.length < 2) throw new Error("key material is not standard base64 of a signature type and a key");
  const want = await keyID(name, raw[0], raw.subarray(1));
  if (parseInt(id, 16) >>> 0 !== want) {
    throw new Error(`key ID ${id} does not match the key (want ${want.toString(16).padStart(8, "0")}); the key was altered or copied wrongly`);
  }
  return { name, id: want, type: raw[0], key: raw.subarray(1), vkey };
}

// ---- trust policy (C2SP tlog-policy) ----

// parsePolicy reads a trust policy; it throws "trust policy line N: ..." for
// what it refuses, as internal/trustpolicy does.
export async function parsePolicy(text) {
  const fail = (n, msg) => { throw new Error(n ? `trust policy line ${n}: ${msg}` : `trust policy: ${msg}`); };
  if (/\r/.test(text)) fail(0, "carriage return; only LF line endings are allowed");
  const p = { logs: [], witnesses: [], groups: [], quorum: null, text };
  const names = new Map();
  let quorumLine = 0;
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1;
    const f = lines[i].split(/[ \t]+/).filter((x) => x !== "");
    if (f.length === 0 || f[0].startsWith("#")) continue;
    const vkey = async (s, what) => { try { return await parseVKey(s); } catch (e) { return fail(n, `${what} key "${s}": ${e.message}`); } };
    switch (f[0]) {
      case "log": {
        if (f.length < 2 || f.length > 3) fail(n, `want "log <vkey> [<url>]", got ${f.length} fields`);
        const k = await vkey(f[1], "log");
        p.logs.push({ origin: k.name, key: k, url: f[2] || "", line: n });
        break;
      }
      case "witness": {
        if (f.length < 3 || f.length > 4) fail(n, `want "witness <name> <vkey> [<url>]", got ${f.length} fields`);
        if (f[1] === "none" || names.has(f[1])) fail(n, `name "${f[1]}" is predefined or already used`);
        const k = await vkey(f[2], `witness "${f[1]}"`);
        if (![TypeEd25519, TypeCosigEd25519, TypeCosigMLDSA44].includes(k.type)) {
          fail(n, `witness "${f[1]}" key has signature type 0x${k.type.toString(16).padStart(2, "0")}; a witness key is 0x04 (Ed25519) or 0x06 (ML-DSA-44)`);
        }
        // A plain Ed25519 key (0x01) is read as the same key for
        // cosignature/v1, its key ID recomputed with type 0x04.
        const cosigType = k.type === TypeEd25519 ? TypeCosigEd25519 : k.type;
        const w = { kind: "witness", name: f[1], key: k, cosigType, cosigID: await keyID(k.name, cosigType, k.key), url: f[3] || "", line: n };
        p.witnesses.push(w);
        names.set(w.name, w);
        break;
      }
      case "group": {
        if (f.length < 4) fail(n, `want "group <name> all|any|<k> <member>..." with at least one member`);
        if (f[1] === "none" || names.has(f[1])) fail(n, `name "${f[1]}" is predefined or already used`);
        const members = [];
        const seen = new Set();
        for (const m of f.slice(3)) {
          if (seen.has(m)) fail(n, `group "${f[1]}" lists "${m}" twice`);
          seen.add(m);
          if (!names.has(m)) fail(n, `group "${f[1]}": member "${m}" is not a witness or group defined on an earlier line`);
          members.push(names.get(m));
        }
        let k;
        if (f[2] === "all") k = members.length;
        else if (f[2] === "any") k = 1;
        else if (/^[1-9][0-9]*$/.test(f[2])) k = Number(f[2]);
        else fail(n, `group "${f[1]}" threshold "${f[2]}": want all, any, or a decimal k without sign or leading zeros`);
        if (k < 1 || k > members.length) fail(n, `group "${f[1]}" threshold ${k}: want 1 <= k <= ${members.length}`);
        const g = { kind: "group", name: f[1], threshold: k, members, line: n };
        p.groups.push(g);
        names.set(g.name, g);
        break;
      }
      case "quorum":
        if (f.length !== 2) fail(n, `want "quorum <name>" (a witness, a group, or none)`);
        if (quorumLine) fail(n, `second quorum line (the first is line ${quorumLine})`);
        quorumLine = n;
        if (f[1] !== "none") {
          if (!names.has(f[1])) fail(n, `quorum "${f[1]}" is not a witness or group defined on an earlier line`);
          p.quorum = names.get(f[1]);
        }
        break;
      default:
        fail(n, `unknown keyword "${f[0]}"; a line is log, witness, group, quorum, a comment (#) or empty`);
    }
  }
  if (!quorumLine) fail(0, `no quorum line; add "quorum none" or "quorum <witness-or-group>"`);
  return p;
}

function witnessed(m, cosigned) {
  if (m.kind === "witness") return cosigned.has(m.name);
  let n = 0;
  for (const c of m.members) if (witnessed(c, cosigned)) n++;
  return n >= m.threshold;
}

// explainQuorum says in words whether the quorum is met, as
// trustpolicy.Policy.Explain does.
export function explainQuorum(p, cosigned) {
  if (!p.quorum) return "quorum none: no cosignature needed";
  const signed = p.witnesses.filter((w) => cosigned.has(w.name)).map((w) => w.name);
  const who = signed.length ? "cosigned by " + signed.join(", ") : "no policy witness cosigned";
  if (witnessed(p.quorum, cosigned)) return `quorum "${p.quorum.name}" met; ${who}`;
  return `quorum "${p.quorum.name}" not met: ${shortfall(p.quorum, cosigned)}; ${who}`;
}

function shortfall(m, cosigned) {
  if (m.kind === "witness") return `witness "${m.name}" did not cosign`;
  const have = m.members.filter((c) => witnessed(c, cosigned)).map((c) => c.name);
  let s = `group "${m.name}" has ${have.length} of the ${m.threshold} it needs`;
  if (have.length) s += ` (${have.join(", ")})`;
  return s;
}

// ---- signed notes and checkpoints ----

// parseNote splits a C2SP signed note into its text and signature lines,
// refusing what golang.org/x/mod/sumdb/note refuses.
export function parseNote(noteText) {
  if (!noteText.endsWith("\n")) throw new Error("malformed checkpoint: the note does not end in a newline");
  const split = noteText.lastIndexOf("\n\n");
  if (split < 0) throw new Error("malformed checkpoint: no empty line before the signatures");
  const text = noteText.slice(0, split + 1);
  const sigLines = noteText.slice(split + 2).split("\n");
  sigLines.pop(); // after the final newline
  if (sigLines.length === 0) throw new Error("malformed checkpoint: no signature lines");
  const sigs = sigLines.map((line) => {
    const m = /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line);
    if (!m) throw new Error(`malformed checkpoint: signature line "${short(line)}" is not "— <name> <base64>"`);
    let raw;
    try { raw = b64decode(m[2]); } catch { throw new Error(`malformed checkpoint: signature of ${m[1]} is not base64`); }
    if (raw.length < 5) throw new Error(`malformed checkpoint: signature of ${m[1]} is too short`);
    const id = ((raw[0] << 24) | (raw[1] << 16) | (raw[2] << 8) | raw[3]) >>> 0;
    return { name: m[1], id, sig: raw.subarray(4) };
  });
  return { text, sigs };
}

// parseCheckpointBody reads origin, size and root hash (C2SP tlog-checkpoint).
export function parseCheckpointBody(text) {
  const lines = text.replace(/\n$/, "").split("\n");
  if (lines.length < 3) throw new Error(`malformed checkpoint: the note text has ${lines.length} lines; a checkpoint has origin, size and root hash`);
  if (lines[0] === "") throw new Error("malformed checkpoint: empty origin line");
  if (!/^(0|[1-9][0-9]*)$/.test(lines[1])) throw new Error(`malformed checkpoint: tree size "${lines[1]}" is not a decimal without leading zeros`);
  let root;
  try { root = b64decode(lines[2]); } catch { root = null; }
  if (!root || root.length !== 32) throw new Error(`malformed checkpoint: root hash "${lines[2]}" is not the base64 of 32 bytes`);
  return { origin: lines[0], size: Number(lines[1]), root, extensions: lines.slice(3) };
}

async function ed25519Verify(pub, sig, msg) {
  try {
    const k = await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, k, sig, msg);
  } catch (e) {
    throw new Error(`this browser cannot verify Ed25519 with WebCrypto (${e.message})`);
  }
}

// verifyCheckpoint checks a signed checkpoint against a parsed policy and
// returns two checks (PASS/FAIL with the reason) and what it read:
//   signature: a policy log's Ed25519 note signature over the note text, and
//              the checkpoint's origin is that log's key name;
//   witnesses: every policy witness's cosignature line is verified; those
//              that verify (and are not later than now + 5 minutes) are
//              counted against the quorum.
export async function verifyCheckpoint(noteText, policy, now = new Date()) {
  const out = { checkpoint: null, cosignatures: [], rejected: [], unknown: [], signature: null, witnesses: null };
  let note;
  try {
    note = parseNote(noteText);
    out.checkpoint = parseCheckpointBody(note.text);
  } catch (e) {
    out.signature = fail(e.message);
    out.witnesses = fail("no checkpoint to count cosignatures on");
    return out;
  }
  const msg = enc.encode(note.text);
  let log = null, logErr = null;
  for (const s of note.sigs) {
    const l = policy.logs.find((x) => x.origin === s.name && x.key.id === s.id);
    if (l) {
      if (l.key.type !== TypeEd25519) { logErr = `the policy's log key type 0x${l.key.type.toString(16).padStart(2, "0")} is not checked in the browser (Ed25519 only)`; continue; }
      if (!(await ed25519Verify(l.key.key, s.sig, msg))) {
        logErr = `the signature line of "${s.name}" (key ID ${s.id.toString(16).padStart(8, "0")}) does not verify over this checkpoint; the checkpoint was altered or the line forged`;
        break;
      }
      log = log || l;
      continue;
    }
    const w = policy.witnesses.find((x) => x.key.name === s.name && x.cosigID === s.id);
    if (!w) { out.unknown.push(`${s.name} ${s.id.toString(16).padStart(8, "0")}`); continue; }
    const r = await checkCosignature(w, s.sig, note.text, now);
    if (r.ok) out.cosignatures.push({ witness: w.name, time: r.time });
    else out.rejected.push({ witness: w.name, reason: r.reason });
  }
  if (logErr && (!log || logErr.includes("does not verify"))) out.signature = fail(logErr);
  else if (!log) out.signature = fail(`the checkpoint is not signed by a log in the trust policy (its signers: ${note.sigs.map((s) => s.name).join(", ")}); check that the policy is for this log`);
  else if (log.origin !== out.checkpoint.origin) out.signature = fail(`origin "${out.checkpoint.origin}", signed by the policy log "${log.origin}"`);
  else out.signature = pass(`signed by ${log.key.vkey.split("+").slice(0, 2).join("+")} (Ed25519), origin ${log.origin}, size ${out.checkpoint.size}`);
  const cosigned = new Set(out.cosignatures.map((c) => c.witness));
  const why = explainQuorum(policy, cosigned);
  const rejected = out.rejected.map((r) => `${r.witness}: ${r.reason}`).join("; ");
  const met = !policy.quorum || witnessed(policy.quorum, cosigned);
  const detail = why + (rejected ? `; rejected: ${rejected}` : "");
  if (!out.signature.ok) out.witnesses = fail("the log signature did not verify, so no cosignature counts");
  else out.witnesses = met ? pass(detail) : fail(detail);
  return out;
}

async function checkCosignature(w, sig, text, now) {
  if (w.cosigType === TypeCosigMLDSA44) return { ok: false, reason: "ML-DSA-44 cosignature: WebCrypto has no ML-DSA, so the browser cannot check it (zt-audit can)" };
  if (sig.length !== 8 + 64) return { ok: false, reason: "cosignature is not 8 bytes of time and 64 of Ed25519 signature" };
  const ts = new DataView(sig.buffer, sig.byteOffset, 8).getBigUint64(0);
  if (ts > 2n ** 63n - 1n) return { ok: false, reason: "cosignature timestamp exceeds 2^63-1" };
  const msg = enc.encode(`cosignature/v1\ntime ${ts}\n${text}`);
  if (!(await ed25519Verify(w.key.key, sig.subarray(8), msg))) return { ok: false, reason: "cosignature does not verify" };
  const time = new Date(Number(ts) * 1000);
  if (now && time.getTime() > now.getTime() + 5 * 60 * 1000) {
    return { ok: false, reason: `cosignature timestamp ${time.toISOString()} is in the future (now ${now.toISOString()})` };
  }
  return { ok: true, time };
}

export function pass(reason) { return { ok: true, reason }; }
export function fail(reason) { return { ok: false, reason }; }

// ---- tlog-tiles ----

export const TileHeight = 8, TileWidth = 256;

// tileIndexPath writes N as tlog-tiles does: x001/x234/067.
export function tileIndexPath(n) {
  let s = String(n % 1000).padStart(3, "0");
  n = Math.floor(n / 1000);
  while (n > 0) { s = `x${String(n % 1000).padStart(3, "0")}/${s}`; n = Math.floor(n / 1000); }
  return s;
}

// partialWidth is the width of tile (level, index) in a tree of size:
// 0 when it is full (layout.PartialTileSize).
export function partialWidth(level, index, size) {
  const nodes = Math.floor(size / 2 ** (TileHeight * level));
  const w = nodes - index * TileWidth;
  return w >= TileWidth ? 0 : w;
}

export function tilePath(level, index, size) {
  const w = partialWidth(level, index, size);
  return `tile/${level}/${tileIndexPath(index)}${w ? `.p/${w}` : ""}`;
}

export function entriesPath(index, size) {
  const w = partialWidth(0, index, size);
  return `tile/entries/${tileIndexPath(index)}${w ? `.p/${w}` : ""}`;
}

// parseBundle splits an entry bundle into its entries (16-bit big-endian
// length, then the bytes).
export function parseBundle(b) {
  const out = [];
  let o = 0;
  while (o < b.length) {
    if (o + 2 > b.length) throw new Error(`entry bundle ends inside a length prefix at byte ${o}`);
    const n = (b[o] << 8) | b[o + 1];
    if (o + 2 + n > b.length) throw new Error(`entry bundle ends inside entry ${out.length} (${n} bytes at byte ${o + 2})`);
    out.push(b.subarray(o + 2, o + 2 + n));
    o += 2 + n;
  }
  return out;
}

// Tree reads a tree of a given size through fetchBytes(path) (path relative
// to the tlog-tiles prefix), caching tiles.
export class Tree {
  constructor(size, fetchBytes) {
    this.size = size;
    this.fetchBytes = fetchBytes;
    this.tiles = new Map();
    this.nodes = new Map();
  }

  async tile(level, index) {
    const path = tilePath(level, index, this.size);
    if (!this.tiles.has(path)) {
      this.tiles.set(path, (async () => {
        const t = await this.fetchBytes(path);
        const want = (partialWidth(level, index, this.size) || TileWidth) * 32;
        if (t.length !== want) throw new Error(`tile ${path} is ${t.length} bytes, want ${want}`);
        return t;
      })());
    }
    return this.tiles.get(path);
  }

  // node is the hash of the complete subtree at (level, index): read from a
  // tile when level is a multiple of 8, hashed up from one otherwise.
  async node(level, index) {
    const key = `${level}/${index}`;
    if (this.nodes.has(key)) return this.nodes.get(key);
    let h;
    if (level % TileHeight === 0) {
      const t = await this.tile(level / TileHeight, Math.floor(index / TileWidth));
      const o = (index % TileWidth) * 32;
      h = t.slice(o, o + 32);
    } else {
      h = await nodeHash(await this.node(level - 1, 2 * index), await this.node(level - 1, 2 * index + 1));
    }
    this.nodes.set(key, h);
    return h;
  }

  // rangeHash is MTH(D[a:b]) of RFC 6962 over the subtrees the tiles hold.
  async rangeHash(a, b) {
    const n = b - a;
    if ((n & (n - 1)) === 0 && a % n === 0) return this.node(Math.log2(n), a / n);
    const k = largestPow2Below(n);
    return nodeHash(await this.rangeHash(a, a + k), await this.rangeHash(a + k, b));
  }

  // inclusionProof is PATH(m, D[0:size]) of RFC 6962, leaf's sibling first.
  async inclusionProof(m) {
    const path = [];
    let a = 0, b = this.size;
    while (b - a > 1) {
      const k = largestPow2Below(b - a);
      if (m < a + k) { path.unshift(await this.rangeHash(a + k, b)); b = a + k; }
      else { path.unshift(await this.rangeHash(a, a + k)); a = a + k; }
    }
    return path;
  }

  async entryBundle(index) {
    const path = entriesPath(index, this.size);
    if (!this.tiles.has(path)) this.tiles.set(path, this.fetchBytes(path).then(parseBundle));
    return this.tiles.get(path);
  }

  async entry(i) {
    const bundle = await this.entryBundle(Math.floor(i / TileWidth));
    const e = bundle[i % TileWidth];
    if (e === undefined) throw new Error(`entry bundle ${entriesPath(Math.floor(i / TileWidth), this.size)} holds ${bundle.length} entries, not entry ${i}`);
    return e;
  }
}

function largestPow2Below(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// rootFromInclusion is RFC 9162 §2.1.3.2: the root an inclusion proof leads
// to, or an error when its length does not fit the tree.
export async function rootFromInclusion(index, size, leaf, path) {
  if (index >= size) throw new Error(`index ${index} is not in a tree of size ${size}`);
  let fn = index, sn = size - 1, r = leaf;
  for (const p of path) {
    if (sn === 0) throw new Error("the proof is longer than the tree is deep");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is shorter than the tree is deep");
  return r;
}

// verifyEntry checks entry i of the tree of a verified checkpoint:
//   leaf:      SHA-256(0x00 || the entry's bytes from the entry bundle)
//              equals the leaf hash the tree holds at i (level-0 hash tile);
//   inclusion: that leaf hash, with the audit path built from the hash
//              tiles, leads to the checkpoint's root hash.
// It returns the entry bytes and the two checks.
export async function verifyEntry(tree, root, i) {
  const out = { bytes: null, leafHash: null, leaf: null, inclusion: null };
  let treeLeaf;
  try {
    treeLeaf = await tree.node(0, i);
  } catch (e) {
    out.leaf = fail(`the log's leaf hash at ${i} could not be read: ${e.message}`);
    out.inclusion = fail(`the log's leaf hash at ${i} could not be read: ${e.message}`);
    return out;
  }
  try {
    out.bytes = await tree.entry(i);
    out.leafHash = await leafHash(out.bytes);
    out.leaf = equalBytes(out.leafHash, treeLeaf)
      ? pass(`SHA-256(0x00 || entry) = ${b64encode(out.leafHash)}, the log's leaf ${i}`)
      : fail(`SHA-256(0x00 || entry) = ${b64encode(out.leafHash)}, but the log's leaf ${i} is ${b64encode(treeLeaf)}: the entry served is not the one committed`);
  } catch (e) {
    out.leaf = fail(`entry ${i}: ${e.message}`);
  }
  try {
    const path = await tree.inclusionProof(i);
    const got = await rootFromInclusion(i, tree.size, treeLeaf, path);
    out.inclusion = equalBytes(got, root)
      ? pass(`leaf ${i} and ${path.length} hashes from the tiles lead to the root ${b64encode(root)} of size ${tree.size}`)
      : fail(`leaf ${i} and ${path.length} hashes from the tiles lead to ${b64encode(got)}, not the checkpoint's root ${b64encode(root)}: a tile was altered`);
  } catch (e) {
    out.inclusion = fail(`inclusion proof of ${i} in size ${tree.size}: ${e.message}`);
  }
  return out;
}

// ---- policy sources (contract/policysource/policysource.md) ----

// sourceDigest is "sha256:" || hex(SHA-256(JCS({path: "sha256:" || hex(SHA-256(file))})))
// of a stored policy source document's files (base64). Paths are strings
// without control characters, so JSON.stringify with the keys sorted by
// UTF-16 code units is their JCS form.
export async function sourceDigest(files) {
  const manifest = {};
  for (const path of Object.keys(files).sort()) manifest[path] = "sha256:" + hex(await sha256(b64decode(files[path])));
  return "sha256:" + hex(await sha256(enc.encode(JSON.stringify(manifest))));
}

export function utf8(b) {
  try { return dec.decode(b); } catch { return null; }
}
