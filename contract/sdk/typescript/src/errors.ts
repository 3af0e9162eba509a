// Errors. Every error thrown by decide and guardedCall means: do not act.

/** A reason the service gave for a decision. */
export interface Reason {
  code: string;
  message: string;
}

/** Base class of the SDK's errors. */
export class ZtlogError extends Error {
  override name = "ZtlogError";
}

/**
 * NoDecision: there is no verified answer (transport error, timeout, HTTP
 * 4xx/5xx, an unparsable, unsigned or inconsistent answer). Nothing may be
 * done.
 */
export class NoDecision extends ZtlogError {
  override name = "NoDecision";
  /** The correlation id every attempt of the call carried, when one was sent. */
  readonly correlationId: string | undefined;
  constructor(message: string, correlationId?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.correlationId = correlationId;
  }
}

/**
 * Ambiguous: the request was sent but its outcome is unknown; the decision
 * may be committed. Not retried unless retry.ambiguous is set.
 */
export class Ambiguous extends NoDecision {
  override name = "Ambiguous";
}

/** CircuitOpen: too many recent calls without a decision; nothing was asked. */
export class CircuitOpen extends NoDecision {
  override name = "CircuitOpen";
}

/** Denied: a committed deny. guardedCall throws it and never runs fn. */
export class Denied extends ZtlogError {
  override name = "Denied";
  /** Why, as the service said. */
  readonly reasons: Reason[];
  /** The log index of the committed deny. */
  readonly index: number;
  readonly correlationId: string;
  constructor(reasons: Reason[], index: number, correlationId: string) {
    const first = reasons[0];
    super(`ztlog: denied${first ? `: ${first.code}: ${first.message}` : ""} (log index ${index})`);
    this.reasons = reasons;
    this.index = index;
    this.correlationId = correlationId;
  }
}

/** What went wrong with a receipt, as in contract/receipt (testdata/receipts/invalid/vectors.json). */
export type ReceiptErrorKind = "malformed" | "unknown_key" | "signature" | "expired" | "mismatch";

/** ReceiptError: a receipt that must be refused. */
export class ReceiptError extends ZtlogError {
  override name = "ReceiptError";
  readonly kind: ReceiptErrorKind;
  constructor(kind: ReceiptErrorKind, message: string) {
    super(`receipt: ${kind.replace("_", " ")}: ${message}`);
    this.kind = kind;
  }
}

/**
 * Inconsistent: the answer is not a well-formed decision, or does not match
 * the request or its own receipt (another action, correlation id, index,
 * leaf hash or subject).
 */
export class Inconsistent extends ZtlogError {
  override name = "Inconsistent";
  /** The body is not JSON at all (the answer may have been cut short). */
  readonly unparsable: boolean;
  constructor(message: string, options?: { unparsable?: boolean }) {
    super(message);
    this.unparsable = options?.unparsable ?? false;
  }
}
