//go:build unix

package netguard

import "syscall"

// RaiseFDLimit raises the soft RLIMIT_NOFILE to the hard limit and returns
// the soft limit then in force. (The Go runtime does this too on Linux;
// calling it makes the limit explicit and logs can name it.)
func RaiseFDLimit() (uint64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return 0, err
		}
	}
	return r.Cur, nil
}

// FDLimit is the soft RLIMIT_NOFILE (1024 if it cannot be read; at most
// 1<<20 so that a derived cap stays meaningful).
func FDLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 1024
	}
	if r.Cur > 1<<20 {
		return 1 << 20
	}
	return int(r.Cur)
}
