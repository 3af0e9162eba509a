// Action names the contract gives to common kinds of work.

/** mcpToolAction names the call of an MCP tool: "mcp.tool.<name>". */
export function mcpToolAction(tool: string): string {
  return "mcp.tool." + tool;
}

/** a2aAction names sending a message to an A2A agent: "a2a.<agent>.send_message". */
export function a2aAction(agent: string): string {
  return "a2a." + agent + ".send_message";
}
