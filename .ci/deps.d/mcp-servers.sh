#!/usr/bin/env bash
# The reference MCP servers (npm) the MCP gateway tests run behind
# `zt mcp proxy`: @modelcontextprotocol/server-everything and
# @modelcontextprotocol/server-filesystem, under /opt/ztlog-tools.
set -u
dest=/opt/ztlog-tools
everything=2026.8.31
filesystem=2026.8.31
[ -x "$dest/node_modules/.bin/mcp-server-everything" ] && [ -x "$dest/node_modules/.bin/mcp-server-filesystem" ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "npm missing: cannot install the MCP servers"; exit 1; }
mkdir -p "$dest" && cd "$dest" && npm install --no-audit --no-fund --silent \
	"@modelcontextprotocol/server-everything@$everything" \
	"@modelcontextprotocol/server-filesystem@$filesystem" >/dev/null
