#!/usr/bin/env bash
# spire-server and spire-agent v1.13.3, built from the Go module proxy in a
# scratch module, for the real-SPIRE end-to-end test (internal/e2e/spire).
# The binaries are cached under /opt/ztlog-tools/spire-<version>/bin so a
# machine builds them once (about 5 minutes on 2 cores). Without them the test
# skips, naming spire-server / spire-agent. The test finds them on PATH or in
# that directory (or in $ZTLOG_SPIRE_BIN).
set -u
ver=1.13.3
bin=/opt/ztlog-tools/spire-$ver/bin
if [ -x "$bin/spire-server" ] && [ -x "$bin/spire-agent" ]; then
	exit 0
fi
if ! command -v go >/dev/null 2>&1; then
	echo "spire.sh: go is not installed; cannot build spire-server/spire-agent v$ver (the SPIRE test will skip)"
	exit 0
fi
if ! mkdir -p "$bin" 2>/dev/null; then
	echo "spire.sh: cannot create $bin; spire-server/spire-agent v$ver missing (the SPIRE test will skip)"
	exit 0
fi
# The scratch module sits next to the destination, so the finished binaries
# are renamed into place: an interrupted build never leaves a half-written
# binary that the check above would accept.
scratch=$(mktemp -d "$bin/../build.XXXXXX") || exit 0
trap 'rm -rf "$scratch"' EXIT
echo "spire.sh: building spire-server and spire-agent v$ver into $bin (about 5 minutes on 2 idle cores)"
# (set -e would not apply inside a subshell tested by "if": chain with &&.)
if ! (
	cd "$scratch" &&
		go mod init scratch >/dev/null 2>&1 &&
		go get -tool "github.com/spiffe/spire/cmd/spire-server@v$ver" &&
		go get -tool "github.com/spiffe/spire/cmd/spire-agent@v$ver" &&
		GOBIN="$scratch/bin" nice -n 10 go install github.com/spiffe/spire/cmd/spire-server github.com/spiffe/spire/cmd/spire-agent &&
		mv "$scratch/bin/spire-server" "$scratch/bin/spire-agent" "$bin/"
); then
	echo "spire.sh: building spire-server/spire-agent v$ver failed (no module proxy?); the SPIRE test will skip"
fi
exit 0
