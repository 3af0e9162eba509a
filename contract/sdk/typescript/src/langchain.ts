// A LangChain.js tool wrapper: the wrapped tool runs its body only after a
// verified allow from ztlog. A deny (or no decision) is thrown as
// Denied (or NoDecision) from invoke, and the original tool never runs.
//
//   import { guardTool } from "@zt-infra/ztlog/langchain";
//   const safe = guardTool(client, searchTool, { action: mcpToolAction("search"), resource: "web" });

import { DynamicStructuredTool, type StructuredToolInterface } from "@langchain/core/tools";
import type { Client } from "./client.js";
import { toolRequest, type ToolGuard } from "./guard.js";

export type { ToolGuard } from "./guard.js";

/**
 * guardTool returns a tool with the same name, description and schema as
 * tool, whose every call is decided by ztlog first: tool.invoke runs only
 * on a verified allow.
 */
export function guardTool<I = Record<string, unknown>>(client: Client, tool: StructuredToolInterface, guard: ToolGuard<I> = {}): DynamicStructuredTool {
  return new DynamicStructuredTool({
    name: tool.name,
    description: tool.description,
    // The schema the original validates with; the wrapper validates the same.
    schema: tool.schema as never,
    func: async (input: unknown, runManager, config) => {
      return client.guardedCall(toolRequest(tool.name, input as I, guard), () =>
        // The inner call is a plain call of the original (not a tool call:
        // the wrapper makes the ToolMessage), under the wrapper's run.
        tool.invoke(input as never, { ...config, callbacks: runManager?.getChild(), toolCall: undefined } as never),
      );
    },
  });
}
