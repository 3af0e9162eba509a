// The ztlog receipt (contract/receipt/receipt.md): a compact JWS the
// decision path issues for an allow. Verification is pure: the token, the
// issuer's JWKS and a time in; the claims or a ReceiptError out. It mirrors
// the Go package contract/receipt check for check.
//
// A witnessed receipt (claims "assurance" and "tlog_proof") is checked for
// form only: assurance is "witnessed", tlog_proof a C2SP tlog-proof@v1 for
// log_index. Its checkpoint's cosignatures are the broker's to verify under
// its trust policy (receipt.md, step 7); the agent side holds none
// (testdata/sdk/README.md).

import { compactVerify, importJWK, type JWK } from "jose";
import { ReceiptError } from "./errors.js";

/** The JWS "typ" header of every receipt. */
export const RECEIPT_TYPE = "ztlog-receipt+jwt";
/** The receipt version this SDK reads (claim "ver"). */
export const RECEIPT_VERSION = 1;
/** The longest compact receipt looked at, in bytes. */
export const RECEIPT_MAX_SIZE = 16384;
/** The assurance claim of a witnessed receipt (a sequenced one has none). */
export const WITNESSED = "witnessed";
/** The assurance level of an allow: from its receipt. */
export type Assurance = "sequenced" | "witnessed";
/** The first line of a C2SP tlog-proof@v1. */
export const TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1";
const TLOG_PROOF_MAX_HASHES = 64;

const ALGORITHMS = ["EdDSA", "ES256"] as const;
const CLAIMS = ["ver", "iss", "sub", "aud", "iat", "exp", "jti", "action_digest", "decision", "log_index", "leaf_hash", "policy_hash", "cid"] as const;
/** A witnessed receipt has both, a sequenced one neither. */
const WITNESS_CLAIMS = ["assurance", "tlog_proof"] as const;

/** The 13 claims of a receipt, all required, and a witnessed receipt's two more. */
export interface ReceiptClaims {
  ver: number;
  /** The log's origin. */
  iss: string;
  /** The agent's authenticated SPIFFE ID. */
  sub: string;
  /** The SPIFFE ID of the one broker that may honour it. */
  aud: string;
  /** Issued at and expiry, seconds since the epoch. */
  iat: number;
  exp: number;
  /** One-time id. */
  jti: string;
  action_digest: string;
  decision: "allow";
  log_index: number;
  /** RFC 6962 leaf hash of the decision entry, standard base64 of 32 bytes. */
  leaf_hash: string;
  policy_hash: string;
  cid: string;
  /** "witnessed" in a witnessed receipt, absent in a sequenced one. */
  assurance?: "witnessed";
  /** A witnessed receipt's evidence: the decision's tlog-proof@v1 with a cosigned checkpoint. */
  tlog_proof?: string;
}

/** A parsed, not yet verified, receipt. */
export interface ParsedReceipt {
  kid: string;
  alg: "EdDSA" | "ES256";
  claims: ReceiptClaims;
}

/** A JSON Web Key Set: the issuer's receipt keys. */
export interface JWKS {
  keys: JWK[];
}

/** What a verifier requires of a receipt. */
export interface ReceiptExpect {
  /** The log origin the verifier trusts. */
  issuer: string;
  /** The broker the receipt must be for. */
  audience: string;
  /** When set, must equal the receipt's action digest. */
  actionDigest?: string;
  /** Verification time, milliseconds since the epoch (verification reads no clock). */
  now: number;
  /** Clock skew tolerated on iat and exp, milliseconds (default 0). */
  leeway?: number;
}

const malformed = (msg: string) => new ReceiptError("malformed", msg);

