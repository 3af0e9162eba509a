#!/usr/bin/env bash
# solc (npm package solc, command solcjs) at the version DAALog.json is pinned
# to: the DAAL artifact test recompiles the contract and compares. Without it
# that test skips, naming solcjs.
set -u
want=0.8.30
if command -v solcjs >/dev/null 2>&1 && solcjs --version 2>/dev/null | grep -q "^$want+"; then
	exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
	echo "solc.sh: npm is not installed; cannot install solc@$want (the DAAL artifact check will skip)"
	exit 0
fi
npm install -g "solc@$want" >/dev/null 2>&1 || echo "solc.sh: npm install -g solc@$want failed (the DAAL artifact check will skip)"
