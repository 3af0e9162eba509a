// Action names the contract gives to common kinds of work.

/**
 * mcpToolAction names the call of an MCP tool: "mcp.tool.<name>" (the Go
 * SDK's MCPToolAction). For a tool of a named MCP server use
 * mcpServerToolAction.
 */
export function mcpToolAction(tool: string): string {
  return "mcp.tool." + tool;
}

/**
 * mcpServerToolAction names the call of tool on the MCP server server:
 * "mcp.tool.<server>.<tool>", what the MCP gateway (zt mcp) decides for that
 * call (the Go SDK's MCPServerToolAction). server is one segment (no dots).
 */
export function mcpServerToolAction(server: string, tool: string): string {
  return mcpToolAction(server + "." + tool);
}

/** a2aAction names sending a message to an A2A agent: "a2a.<agent>.send_message". */
export function a2aAction(agent: string): string {
  return "a2a." + agent + ".send_message";
}