/** base64url without padding, in its one canonical spelling. */
function b64url(seg: string, what: string): Buffer {
  if (!/^[A-Za-z0-9_-]*$/.test(seg) || seg.length % 4 === 1) throw malformed(`${what} is not base64url`);
  const b = Buffer.from(seg, "base64url");
  if (b.toString("base64url") !== seg) throw malformed(`${what} is not canonical base64url`);
  return b;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function jsonObject(b: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(b));
  } catch (e) {
    throw malformed(`${what} is not a JSON object: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw malformed(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

/**
 * parseReceipt reads a compact receipt and checks its form: the header
 * (exactly alg, kid, typ) and every claim. It does not verify the
 * signature; see verifyReceipt.
 */
export function parseReceipt(token: string): ParsedReceipt {
  if (typeof token !== "string") throw malformed("not a string");
  if (Buffer.byteLength(token) > RECEIPT_MAX_SIZE) throw malformed(`${Buffer.byteLength(token)} bytes, the limit is ${RECEIPT_MAX_SIZE}`);
  const parts = token.split(".");
  if (parts.length !== 3) throw malformed("not a compact JWS (want header.payload.signature)");
  const [h, p, s] = parts as [string, string, string];
  const hdr = jsonObject(b64url(h, "header"), "header");
  for (const k of Object.keys(hdr)) {
    if (k !== "alg" && k !== "kid" && k !== "typ") {
      throw malformed(`header member "${k}" is not allowed (only alg, kid, typ; keys come from the issuer's JWKS)`);
    }
  }
  const alg = hdr.alg;
  if (typeof alg !== "string" || !(ALGORITHMS as readonly string[]).includes(alg)) {
    throw malformed(`header alg ${JSON.stringify(alg)} is not a receipt algorithm (EdDSA or ES256)`);
  }
  if (typeof hdr.kid !== "string" || hdr.kid === "") throw malformed("header has no kid");
  if (hdr.typ !== RECEIPT_TYPE) throw malformed(`header typ is ${JSON.stringify(hdr.typ)}, want "${RECEIPT_TYPE}"`);
  b64url(s, "signature");
  const claims = parseClaims(jsonObject(b64url(p, "payload"), "claims"));
  return { kid: hdr.kid, alg: alg as ParsedReceipt["alg"], claims };
}

function parseClaims(m: Record<string, unknown>): ReceiptClaims {
  for (const k of CLAIMS) {
    if (!(k in m)) throw malformed(`claim "${k}" is missing`);
  }
  const witnessed = "assurance" in m;
  if (witnessed && !("tlog_proof" in m)) throw malformed('claim "tlog_proof" is missing: a witnessed receipt carries its evidence');
  if ("tlog_proof" in m && !witnessed) throw malformed('claim "assurance" is missing: only a witnessed receipt has a tlog_proof');
  const known: readonly string[] = witnessed ? [...CLAIMS, ...WITNESS_CLAIMS] : CLAIMS;
  for (const k of Object.keys(m)) {
    if (!known.includes(k)) throw malformed(`claim "${k}" is not defined by receipt version 1`);
  }
  const bad = (claim: string, why: string) => malformed(`claim "${claim}": ${why}`);
  const str = (k: string): string => {
    if (typeof m[k] !== "string") throw bad(k, "want a string");
    return m[k] as string;
  };
  const int = (k: string): number => {
    const v = m[k];
    if (typeof v !== "number" || !Number.isInteger(v)) throw bad(k, "want an integer");
    return v;
  };
  const c: ReceiptClaims = {
    ver: int("ver"),
    iss: str("iss"),
    sub: str("sub"),
    aud: str("aud"),
    iat: int("iat"),
    exp: int("exp"),
    jti: str("jti"),
    action_digest: str("action_digest"),
    decision: str("decision") as "allow",
    log_index: int("log_index"),
    leaf_hash: str("leaf_hash"),
    policy_hash: str("policy_hash"),
    cid: str("cid"),
  };
  const bytes = (s: string) => Buffer.byteLength(s);
  if (c.ver !== RECEIPT_VERSION) throw bad("ver", `version ${c.ver}, this reader knows ${RECEIPT_VERSION}`);
  if (c.iss === "") throw bad("iss", "empty");
  if (bytes(c.jti) < 1 || bytes(c.jti) > 256) throw bad("jti", "want 1 to 256 bytes");
  if (c.decision !== "allow") throw bad("decision", `want allow, got ${JSON.stringify(c.decision)}`);
  if (c.iat <= 0 || c.exp <= c.iat) throw bad("exp", "must be after iat");
  if (c.log_index < 0 || c.log_index > Number.MAX_SAFE_INTEGER) throw bad("log_index", "want 0 to 2^53-1");
  if (bytes(c.cid) < 1 || bytes(c.cid) > 256) throw bad("cid", "want 1 to 256 bytes");
  if (!isSpiffeId(c.sub)) throw bad("sub", `not a SPIFFE ID: ${JSON.stringify(c.sub)}`);
  if (!isSpiffeId(c.aud)) throw bad("aud", `not a SPIFFE ID: ${JSON.stringify(c.aud)}`);
  if (!isMerkleHash(c.leaf_hash)) throw bad("leaf_hash", "want standard base64 of 32 bytes");
  if (!isDigest(c.action_digest)) throw bad("action_digest", "want sha256:<64 lowercase hex digits>");
  if (!isDigest(c.policy_hash)) throw bad("policy_hash", "want sha256:<64 lowercase hex digits>");
  if (witnessed) {
    const assurance = str("assurance");
    const proof = str("tlog_proof");
    // One spelling: a sequenced receipt has no assurance claim.
    if (assurance !== WITNESSED) throw bad("assurance", `want "${WITNESSED}" (a sequenced receipt has no assurance claim), got ${JSON.stringify(assurance)}`);
    let p: TLogProof;
    try {
      p = parseTlogProof(proof);
    } catch (e) {
      throw bad("tlog_proof", `not a C2SP tlog-proof@v1: ${(e as Error).message}`);
    }
    if (p.index !== BigInt(c.log_index)) throw bad("tlog_proof", `proves index ${p.index}, the receipt's log_index is ${c.log_index}`);
    c.assurance = WITNESSED;
    c.tlog_proof = proof;
  }
  return c;
}

