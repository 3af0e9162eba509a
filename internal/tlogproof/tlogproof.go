// Package tlogproof reads and writes C2SP tlog-proof@v1, the text form of an
// offline-verifiable inclusion proof:
//
//	c2sp.org/tlog-proof@v1
//	[extra <base64>]
//	index <decimal, no leading zeros>
//	<base64 SHA-256 hash, one per line, leaf's sibling first>
//	...
//	<empty line>
//	<the checkpoint, a signed note, verbatim>
//
// Parse checks the syntax only. Verify checks a parsed proof for the entry
// the caller expects: the checkpoint against a trust policy (log signature,
// witness quorum) and the path from the entry's leaf hash to the root. The
// extra data is not authenticated by anything and Verify ignores it.
package tlogproof

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Header is the first line of every proof.
const Header = "c2sp.org/tlog-proof@v1"

// Proof is a parsed tlog-proof.
type Proof struct {
	// Extra is the optional unauthenticated extra data (nil when absent).
	Extra []byte
	// Index is the entry's index in the log.
	Index uint64
	// Hashes is the inclusion proof, leaf's sibling first.
	Hashes [][]byte
	// Checkpoint is the signed note, verbatim.
	Checkpoint []byte
}

// maxHashes bounds the proof length: a tree of 2^64 leaves needs 64.
const maxHashes = 64

// Format writes p in tlog-proof@v1 text form.
func Format(p *Proof) []byte {
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	if p.Extra != nil {
		b.WriteString("extra " + base64.StdEncoding.EncodeToString(p.Extra) + "\n")
	}
	b.WriteString("index " + strconv.FormatUint(p.Index, 10) + "\n")
	for _, h := range p.Hashes {
		b.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	b.WriteString("\n")
	b.Write(p.Checkpoint)
	return b.Bytes()
}

// ErrMalformed is wrapped by every Parse error.
var ErrMalformed = errors.New("tlog-proof: malformed")

func malformed(line int, format string, args ...any) error {
	return fmt.Errorf("%w: line %d: %s", ErrMalformed, line, fmt.Sprintf(format, args...))
}

// decodeCanonical decodes standard base64 written exactly as Format
// writes it: encoding/base64's decoder skips \r and \n inside the text,
// which Format never writes.
func decodeCanonical(s string) ([]byte, bool) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || base64.StdEncoding.EncodeToString(b) != s {
		return nil, false
	}
	return b, true
}

// Parse reads a tlog-proof@v1. It rejects anything Format would not write.
func Parse(b []byte) (*Proof, error) {
	head, checkpoint, ok := bytes.Cut(b, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformed)
	}
	if len(checkpoint) == 0 {
		return nil, fmt.Errorf("%w: empty checkpoint", ErrMalformed)
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != Header {
		return nil, malformed(1, "want %q", Header)
	}
	p := &Proof{Checkpoint: checkpoint}
	i := 1
	if i < len(lines) && strings.HasPrefix(lines[i], "extra ") {
		extra, ok := decodeCanonical(strings.TrimPrefix(lines[i], "extra "))
		if !ok {
			return nil, malformed(i+1, "extra is not standard base64")
		}
		p.Extra = extra
		if p.Extra == nil {
			p.Extra = []byte{}
		}
		i++
	}
	if i >= len(lines) || !strings.HasPrefix(lines[i], "index ") {
		return nil, malformed(i+1, "want \"index <N>\"")
	}
	idx := strings.TrimPrefix(lines[i], "index ")
	n, err := strconv.ParseUint(idx, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != idx {
		return nil, malformed(i+1, "index %q is not a decimal without leading zeros", idx)
	}
	p.Index = n
	i++
	for ; i < len(lines); i++ {
		h, ok := decodeCanonical(lines[i])
		if !ok || len(h) != 32 {
			return nil, malformed(i+1, "not the base64 of a 32-byte hash")
		}
		if len(p.Hashes) == maxHashes {
			return nil, malformed(i+1, "more than %d hashes", maxHashes)
		}
		p.Hashes = append(p.Hashes, h)
	}
	return p, nil
}
