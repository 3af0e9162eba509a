import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { parseJwks, parseTlogProof, ReceiptError, verifyReceipt, type ReceiptClaims } from "../src/index.js";
import { testdata } from "./dev.js";

// contract/receipt/receipt.md, "Example": the vectors verify for this
// issuer and audience at 2026-11-21T10:01:00Z (no leeway).
const dir = join(testdata, "receipts");
const jwks = parseJwks(readFileSync(join(dir, "jwks.json"), "utf8"));
const want = {
  issuer: "localhost/ztlog-dev",
  audience: "spiffe://dev.ztlog.local/broker/demo",
  now: Date.parse("2026-11-21T10:01:00Z"),
};
const read = (f: string) => readFileSync(join(dir, f), "utf8").trim();

test("valid.jws verifies and its claims are valid.claims.json", async () => {
  const claims = await verifyReceipt(read("valid.jws"), jwks, want);
  const expected = JSON.parse(read("valid.claims.json")) as ReceiptClaims;
  assert.deepEqual(claims, expected);
});

test("valid.jws verifies with its action digest expected", async () => {
  const expected = JSON.parse(read("valid.claims.json")) as ReceiptClaims;
  const claims = await verifyReceipt(read("valid.jws"), jwks, { ...want, actionDigest: expected.action_digest });
  assert.equal(claims.log_index, expected.log_index);
});

test("valid.jws is refused for another action digest", async () => {
  await assert.rejects(
    verifyReceipt(read("valid.jws"), jwks, { ...want, actionDigest: "sha256:" + "00".repeat(32) }),
    (e: unknown) => e instanceof ReceiptError && e.kind === "mismatch",
  );
});

test("valid.jws is refused five minutes later (expired)", async () => {
  await assert.rejects(
    verifyReceipt(read("valid.jws"), jwks, { ...want, now: Date.parse("2026-11-21T10:05:00Z") }),
    (e: unknown) => e instanceof ReceiptError && e.kind === "expired",
  );
});

test("valid.jws is accepted at expiry within the leeway", async () => {
  const claims = await verifyReceipt(read("valid.jws"), jwks, { ...want, now: Date.parse("2026-11-21T10:05:00Z"), leeway: 5000 });
  assert.equal(claims.exp, Date.parse("2026-11-21T10:05:00Z") / 1000);
});

interface Invalid {
  file: string;
  error: string;
  why: string;
}
const invalid = JSON.parse(read(join("invalid", "vectors.json"))) as Invalid[];

test("invalid receipt vectors are present", () => {
  assert.ok(invalid.length >= 10, `only ${invalid.length} vectors`);
});

for (const v of invalid) {
  test(`invalid/${v.file} is refused as ${v.error} (${v.why})`, async () => {
    await assert.rejects(verifyReceipt(read(join("invalid", v.file)), jwks, want), (e: unknown) => {
      assert.ok(e instanceof ReceiptError, `not a ReceiptError: ${String(e)}`);
      assert.equal(e.kind, v.error, e.message);
      return true;
    });
  });
}

test("a JWKS holding a private key is refused", () => {
  const priv = JSON.parse(read("test-key.jwk"));
  assert.throws(() => parseJwks({ keys: [priv] }), /is private/);
});

test("a JWKS with no keys is refused", () => {
  assert.throws(() => parseJwks({ keys: [] }), /no keys/);
});

test("a receipt whose kid names a key of another algorithm is refused", async () => {
  const k = { ...jwks.keys[0]!, alg: "ES256" };
  await assert.rejects(verifyReceipt(read("valid.jws"), { keys: [k] }, want), (e: unknown) => e instanceof ReceiptError && e.kind === "signature");
});

// testdata/receipts/witnessed (receipt.md, "Example"): witnessed receipts
// for issuer example.com/ztlog-vectors.
const wdir = join(dir, "witnessed");
const wread = (f: string) => readFileSync(join(wdir, f), "utf8").trim();
const wwant = { issuer: "example.com/ztlog-vectors", audience: "spiffe://dev.ztlog.local/broker/local", now: want.now };
const winvalid = JSON.parse(wread("vectors.json")) as Invalid[];

test("witnessed/valid.jws verifies and its claims are valid.claims.json", async () => {
  const claims = await verifyReceipt(wread("valid.jws"), jwks, wwant);
  assert.deepEqual(claims, JSON.parse(wread("valid.claims.json")) as ReceiptClaims);
});

for (const v of winvalid.filter((v) => v.error === "malformed")) {
  test(`witnessed/${v.file} is refused as malformed (${v.why})`, async () => {
    await assert.rejects(verifyReceipt(wread(v.file), jwks, wwant), (e: unknown) => {
      assert.ok(e instanceof ReceiptError, `not a ReceiptError: ${String(e)}`);
      assert.equal(e.kind, "malformed", e.message);
      return true;
    });
  });
}

// The agent side holds no witness policy: a well-formed receipt whose
// cosignatures or inclusion proof do not hold is the broker's to refuse
// (receipt.md step 7; testdata/sdk/README.md).
for (const v of winvalid.filter((v) => v.error === "unwitnessed")) {
  test(`witnessed/${v.file} is left to the broker (${v.why})`, async () => {
    const claims = await verifyReceipt(wread(v.file), jwks, wwant);
    assert.equal(claims.assurance, "witnessed");
  });
}

test("the tlog-proof spec example parses", () => {
  const p = parseTlogProof(readFileSync(join(testdata, "tlog-proof", "spec-example.tlog-proof"), "utf8"));
  assert.equal(p.index, 73894n);
  assert.equal(p.hashes.length, 5);
  assert.ok(p.extra && p.extra.length > 0, "extra data");
  assert.ok(p.checkpoint.startsWith("example.com/fancylog\n109482\n"), p.checkpoint);
});
