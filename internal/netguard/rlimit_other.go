//go:build !unix

package netguard

// RaiseFDLimit does nothing where there is no RLIMIT_NOFILE.
func RaiseFDLimit() (uint64, error) { return uint64(FDLimit()), nil }

// FDLimit is a conservative guess where there is no RLIMIT_NOFILE.
func FDLimit() int { return 1024 }
