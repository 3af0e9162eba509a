package httperr

import (
	"fmt"
	"io"
	"math"
)

// TooLargeError is ReadBody's answer to a body that holds more than Limit
// bytes. Callers wrap it with what they were reading (the URL, the
// document), so the message says which answer was too large:
//
//	GET https://log.example/v1/receipts/jwks.json: answer larger than 1048576 bytes
type TooLargeError struct {
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("answer larger than %d bytes", e.Limit)
}

// ReadBody reads r to its end, but no more than max bytes. A body of at
// most max bytes comes back whole; a longer one is an error, a
// *TooLargeError, never a silently cut prefix that a parser would then
// misread. An error of r itself is returned as it is. A negative max
// counts as 0.
//
// It is the one bounded read of an HTTP answer (resp.Body); it reads one
// byte past max to tell "exactly max" from "more".
func ReadBody(r io.Reader, max int64) ([]byte, error) {
	if max < 0 {
		max = 0
	}
	n := max
	if n < math.MaxInt64 {
		n++
	}
	b, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &TooLargeError{Limit: max}
	}
	return b, nil
}
