// Package faultsuite holds no code: its tests run `ztlog dev` as a real
// process (built with go build) and inject faults — file-descriptor
// exhaustion under a low `prlimit --nofile`, slow headers, a trickled body,
// a full disk on a small tmpfs (as root), the witness lost under both
// assurance levels — each asserting that no allow is answered without its
// evidence, that the service answers again once the fault ends, and that
// nothing acknowledged is lost (issue 18).
package faultsuite
