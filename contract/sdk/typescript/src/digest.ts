// Digests of contract/entry.md: RFC 8785 (JCS) canonical JSON, SHA-256,
// written "sha256:" + 64 lowercase hex digits.

import { createHash } from "node:crypto";

/** Thrown for a value that has no canonical JSON form. */
export class CanonicalError extends Error {
  override name = "CanonicalError";
}

/**
 * canonicalize returns the RFC 8785 (JCS) serialization of a JSON value:
 * object members sorted by the UTF-16 code units of their names, no
 * whitespace, numbers and strings as ECMAScript's JSON.stringify writes them.
 * The value must be what JSON.parse produces (null, boolean, finite number,
 * string, array, plain object); a lone surrogate, a non-finite number or any
 * other type is a CanonicalError naming the path.
 */
export function canonicalize(value: unknown, path = "$"): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) throw new CanonicalError(`${path}: ${value} is not a JSON number`);
      return JSON.stringify(value);
    case "string":
      return canonicalString(value, path);
    case "object": {
      if (Array.isArray(value)) {
        return "[" + value.map((v, i) => canonicalize(v, `${path}[${i}]`)).join(",") + "]";
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalError(`${path}: a ${proto?.constructor?.name ?? "non-plain"} object is not JSON; pass plain objects`);
      }
      // Default sort compares UTF-16 code units, as JCS requires.
      const keys = Object.keys(value).sort();
      const rec = value as Record<string, unknown>;
      return "{" + keys.map((k) => canonicalString(k, path) + ":" + canonicalize(rec[k], `${path}.${k}`)).join(",") + "}";
    }
    default:
      throw new CanonicalError(`${path}: a ${typeof value} is not JSON`);
  }
}

function canonicalString(s: string, path: string): string {
  if (!s.isWellFormed()) throw new CanonicalError(`${path}: string has a lone UTF-16 surrogate (not valid Unicode)`);
  return JSON.stringify(s);
}

/** sha256 returns "sha256:" + lowercase hex of SHA-256(data). */
export function sha256(data: string | Uint8Array): string {
  return "sha256:" + createHash("sha256").update(data).digest("hex");
}

/**
 * jsonArgs turns a tool's arguments into the JSON text sent as `args` and
 * the value that text parses to, so that the digest is of exactly what is
 * sent. Arguments must be a JSON object.
 */
export function jsonArgs(args: unknown): { text: string; value: Record<string, unknown> } {
  if (args === null || typeof args !== "object" || Array.isArray(args)) {
    throw new CanonicalError("args: must be a JSON object (a plain object of argument names to values)");
  }
  let text: string;
  try {
    text = JSON.stringify(args);
  } catch (e) {
    throw new CanonicalError(`args: cannot be written as JSON: ${(e as Error).message}`);
  }
  const value = JSON.parse(text) as Record<string, unknown>;
  canonicalize(value, "args"); // refuse what has no canonical form before sending it
  return { text, value };
}

/** argsDigest is the args digest: sha256 of the JCS form of the arguments object. */
export function argsDigest(args: unknown): string {
  return sha256(canonicalize(jsonArgs(args).value, "args"));
}

/** What the action digest binds (contract/entry.md, "Action digest"). */
export interface ActionFields {
  /** The authenticated SPIFFE ID of the agent (never a claimed name). */
  actor: string;
  action: string;
  resource: string;
  /** The args digest, or "" (or absent) when there are no arguments. */
  argsDigest?: string;
  /** The broker's SPIFFE ID, or "" (or absent). */
  broker?: string;
  /** The capability manifest digest; present only when a manifest was sent. */
  capabilitiesDigest?: string;
}

/** actionCanonical is the exact JCS text the action digest hashes. */
export function actionCanonical(a: ActionFields): string {
  const o: Record<string, unknown> = {
    action: a.action,
    actor: a.actor,
    args_digest: a.argsDigest ?? "",
    broker: a.broker ?? "",
    resource: a.resource,
    v: 1,
  };
  if (a.capabilitiesDigest) o.capabilities_digest = a.capabilitiesDigest;
  return canonicalize(o);
}

/** actionDigest names one requested action: sha256 of actionCanonical. */
export function actionDigest(a: ActionFields): string {
  return sha256(actionCanonical(a));
}
