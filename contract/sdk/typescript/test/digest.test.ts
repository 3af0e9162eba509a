import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { actionCanonical, actionDigest, argsDigest, canonicalize, CanonicalError, mcpToolAction, a2aAction } from "../src/index.js";
import { testdata } from "./dev.js";

interface Vector {
  name: string;
  actor: string;
  action: string;
  resource: string;
  args_digest: string;
  broker: string;
  capabilities_digest?: string;
  canonical: string;
  digest: string;
}

const vectors = JSON.parse(readFileSync(join(testdata, "action-digest", "vectors.json"), "utf8")) as Vector[];

test("action-digest vectors are present", () => {
  assert.ok(vectors.length >= 4, `only ${vectors.length} vectors in testdata/action-digest/vectors.json`);
});

for (const v of vectors) {
  const fields = {
    actor: v.actor,
    action: v.action,
    resource: v.resource,
    argsDigest: v.args_digest,
    broker: v.broker,
    ...(v.capabilities_digest ? { capabilitiesDigest: v.capabilities_digest } : {}),
  };
  test(`action digest vector ${v.name}: canonical bytes`, () => {
    assert.equal(actionCanonical(fields), v.canonical);
  });
  test(`action digest vector ${v.name}: digest`, () => {
    assert.equal(actionDigest(fields), v.digest);
  });
}

// Expected digests computed by the Go implementation (contract/api.ArgsDigest,
// github.com/gowebpki/jcs) over the same JSON text.
const goArgs: [string, string][] = [
  ['{"text":"hi"}', "sha256:e7b995efa755c5ff3b84d2188b58cb4ae916a59470eb3761df8a814f11763500"],
  [
    '{"b":[1,2.5,-0,1e30,1e-7,0.002,true,null],"a":{"z":"\\u20ac","\\r":"x","1":"\\ud83d\\ude00","\\u0080":"é","ö":"<&>"}}',
    "sha256:eaf2e207c0f9b973c94e15ddb89a7998806b53f9bae94ca5c9ecd4d7cf2fe319",
  ],
  [
    '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001,-1.5e-300,9007199254740993]}',
    "sha256:ca53f84684cf334381e9579d9da63109be5bf9517f2cabd7232edc4acd84b87a",
  ],
  ['{"s":"\\u0000\\u001f\\"\\\\/\\u007f\\u2028"}', "sha256:5c319aa3200e6d2b7e054da3f5a92f06839699382865bb8404afe1b4ac990f58"],
];

for (const [text, want] of goArgs) {
  test(`args digest equals Go's for ${text}`, () => {
    assert.equal(argsDigest(JSON.parse(text)), want);
  });
}

test("JCS sorts member names by UTF-16 code units (RFC 8785 3.2.3)", () => {
  const o = { "\u20ac": 1, "\r": 2, "\ufb33": 3, "1": 4, "\ud83d\ude00": 5, "\u0080": 6, "\u00f6": 7 };
  assert.equal(canonicalize(o), '{"\\r":2,"1":4,"\u0080":6,"\u00f6":7,"\u20ac":1,"\ud83d\ude00":5,"\ufb33":3}');
});

test("JCS writes numbers as ECMAScript does (RFC 8785 3.2.2.3)", () => {
  assert.equal(canonicalize([1e30, 4.5, 0.002, 1e-7, -0, 333333333.33333329, 1e21, 1e20]), "[1e+30,4.5,0.002,1e-7,0,333333333.3333333,1e+21,100000000000000000000]");
});

test("JCS refuses a non-finite number", () => {
  assert.throws(() => canonicalize({ n: Number.NaN }), CanonicalError);
});

test("JCS refuses a lone surrogate", () => {
  assert.throws(() => canonicalize({ s: "\ud800" }), /lone UTF-16 surrogate/);
});

test("args must be a JSON object, not an array", () => {
  assert.throws(() => argsDigest([1, 2]), /args: must be a JSON object/);
});

test("args digest is of the JSON sent: undefined members are dropped, dates become strings", () => {
  assert.equal(argsDigest({ a: 1, skip: undefined }), argsDigest({ a: 1 }));
});

test("mcpToolAction names an MCP tool call", () => {
  assert.equal(mcpToolAction("search"), "mcp.tool.search");
});

test("a2aAction names sending a message to an A2A agent", () => {
  assert.equal(a2aAction("planner"), "a2a.planner.send_message");
});