/** A parsed C2SP tlog-proof@v1 (syntax only). */
export interface TLogProof {
  /** The optional unauthenticated extra data (undefined when absent). */
  extra: Buffer | undefined;
  index: bigint;
  /** The inclusion proof, leaf's sibling first. */
  hashes: Buffer[];
  /** The checkpoint (a signed note), verbatim. */
  checkpoint: string;
}

/** Standard base64 with padding, in its one canonical spelling, or undefined. */
function stdBase64(s: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return undefined;
  const b = Buffer.from(s, "base64");
  return b.toString("base64") === s ? b : undefined;
}

/**
 * parseTlogProof reads a tlog-proof@v1 as the Go parser (internal/tlogproof)
 * does, refusing anything its formatter would not write. It checks syntax
 * only; it throws an Error naming the line.
 */
export function parseTlogProof(text: string): TLogProof {
  const cut = text.indexOf("\n\n");
  if (cut < 0) throw new Error("no empty line before the checkpoint");
  const checkpoint = text.slice(cut + 2);
  if (checkpoint === "") throw new Error("empty checkpoint");
  const lines = text.slice(0, cut).split("\n");
  if (lines[0] !== TLOG_PROOF_HEADER) throw new Error(`line 1: want "${TLOG_PROOF_HEADER}"`);
  let i = 1;
  let extra: Buffer | undefined;
  if (i < lines.length && lines[i]!.startsWith("extra ")) {
    extra = stdBase64(lines[i]!.slice("extra ".length));
    if (extra === undefined) throw new Error(`line ${i + 1}: extra is not standard base64`);
    i++;
  }
  if (i >= lines.length || !lines[i]!.startsWith("index ")) throw new Error(`line ${i + 1}: want "index <N>"`);
  const idx = lines[i]!.slice("index ".length);
  if (!/^(0|[1-9][0-9]*)$/.test(idx) || BigInt(idx) >= 2n ** 64n) {
    throw new Error(`line ${i + 1}: index ${JSON.stringify(idx)} is not a decimal without leading zeros`);
  }
  const hashes: Buffer[] = [];
  for (let j = i + 1; j < lines.length; j++) {
    const h = stdBase64(lines[j]!);
    if (h === undefined || h.length !== 32) throw new Error(`line ${j + 1}: not the base64 of a 32-byte hash`);
    if (hashes.length === TLOG_PROOF_MAX_HASHES) throw new Error(`line ${j + 1}: more than ${TLOG_PROOF_MAX_HASHES} hashes`);
    hashes.push(h);
  }
  return { extra, index: BigInt(idx), hashes, checkpoint };
}

/** isDigest: "sha256:" and 64 lowercase hex digits. */
export function isDigest(s: unknown): s is string {
  return typeof s === "string" && /^sha256:[0-9a-f]{64}$/.test(s);
}

/** isMerkleHash: standard base64 of 32 bytes, in its one canonical spelling. */
export function isMerkleHash(s: unknown): s is string {
  if (typeof s !== "string" || !/^[A-Za-z0-9+/]{43}=$/.test(s)) return false;
  return Buffer.from(s, "base64").toString("base64") === s;
}

/**
 * isSpiffeId: spiffe://<trust domain>/<path> as the SPIFFE ID standard
 * defines it (lowercase trust domain of [a-z0-9.-_], path segments of
 * [A-Za-z0-9.-_], none empty, "." or "..").
 */
export function isSpiffeId(s: unknown): s is string {
  if (typeof s !== "string" || !s.startsWith("spiffe://")) return false;
  const rest = s.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const td = slash < 0 ? rest : rest.slice(0, slash);
  if (!/^[a-z0-9._-]+$/.test(td)) return false;
  if (slash < 0) return true;
  return rest
    .slice(slash + 1)
    .split("/")
    .every((seg) => /^[A-Za-z0-9._-]+$/.test(seg) && seg !== "." && seg !== "..");
}

/** trustDomainOf returns the trust domain of a SPIFFE ID. */
export function trustDomainOf(id: string): string {
  const rest = id.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  return slash < 0 ? rest : rest.slice(0, slash);
}

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "k"];

/**
 * parseJwks reads a JWKS document: an object whose "keys" is an array of
 * public keys. A private or symmetric key anywhere is refused.
 */
