// Checking one answer of POST /v1/actions: pure (no I/O, no clock), the same
// checks as the Go SDK's client.VerifyAnswer, so the shared vectors in
// testdata/sdk/ mean the same thing to every SDK.

import { Inconsistent, type Reason } from "./errors.js";
import { parseReceipt, verifyReceipt, WITNESSED, type Assurance, type JWKS, type ReceiptClaims } from "./receipt.js";

/** The clock skew tolerated on a receipt's iat and exp, milliseconds. */
export const LEEWAY_MS = 5000;

/** The service's answer (the fields the SDK reads). */
export interface ActionResponse {
  decision: "allow" | "deny";
  reasons: Reason[];
  actor?: string;
  action?: string;
  resource?: string;
  action_digest: string;
  policy: { hash: string; engine?: string; revision?: string };
  log: { origin?: string; index: number; leaf_hash: string; entry_url?: string };
  correlation_id: string;
  receipt?: string;
  receipt_expires?: string;
  findings?: unknown[];
  user?: unknown;
}

/** A verified, committed decision. */
export interface Decision {
  /** True only for an allow whose receipt verified. */
  allowed: boolean;
  reasons: Reason[];
  /** The log index of the committed decision entry. */
  index: number;
  /** Its RFC 6962 leaf hash, standard base64. */
  leafHash: string;
  /** The receipt (compact JWS) of an allow, for the broker; undefined for a deny. */
  receipt: string | undefined;
  /** The verified claims of that receipt. */
  claims: ReceiptClaims | undefined;
  /**
   * The assurance level of an allow, from its receipt: "sequenced" or
   * "witnessed"; undefined for a deny. The SDK checks a witnessed receipt's
   * evidence for form; its cosignatures are verified by the broker.
   */
  assurance: Assurance | undefined;
  /** The hash of the policy version that decided. */
  policyHash: string;
  /** The action digest the SDK computed and the answer confirmed. */
  actionDigest: string;
  correlationId: string;
  /** The answer as the service sent it. */
  response: ActionResponse;
}

/** What an answer must match: what the SDK asked, and whom it trusts. */
export interface AnswerExpect {
  /** The agent's authenticated SPIFFE ID (the receipt's subject). */
  actor: string;
  /** The trusted log origin; required for an allow. */
  issuer: string;
  /** The broker asked for (the receipt's audience); "" accepts the receipt's own audience. */
  broker?: string;
  /** The digest the SDK computed from what it asked. */
  actionDigest: string;
  correlationId: string;
  /** Verification time, milliseconds since the epoch. */
  now: number;
  /** Tolerated skew, milliseconds (default 0). */
  leeway?: number;
}

