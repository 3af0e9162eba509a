#!/usr/bin/env bash
# Node.js >= 20 and npm, for the TypeScript SDK's tests (make
# test-sdk-typescript, contract/sdk/typescript). Installs Debian's nodejs and
# npm when node is missing; when the node there is older than 20 (Debian 12
# ships 18) it says so, and test-sdk-typescript skips naming node.
set -u
need=20
major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && [ "$(major)" -ge "$need" ]; then
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "nodejs.sh: node/npm missing and cannot be installed here (needs root and apt-get); the TypeScript SDK tests will skip"; exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  pkgs=""
  command -v node >/dev/null 2>&1 || pkgs="nodejs"
  command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $pkgs >/dev/null ||
    { echo "nodejs.sh: apt-get install $pkgs failed; the TypeScript SDK tests will skip"; exit 1; }
fi
if [ "$(major)" -lt "$need" ]; then
  echo "nodejs.sh: node $(node --version 2>/dev/null) is older than $need; the TypeScript SDK tests will skip (install Node.js >= $need)"; exit 1
fi
