// What a framework tool wrapper asks ztlog about one tool call.

import type { DecideRequest } from "./client.js";

/** How a wrapped tool's calls are named to ztlog. */
export interface ToolGuard<I = unknown> {
  /** The action (default "tool.<tool name>"; e.g. mcpToolAction(name)), or a function of the tool's input. */
  action?: string | ((input: I) => string);
  /** What the call acts on (default "tool://<tool name>"), or a function of the tool's input. */
  resource?: string | ((input: I) => string);
  /** The broker the receipt is for (default: the client's). */
  broker?: string;
  /**
   * Send the tool's input as args (default true): ztlog's guardrails
   * inspect it and the receipt binds its digest. false sends nothing.
   */
  sendArgs?: boolean;
}

/** toolRequest builds the decision request for one call of the named tool. */
export function toolRequest<I>(name: string, input: I, guard: ToolGuard<I> = {}): DecideRequest {
  const pick = (v: string | ((input: I) => string) | undefined, dflt: string) => (typeof v === "function" ? v(input) : (v ?? dflt));
  const req: DecideRequest = {
    action: pick(guard.action, "tool." + name),
    resource: pick(guard.resource, "tool://" + name),
  };
  if (guard.broker) req.broker = guard.broker;
  if (guard.sendArgs !== false) {
    // A tool whose input is not an object (a plain string) is sent as {input}.
    req.args = input !== null && typeof input === "object" && !Array.isArray(input) ? (input as Record<string, unknown>) : { input };
  }
  return req;
}
