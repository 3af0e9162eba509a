// Package tlogwitness reads and writes the messages of C2SP tlog-witness
// (https://c2sp.org/tlog-witness), the protocol a log uses to obtain
// cosignatures from a witness.
//
// An add-checkpoint request (POST <submission prefix>/add-checkpoint) is
//
//	old <previous size, decimal, no leading zeros>
//	<base64 consistency proof hash>        zero to 63 lines
//	...
//	<empty line>
//	<the checkpoint, a signed note, verbatim>
//
// Every line ends in U+000A. A successful answer (200) is one or more note
// signature lines ("— <name> <base64>\n"), the witness's cosignatures of the
// checkpoint. A 409 Conflict answer has Content-Type text/x.tlog.size and a
// body of the witness's latest cosigned size in decimal followed by a
// newline; the client retries with that old size.
//
// The other outcomes are status codes only: 400 malformed request or old
// size above the checkpoint size, 403 no trusted log signature (or a bad
// one), 404 unknown origin, 422 the consistency proof (or the size-zero
// root, or an equal-size root) does not check out.
//
// ParseRequest checks syntax only: the checkpoint's signatures and the
// proof are the witness's to verify against its own state.
package tlogwitness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

const (
	// AddCheckpointPath is appended to the submission prefix.
	AddCheckpointPath = "/add-checkpoint"
	// SizeContentType is the Content-Type of a 409 Conflict body.
	SizeContentType = "text/x.tlog.size"
	// MaxProofHashes is the most consistency proof lines a request may have.
	MaxProofHashes = 63
	// MaxRequestSize bounds a request body: 63 proof lines, and a checkpoint
	// with room for well over 16 ML-DSA-44 signatures (signed-note asks
	// verifiers to accept at least 16; each is about 3.3 KB in base64).
	MaxRequestSize = 128 << 10
	// HashSize is the size of an RFC 6962 SHA-256 tree hash.
	HashSize = 32
)

// Request is an add-checkpoint request.
type Request struct {
	// OldSize is the size of the checkpoint the client believes the witness
	// last cosigned (0 when it does not know).
	OldSize uint64
	// Proof is the RFC 6962 consistency proof from OldSize to the
	// checkpoint's size (empty when OldSize is 0 or equals the size).
	Proof [][]byte
	// Checkpoint is the signed note, verbatim.
	Checkpoint []byte
}

// ErrMalformed is wrapped by every ParseRequest and ParseSize error. A
// witness answers it with 400 Bad Request.
var ErrMalformed = errors.New("tlog-witness: malformed")

func malformed(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrMalformed, line, fmt.Sprintf(format, args...))
}

// FormatRequest writes r as an add-checkpoint request body.
func FormatRequest(r *Request) []byte {
	var b bytes.Buffer
	b.WriteString("old " + strconv.FormatUint(r.OldSize, 10) + "\n")
	for _, h := range r.Proof {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(r.Checkpoint)
	return b.Bytes()
}

// ParseRequest reads an add-checkpoint request body. It rejects anything
// FormatRequest would not write: a missing or non-canonical old size line,
// a proof line that is not the standard base64 of a 32-byte hash, more than
// MaxProofHashes proof lines, a missing empty line, an empty checkpoint,
// and bodies over MaxRequestSize.
func ParseRequest(body []byte) (*Request, error) {
	if len(body) > MaxRequestSize {
		return nil, fmt.Errorf("%w: body is %d bytes, more than the %d allowed", ErrMalformed, len(body), MaxRequestSize)
	}
	line, rest, ok := bytes.Cut(body, []byte("\n"))
	if !ok {
		return nil, malformed(1, "no newline after the old size line")
	}
	num, ok := bytes.CutPrefix(line, []byte("old "))
	if !ok {
		return nil, malformed(1, "want \"old <size>\", got %q", truncate(line))
	}
	old, err := parseDecimal(num)
	if err != nil {
		return nil, malformed(1, "old size %q: %v", truncate(num), err)
	}
	r := &Request{OldSize: old}
	for n := 2; ; n++ {
		line, rest, ok = bytes.Cut(rest, []byte("\n"))
		if !ok {
			return nil, malformed(n, "no empty line before the checkpoint")
		}
		if len(line) == 0 {
			break
		}
		if len(r.Proof) == MaxProofHashes {
			return nil, malformed(n, "more than %d consistency proof lines", MaxProofHashes)
		}
		h, err := base64.StdEncoding.Strict().DecodeString(string(line))
		if err != nil || len(h) != HashSize {
			return nil, malformed(n, "consistency proof line is not the standard base64 of a %d-byte hash", HashSize)
		}
		r.Proof = append(r.Proof, h)
	}
	if len(rest) == 0 {
		return nil, fmt.Errorf("%w: the checkpoint after the empty line is missing", ErrMalformed)
	}
	r.Checkpoint = rest
	return r, nil
}

// FormatSize writes the body of a 409 Conflict answer.
func FormatSize(size uint64) []byte {
	return []byte(strconv.FormatUint(size, 10) + "\n")
}

// ParseSize reads the body of a 409 Conflict answer: a decimal size with no
// leading zeros and one final newline.
func ParseSize(body []byte) (uint64, error) {
	num, ok := bytes.CutSuffix(body, []byte("\n"))
	if !ok {
		return 0, fmt.Errorf("%w: size body %q does not end in a newline", ErrMalformed, truncate(body))
	}
	n, err := parseDecimal(num)
	if err != nil {
		return 0, fmt.Errorf("%w: size body %q: %w", ErrMalformed, truncate(body), err)
	}
	return n, nil
}

func parseDecimal(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty")
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal number (digits only)")
		}
	}
	if len(b) > 1 && b[0] == '0' {
		return 0, errors.New("leading zeros are not allowed")
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return n, nil
}

func truncate(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// CosignatureLines checks that an add-checkpoint answer is one or more
// note signature lines ("— <name> <base64>\n") and returns them. It does
// not verify them: append them to the checkpoint and open the note with the
// witness keys the client trusts.
func CosignatureLines(body []byte) ([][]byte, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty cosignature answer", ErrMalformed)
	}
	var lines [][]byte
	for n := 1; len(body) > 0; n++ {
		line, rest, ok := bytes.Cut(body, []byte("\n"))
		if !ok {
			return nil, malformed(n, "signature line does not end in a newline")
		}
		if !bytes.HasPrefix(line, []byte("— ")) {
			return nil, malformed(n, "not a note signature line (want \"— <name> <base64>\")")
		}
		name, sig, ok := bytes.Cut(line[len("— "):], []byte(" "))
		if !ok || len(name) == 0 || len(sig) == 0 || bytes.ContainsAny(sig, " ") {
			return nil, malformed(n, "not a note signature line (want \"— <name> <base64>\")")
		}
		if _, err := base64.StdEncoding.Strict().DecodeString(string(sig)); err != nil {
			return nil, malformed(n, "signature is not standard base64")
		}
		lines = append(lines, body[:len(line)+1])
		body = rest
	}
	return lines, nil
}
