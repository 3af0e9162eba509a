// The shared SDK vectors (testdata/sdk/README.md): every SDK reaches the
// same outcome on the same answers.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

import { a2aAction, actionDigest, argsDigest, canonicalize, Inconsistent, mcpServerToolAction, mcpToolAction, NotADecision, ReceiptError, verifyAnswer, type JWKS, type Reason } from "../src/index.js";
import { testdata } from "./dev.js";

interface AnswerVector {
  name: string;
  why: string;
  request: { actor: string; action: string; resource: string; args: Record<string, unknown> | null; broker: string; correlation_id: string };
  issuer: string;
  now: number;
  jwks: JWKS;
  status: number;
  body: unknown;
  args_digest: string;
  action_digest: string;
  expect: { outcome: "allow" | "deny" | "error"; error?: string; index?: number; leaf_hash?: string; policy_hash?: string; reasons?: Reason[]; receipt_id?: string; assurance?: string };
}

interface Vectors {
  version: number;
  leeway_seconds: number;
  args_digests: { name: string; args_json: string; canonical: string; digest: string }[];
  answers: AnswerVector[];
  names: { helper: string; args: string[]; action: string }[];
}

/** The naming helpers, by the vectors' (Python) names. */
const nameHelpers: Record<string, (args: string[]) => string> = {
  mcp_tool_action: (a) => mcpToolAction(a[0]!),
  mcp_server_tool_action: (a) => mcpServerToolAction(a[0]!, a[1]!),
  a2a_action: (a) => a2aAction(a[0]!),
};

const file = join(testdata, "sdk", "vectors.json");
const skip = existsSync(file) ? false : `${file} is not present (the shared SDK vectors)`;
const vectors: Vectors = skip ? { version: 1, leeway_seconds: 5, args_digests: [], answers: [], names: [] } : JSON.parse(readFileSync(file, "utf8"));

/** errorClass maps an SDK error to the vectors' error classes. */
function errorClass(e: unknown): string {
  if (e instanceof ReceiptError) return e.kind;
  if (e instanceof Inconsistent || e instanceof NotADecision) return "answer";
  return `unexpected ${(e as Error)?.name}: ${(e as Error)?.message}`;
}

describe("shared SDK vectors", { skip }, () => {
  test("the vectors are version 1 and not empty", () => {
    assert.equal(vectors.version, 1);
    assert.ok(vectors.answers.length > 0, "no answers");
    assert.ok(vectors.args_digests.length > 0, "no args digests");
  });

  for (const v of vectors.names) {
    test(`name ${v.helper}(${v.args.join(", ")}) = ${v.action}`, () => {
      const h = nameHelpers[v.helper];
      assert.ok(h, `no helper for ${v.helper}`);
      assert.equal(h(v.args), v.action);
    });
  }

  for (const v of vectors.args_digests) {
    test(`args digest ${v.name}: canonical form`, () => {
      assert.equal(canonicalize(JSON.parse(v.args_json)), v.canonical);
    });
    test(`args digest ${v.name}: digest`, () => {
      assert.equal(argsDigest(JSON.parse(v.args_json)), v.digest);
    });
  }

  for (const v of vectors.answers) {
    test(`answer ${v.name}: ${v.expect.outcome}${v.expect.error ? " " + v.expect.error : ""} (${v.why})`, async () => {
      const r = v.request;
      const ad = r.args === null ? "" : argsDigest(r.args);
      assert.equal(ad, v.args_digest, "args digest");
      const digest = actionDigest({ actor: r.actor, action: r.action, resource: r.resource, argsDigest: ad, broker: r.broker });
      assert.equal(digest, v.action_digest, "action digest");
      const want = {
        actor: r.actor,
        issuer: v.issuer,
        broker: r.broker,
        actionDigest: digest,
        correlationId: r.correlation_id,
        now: v.now * 1000,
        leeway: vectors.leeway_seconds * 1000,
      };
      let got;
      try {
        got = await verifyAnswer(v.status, JSON.stringify(v.body), v.jwks, want);
      } catch (e) {
        assert.equal(v.expect.outcome, "error", `refused (${errorClass(e)}: ${(e as Error).message}) but the vector expects ${v.expect.outcome}`);
        assert.equal(errorClass(e), v.expect.error, (e as Error).message);
        return;
      }
      assert.equal(got.allowed ? "allow" : "deny", v.expect.outcome, "outcome");
      assert.equal(got.index, v.expect.index, "index");
      assert.equal(got.leafHash, v.expect.leaf_hash, "leaf hash");
      assert.equal(got.policyHash, v.expect.policy_hash, "policy hash");
      assert.deepEqual(got.reasons, v.expect.reasons, "reasons");
      if (v.expect.outcome === "allow") assert.equal(got.claims?.jti, v.expect.receipt_id, "receipt id");
      assert.equal(got.assurance, v.expect.outcome === "allow" ? (v.expect.assurance ?? "sequenced") : undefined, "assurance");
    });
  }
});
