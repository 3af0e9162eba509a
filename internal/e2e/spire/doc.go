// Package spire holds the end-to-end test of ztlog against real SPIRE
// (spire-server and spire-agent v1.13.3, installed by .ci/deps.d/spire.sh).
//
// The test starts two SPIRE trust domains on 127.0.0.1 — ztlog.test, where
// the log, its agents and its broker live, and partner.test, federated with
// it through SPIRE bundle endpoints (https_web profile) — and runs the
// binaries built from this module as workloads: `ztlog serve
// --workload-api`, `zt decide --workload-api`, `zt run --workload-api` and
// `zt broker --workload-api`. Each gets its SVID from a spire-agent through
// the unix workload attestor, told apart by the path of its executable
// (unix:path), since they all run as the same user.
//
// It lives in a directory of its own because it belongs to no one command:
// it drives both ztlog and zt as built binaries, and two SPIRE deployments,
// and it must not slow down the packages it exercises. Without spire-server
// or spire-agent it skips, naming them.
package spire