export function parseJwks(doc: unknown): JWKS {
  const v = typeof doc === "string" ? (JSON.parse(doc) as unknown) : doc;
  if (v === null || typeof v !== "object" || !Array.isArray((v as JWKS).keys)) {
    throw new Error('receipt JWKS: want a JSON object with a "keys" array');
  }
  const keys = (v as JWKS).keys;
  for (const k of keys) {
    if (k === null || typeof k !== "object") throw new Error("receipt JWKS: a key is not a JSON object");
    const priv = PRIVATE_MEMBERS.find((m) => m in k);
    if (priv) throw new Error(`receipt JWKS: key ${JSON.stringify(k.kid)} is private (member "${priv}"); a JWKS publishes public keys`);
  }
  if (keys.length === 0) throw new Error("receipt JWKS: no keys");
  return { keys };
}

/**
 * verifySignature checks the signature with the one key named by the
 * receipt's kid; the key must declare the header's alg, and an EdDSA key
 * must be Ed25519 (an ES256 key P-256).
 */
export async function verifySignature(token: string, r: ParsedReceipt, jwks: JWKS): Promise<void> {
  if (!jwks || !Array.isArray(jwks.keys)) throw new ReceiptError("unknown_key", "no JWKS");
  const found = jwks.keys.filter((k) => k.kid === r.kid);
  if (found.length !== 1) throw new ReceiptError("unknown_key", `kid ${JSON.stringify(r.kid)} is not in the JWKS (${found.length} matches)`);
  const k = found[0] as JWK;
  if (PRIVATE_MEMBERS.some((m) => m in k)) {
    throw new ReceiptError("unknown_key", `kid ${JSON.stringify(r.kid)} is a private key; a JWKS publishes public keys`);
  }
  if (k.alg !== r.alg) {
    throw new ReceiptError("signature", `kid ${JSON.stringify(r.kid)} is for ${JSON.stringify(k.alg ?? "")}, the receipt says ${JSON.stringify(r.alg)}`);
  }
  if (r.alg === "EdDSA" && !(k.kty === "OKP" && k.crv === "Ed25519")) {
    throw new ReceiptError("signature", `kid ${JSON.stringify(r.kid)} is not an Ed25519 key`);
  }
  if (r.alg === "ES256" && !(k.kty === "EC" && k.crv === "P-256")) {
    throw new ReceiptError("signature", `kid ${JSON.stringify(r.kid)} is not a P-256 key`);
  }
  let key;
  try {
    key = await importJWK({ kty: k.kty, crv: k.crv, x: k.x, y: k.y } as JWK, r.alg);
  } catch (e) {
    throw new ReceiptError("signature", `kid ${JSON.stringify(r.kid)}: not a usable key: ${(e as Error).message}`);
  }
  try {
    // Over the protected header and payload as received; only the header's alg.
    await compactVerify(token, key, { algorithms: [r.alg] });
  } catch (e) {
    throw new ReceiptError("signature", (e as Error).message);
  }
}

/**
 * verifyReceipt parses token and checks it against the issuer's JWKS: the
 * key named by kid, its algorithm, the signature, then issuer, audience,
 * action digest (if expected) and time. It reads no clock and does no I/O.
 * One-time use of the jti is the broker's to enforce.
 */
export async function verifyReceipt(token: string, jwks: JWKS, want: ReceiptExpect): Promise<ReceiptClaims> {
  if (!want || !want.issuer || !want.audience || !Number.isFinite(want.now)) {
    throw new Error("verifyReceipt needs expect.issuer, expect.audience and expect.now");
  }
  const r = parseReceipt(token);
  await verifySignature(token, r, jwks);
  const c = r.claims;
  const now = Math.floor(want.now / 1000);
  const leeway = Math.floor((want.leeway ?? 0) / 1000);
  if (c.iss !== want.issuer) throw new ReceiptError("mismatch", `issued by ${JSON.stringify(c.iss)}, want ${JSON.stringify(want.issuer)}`);
  if (c.aud !== want.audience) throw new ReceiptError("mismatch", `audience is ${JSON.stringify(c.aud)}, want ${JSON.stringify(want.audience)}`);
  if (want.actionDigest && c.action_digest !== want.actionDigest) {
    throw new ReceiptError("mismatch", `receipt is for action ${c.action_digest}, the request is ${want.actionDigest}`);
  }
  if (now >= c.exp + leeway) throw new ReceiptError("expired", `expired at ${new Date(c.exp * 1000).toISOString()}`);
  if (now + leeway < c.iat) throw new ReceiptError("expired", `issued in the future (${new Date(c.iat * 1000).toISOString()})`);
  return c;
}