/** Thrown for an answer whose HTTP status is not a decision (not 200 or 403). */
export class NotADecision extends Error {
  override name = "NotADecision";
  readonly status: number;
  /** The error code of the contract's error shape {code, field, message}, when there is one. */
  readonly code: string | undefined;
  constructor(status: number, code: string | undefined, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function cut(s: string, n: number): string {
  return s.length <= n ? s : s.slice(0, n) + "…";
}

/** errorBody reads the contract's error shape {code, field, message}. */
export function errorBody(body: string): { code: string; field?: string; message?: string } | undefined {
  try {
    const e = JSON.parse(body) as unknown;
    if (e && typeof e === "object" && typeof (e as { code?: unknown }).code === "string" && (e as { code: string }).code !== "") {
      return e as { code: string; field?: string; message?: string };
    }
  } catch {
    // not the error shape
  }
  return undefined;
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * parseAnswer reads an answer: HTTP 200 carrying an allow or 403 carrying a
 * deny, each with log evidence. Any other status is a NotADecision; a body
 * that is not such a decision is Inconsistent. It verifies nothing else;
 * see checkAnswer.
 */
export function parseAnswer(status: number, body: string): ActionResponse {
  if (status !== 200 && status !== 403) {
    const e = errorBody(body);
    if (e) throw new NotADecision(status, e.code, `HTTP ${status} ${e.code} (${e.field ?? ""}): ${e.message ?? ""}`);
    throw new NotADecision(status, undefined, `HTTP ${status}: ${cut(body, 200)}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch (e) {
    throw new Inconsistent(`the answer is not a decision: ${(e as Error).message}`, { unparsable: true });
  }
  // As the Go SDK: a body that does not decode as a decision may be an
  // answer cut short, so its outcome is unknown (unparsable).
  if (!isObj(v)) throw new Inconsistent("the answer is not a decision: not a JSON object", { unparsable: true });
  const bad = (field: string, want: string) => new Inconsistent(`the answer is not a decision: ${field}: want ${want}`, { unparsable: true });
  const optStr = (o: Record<string, unknown>, k: string, path = k) => {
    if (o[k] !== undefined && o[k] !== null && typeof o[k] !== "string") throw bad(path, "a string");
    return (o[k] as string | undefined | null) ?? "";
  };
  const decision = optStr(v, "decision");
  const reasonsRaw = v.reasons ?? [];
  if (!Array.isArray(reasonsRaw)) throw bad("reasons", "an array");
  const reasons: Reason[] = reasonsRaw.map((r, i) => {
    if (!isObj(r)) throw bad(`reasons[${i}]`, "an object");
    return { code: optStr(r, "code", `reasons[${i}].code`), message: optStr(r, "message", `reasons[${i}].message`) };
  });
  const log = v.log ?? {};
  if (!isObj(log)) throw bad("log", "an object");
  const index = log.index ?? 0;
  if (typeof index !== "number" || !Number.isSafeInteger(index) || index < 0) throw bad("log.index", "an integer from 0 to 2^53-1");
  const policy = v.policy ?? {};
  if (!isObj(policy)) throw bad("policy", "an object");
  const ar: ActionResponse = {
    ...(v as object),
    decision: decision as ActionResponse["decision"],
    reasons,
    action_digest: optStr(v, "action_digest"),
    policy: { ...policy, hash: optStr(policy, "hash", "policy.hash") },
    log: { ...log, index, leaf_hash: optStr(log, "leaf_hash", "log.leaf_hash") },
    correlation_id: optStr(v, "correlation_id"),
    receipt: optStr(v, "receipt"),
  };
  if (status === 200 && ar.decision !== "allow") throw new Inconsistent(`HTTP 200 but decision ${JSON.stringify(ar.decision)}`);
  if (status === 403 && ar.decision !== "deny") throw new Inconsistent(`HTTP 403 but decision ${JSON.stringify(ar.decision)}`);
  if (ar.log.leaf_hash === "") throw new Inconsistent("the answer carries no log evidence");
  return ar;
}

/**
 * checkAnswer checks a parsed answer against want: the action digest and
 * correlation id, and for an allow the receipt (verified with jwks) and
 * that it names the answer's index, leaf hash and the agent. It returns the
 * Decision; anything else is an Inconsistent or a ReceiptError.
 */
export async function checkAnswer(ar: ActionResponse, jwks: JWKS, want: AnswerExpect): Promise<Decision> {
  if (ar.action_digest !== want.actionDigest) {
    throw new Inconsistent(`the answer is about action ${ar.action_digest}, the SDK asked for ${want.actionDigest}`);
  }
  if (ar.correlation_id !== want.correlationId) {
    throw new Inconsistent(`the answer's correlation id ${JSON.stringify(ar.correlation_id)} is not the request's ${JSON.stringify(want.correlationId)}`);
  }
  const d: Decision = {
    allowed: false,
    reasons: ar.reasons,
    index: ar.log.index,
    leafHash: ar.log.leaf_hash,
    receipt: undefined,
    claims: undefined,
    assurance: undefined,
    policyHash: ar.policy.hash,
    actionDigest: want.actionDigest,
    correlationId: ar.correlation_id,
    response: ar,
  };
  if (ar.decision !== "allow") return d;
  if (!ar.receipt) throw new Inconsistent("an allow without a receipt");
  const aud = want.broker || parseReceipt(ar.receipt).claims.aud;
  const claims = await verifyReceipt(ar.receipt, jwks, {
    issuer: want.issuer,
    audience: aud,
    actionDigest: want.actionDigest,
    now: want.now,
    leeway: want.leeway ?? 0,
  });
  if (claims.log_index !== ar.log.index) throw new Inconsistent(`the receipt is for log index ${claims.log_index}, the answer says ${ar.log.index}`);
  if (claims.leaf_hash !== ar.log.leaf_hash) throw new Inconsistent(`the receipt is for leaf hash ${claims.leaf_hash}, the answer says ${ar.log.leaf_hash}`);
  if (claims.sub !== want.actor) throw new Inconsistent(`the receipt is for ${claims.sub}, this agent is ${want.actor}`);
  d.allowed = true;
  d.receipt = ar.receipt;
  d.claims = claims;
  d.assurance = claims.assurance === WITNESSED ? "witnessed" : "sequenced";
  return d;
}

/** verifyAnswer is parseAnswer then checkAnswer: a Decision only for a verified, committed answer. */
export async function verifyAnswer(status: number, body: string, jwks: JWKS, want: AnswerExpect): Promise<Decision> {
  return checkAnswer(parseAnswer(status, body), jwks, want);
}
