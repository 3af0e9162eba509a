#!/usr/bin/env bash
# @a2a-js/sdk (npm), the A2A reference SDK, and express (its server's peer
# dependency): the A2A gate's tests run a real A2A server and client from it
# on both sides of `zt a2a` (contract/gateway/a2a/testdata). The 0.3 line
# speaks the JSON-RPC methods message/send and message/stream.
set -u
dest=/opt/ztlog-tools
sdk=0.3.14
express=5.1.0
[ -f "$dest/node_modules/@a2a-js/sdk/package.json" ] && [ -f "$dest/node_modules/express/package.json" ] && exit 0
command -v npm >/dev/null 2>&1 || { echo "npm missing: cannot install @a2a-js/sdk"; exit 1; }
mkdir -p "$dest" && cd "$dest" && npm install --no-audit --no-fund --silent \
	"@a2a-js/sdk@$sdk" "express@$express" >/dev/null || {
	echo "npm install @a2a-js/sdk@$sdk express@$express failed: the A2A gate tests will skip"; exit 1; }
