package httperr

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadBodyExactLimitPasses(t *testing.T) {
	body := strings.Repeat("x", 64)
	got, err := ReadBody(strings.NewReader(body), 64)
	if err != nil {
		t.Fatalf("ReadBody of exactly the limit: %v", err)
	}
	if string(got) != body {
		t.Errorf("ReadBody = %d bytes %q..., want the %d bytes sent", len(got), got[:min(len(got), 8)], len(body))
	}
}

func TestReadBodyShorterPasses(t *testing.T) {
	got, err := ReadBody(strings.NewReader("{}"), 64)
	if err != nil {
		t.Fatalf("ReadBody: %v", err)
	}
	if string(got) != "{}" {
		t.Errorf("ReadBody = %q, want %q", got, "{}")
	}
}

func TestReadBodyEmptyPasses(t *testing.T) {
	got, err := ReadBody(strings.NewReader(""), 64)
	if err != nil {
		t.Fatalf("ReadBody of an empty body: %v", err)
	}
	if len(got) != 0 {
		t.Errorf("ReadBody of an empty body = %q, want nothing", got)
	}
}

func TestReadBodyOneOverLimitIsTooLarge(t *testing.T) {
	got, err := ReadBody(strings.NewReader(strings.Repeat("x", 65)), 64)
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("ReadBody of limit+1 bytes: err = %v (%T), want a *TooLargeError", err, err)
	}
	if tl.Limit != 64 {
		t.Errorf("TooLargeError.Limit = %d, want 64", tl.Limit)
	}
	if got != nil {
		t.Errorf("ReadBody of limit+1 bytes returned %d bytes, want none (no cut prefix)", len(got))
	}
}

func TestTooLargeErrorMessage(t *testing.T) {
	_, err := ReadBody(strings.NewReader(strings.Repeat("x", 1<<20+1)), 1<<20)
	if err == nil {
		t.Fatal("ReadBody of 1 MiB + 1 byte: no error")
	}
	if want := "answer larger than 1048576 bytes"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
}

// An endless body must not be read to its end: ReadBody stops one byte
// past the limit.
func TestReadBodyStopsOnePastLimit(t *testing.T) {
	src := bytes.NewReader(make([]byte, 1000))
	_, err := ReadBody(src, 100)
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("err = %v, want a *TooLargeError", err)
	}
	if read := 1000 - src.Len(); read != 101 {
		t.Errorf("ReadBody read %d bytes of the body, want 101 (limit + 1)", read)
	}
}

func TestReadBodyPassesReaderErrorThrough(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(strings.NewReader("{\"a\":"), iotest.ErrReader(boom))
	got, err := ReadBody(r, 64)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's own error", err)
	}
	var tl *TooLargeError
	if errors.As(err, &tl) {
		t.Errorf("a reader error came back as a *TooLargeError: %v", err)
	}
	if got != nil {
		t.Errorf("ReadBody returned %q with the reader error, want nothing", got)
	}
}

func TestReadBodyNegativeLimitReadsNothing(t *testing.T) {
	_, err := ReadBody(strings.NewReader("x"), -1)
	var tl *TooLargeError
	if !errors.As(err, &tl) {
		t.Fatalf("err = %v, want a *TooLargeError", err)
	}
	if tl.Limit != 0 {
		t.Errorf("TooLargeError.Limit = %d, want 0", tl.Limit)
	}
}
