package history

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// IndexHeader is the first line of an index checkpoint.
const IndexHeader = "ztlog-history-index v1"

// IndexCheckpoint is the body of an index checkpoint (history.md, "Index
// checkpoint").
type IndexCheckpoint struct {
	Origin  string
	Size    uint64
	LogRoot Hash
	MapSize uint64
	MapRoot Hash
}

// Text is the note text: six lines, each ending in a newline.
func (c IndexCheckpoint) Text() string {
	return fmt.Sprintf("%s\n%s\n%d\n%s\n%d\n%s\n", IndexHeader, c.Origin, c.Size,
		base64.StdEncoding.EncodeToString(c.LogRoot[:]), c.MapSize, base64.StdEncoding.EncodeToString(c.MapRoot[:]))
}

// Sign signs the index checkpoint with the log's note signer.
func (c IndexCheckpoint) Sign(s note.Signer) ([]byte, error) {
	if s.Name() != c.Origin {
		return nil, fmt.Errorf("index checkpoint for origin %q signed by key %q: the log key's name must be the origin", c.Origin, s.Name())
	}
	return note.Sign(&note.Note{Text: c.Text()}, s)
}

// ParseIndexText parses the text of an index checkpoint (no signature).
func ParseIndexText(text string) (IndexCheckpoint, error) {
	var c IndexCheckpoint
	if !strings.HasSuffix(text, "\n") {
		return c, fmt.Errorf("%w: the text does not end in a newline", ErrMalformed)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) != 6 {
		return c, fmt.Errorf("%w: index checkpoint has %d lines, want 6", ErrMalformed, len(lines))
	}
	if lines[0] != IndexHeader {
		return c, fmt.Errorf("%w: first line %q, want %q (a log checkpoint is not an index checkpoint)", ErrMalformed, lines[0], IndexHeader)
	}
	if lines[1] == "" {
		return c, fmt.Errorf("%w: empty origin line", ErrMalformed)
	}
	c.Origin = lines[1]
	var err error
	if c.Size, err = parseDecimal(lines[2]); err != nil {
		return c, fmt.Errorf("%w: size line: %w", ErrMalformed, err)
	}
	if c.LogRoot, err = parseHash(lines[3]); err != nil {
		return c, fmt.Errorf("%w: log root line: %w", ErrMalformed, err)
	}
	if c.MapSize, err = parseDecimal(lines[4]); err != nil {
		return c, fmt.Errorf("%w: map size line: %w", ErrMalformed, err)
	}
	if c.MapRoot, err = parseHash(lines[5]); err != nil {
		return c, fmt.Errorf("%w: map root line: %w", ErrMalformed, err)
	}
	return c, nil
}

// OpenIndexCheckpoint verifies the signed index checkpoint with the log's
// verifier and parses its text; the origin must be the verifier's name.
func OpenIndexCheckpoint(signed []byte, v note.Verifier) (IndexCheckpoint, error) {
	n, err := note.Open(signed, note.VerifierList(v))
	if err != nil {
		return IndexCheckpoint{}, fmt.Errorf("%w: %w", ErrIndexSignature, err)
	}
	c, err := ParseIndexText(n.Text)
	if err != nil {
		return c, err
	}
	if c.Origin != v.Name() {
		return c, fmt.Errorf("%w: index checkpoint names origin %q, signed by the key of %q", ErrIndexSignature, c.Origin, v.Name())
	}
	return c, nil
}

func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a decimal number without leading zeros", s)
	}
	return strconv.ParseUint(s, 10, 64)
}

func parseHash(s string) (Hash, error) {
	var h Hash
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 32 || base64.StdEncoding.EncodeToString(b) != s {
		return h, fmt.Errorf("%q is not the standard base64 of 32 bytes", s)
	}
	copy(h[:], b)
	return h, nil
}
