//go:build !ztcrash

package state

// crashpoint marks a step of an atomic write. Builds with the ztcrash tag
// (crash tests only) can kill the process there; see crashpoint_ztcrash.go.
func crashpoint(string) {}
