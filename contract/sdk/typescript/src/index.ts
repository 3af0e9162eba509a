// @zt-infra/ztlog: ask ztlog whether an agent may act, and act only on a
// verified allow. See README.md of the ztlog repository and
// contract/client (the Go SDK) for the behaviour this package shares.

export { Client, type ClientOptions, type DecideRequest, type RetryOptions, type BreakerOptions } from "./client.js";
export { verifyAnswer, parseAnswer, checkAnswer, NotADecision, LEEWAY_MS, type Decision, type ActionResponse, type AnswerExpect } from "./answer.js";
export { ZtlogError, NoDecision, Ambiguous, CircuitOpen, Denied, ReceiptError, Inconsistent, type Reason, type ReceiptErrorKind } from "./errors.js";
export { parseReceipt, verifyReceipt, parseJwks, isSpiffeId, parseTlogProof, RECEIPT_TYPE, WITNESSED, type ReceiptClaims, type ReceiptExpect, type JWKS, type Assurance, type TLogProof } from "./receipt.js";
export { actionDigest, actionCanonical, argsDigest, canonicalize, sha256, CanonicalError, type ActionFields } from "./digest.js";
export { mcpToolAction, mcpServerToolAction, a2aAction } from "./names.js";
