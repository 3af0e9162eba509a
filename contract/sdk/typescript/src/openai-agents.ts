// An OpenAI Agents SDK function-tool wrapper: the tool's execute runs only
// after a verified allow from ztlog. A deny (or no decision) is thrown from
// execute, which the Agents SDK turns into the tool's error result for the
// model (its errorFunction); execute itself never runs.
//
//   import { guardedTool } from "@zt-infra/ztlog/openai-agents";
//   const search = guardedTool(client, { name: "search", description: "...", parameters: z.object({ q: z.string() }),
//     execute: async ({ q }) => doSearch(q) }, { action: mcpToolAction("search"), resource: "web" });

import { tool, type FunctionTool, type ToolInputParameters, type ToolOptions } from "@openai/agents";
import type { Client } from "./client.js";
import { toolRequest, type ToolGuard } from "./guard.js";

export type { ToolGuard } from "./guard.js";

/**
 * guardedTool is the Agents SDK's tool(options) with execute guarded by
 * ztlog: it runs only on a verified allow of the call, named by guard.
 */
export function guardedTool<TParameters extends ToolInputParameters = undefined, Context = unknown, Result = string>(
  client: Client,
  options: ToolOptions<TParameters, Context>,
  guard: ToolGuard = {},
): FunctionTool<Context, TParameters, Result> {
  const execute = options.execute as (input: unknown, context?: unknown, details?: unknown) => unknown;
  const name = options.name ?? execute.name;
  if (!name) throw new TypeError("guardedTool: the tool needs a name (options.name or a named execute function)");
  const guarded = {
    ...options,
    name,
    execute: (input: unknown, context?: unknown, details?: unknown) => client.guardedCall(toolRequest(name, input, guard), () => execute(input, context, details)),
  };
  return tool<TParameters, Context, Result>(guarded as unknown as ToolOptions<TParameters, Context>);
}
