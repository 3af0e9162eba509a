// Package policysource is the stored form of a policy version: the files an
// engine loaded, exactly as it read them, under their paths relative to the
// policy's root. Its digest is the `source_digest` a `policy` log entry
// commits, so a stored policy is checked against the log by recomputing one
// digest. The format is specified in policysource.md; golden vectors are in
// testdata/.
package policysource

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"testing/fstest"
	"unicode/utf8"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/jcs"
	"github.com/zt-infra/ztlog/internal/jsonx"
)

// Version is the document version, the number 1.
const Version = 1

// Limits of one source.
const (
	// MaxFiles is the most files one source holds.
	MaxFiles = 4096
	// MaxPath is the longest relative path, in bytes.
	MaxPath = 1024
	// MaxSize is the most content bytes one source holds (all files).
	MaxSize = 32 << 20
)

// ErrMalformed is wrapped by every error Parse and Check return for a
// document or a source that breaks policysource.md.
var ErrMalformed = errors.New("policysource: malformed")

// Source is one policy version's files.
type Source struct {
	// Engine is the engine that loads the files: "opa" or "cedar".
	Engine string
	// Files maps a relative, slash-separated path to the file's bytes.
	Files map[string][]byte
}

// Check reports the first way s breaks the format's rules, naming the file.
func (s *Source) Check() error {
	if s.Engine == "" || !validText(s.Engine) || len(s.Engine) > 64 {
		return fmt.Errorf("%w: engine %q: want an engine name such as opa or cedar", ErrMalformed, s.Engine)
	}
	if len(s.Files) == 0 {
		return fmt.Errorf("%w: no files", ErrMalformed)
	}
	if len(s.Files) > MaxFiles {
		return fmt.Errorf("%w: %d files, more than %d", ErrMalformed, len(s.Files), MaxFiles)
	}
	total := 0
	for p, b := range s.Files {
		if err := CheckPath(p); err != nil {
			return err
		}
		total += len(b)
	}
	if total > MaxSize {
		return fmt.Errorf("%w: %d bytes of files, more than %d", ErrMalformed, total, MaxSize)
	}
	return nil
}

// CheckPath reports whether p is a valid file path: relative, slash
// separated, no empty, "." or ".." element, valid UTF-8 without control
// characters or backslashes, at most MaxPath bytes.
func CheckPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: file path %q: %s", ErrMalformed, p, why) }
	switch {
	case p == "":
		return bad("empty")
	case len(p) > MaxPath:
		return bad(fmt.Sprintf("longer than %d bytes", MaxPath))
	case !validText(p):
		return bad("not valid UTF-8 without control characters")
	case strings.Contains(p, `\`):
		return bad(`has a backslash: separate elements with "/"`)
	case strings.HasPrefix(p, "/"):
		return bad("absolute: paths are relative to the policy's root")
	}
	for _, el := range strings.Split(p, "/") {
		if el == "" || el == "." || el == ".." {
			return bad(`has an empty, "." or ".." element`)
		}
	}
	return nil
}

func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// Paths are the file paths in sorted order.
func (s *Source) Paths() []string {
	ps := make([]string, 0, len(s.Files))
	for p := range s.Files {
		ps = append(ps, p)
	}
	sort.Strings(ps)
	return ps
}

// Manifest is the JCS serialization of {path: digest of the file's bytes}:
// the bytes Digest hashes.
func (s *Source) Manifest() []byte {
	m := make(map[string]string, len(s.Files))
	for p, b := range s.Files {
		m[p] = entry.Digest(b)
	}
	js, _ := json.Marshal(m) // a map of strings always encodes
	c, err := jcs.Canonicalize(js)
	if err != nil {
		panic("policysource: canonicalize a map of strings: " + err.Error())
	}
	return c
}

// Digest is the content digest: "sha256:" and the hex SHA-256 of Manifest.
// A `policy` entry's source_digest is this value.
func (s *Source) Digest() string { return entry.Digest(s.Manifest()) }

// document is the stored and served form.
type document struct {
	Engine string            `json:"engine"`
	Files  map[string]string `json:"files"`
	V      int               `json:"v"`
}

// Marshal is the stored form: the JCS serialization of
// {"engine":…,"files":{path: standard base64 of the bytes},"v":1}.
func (s *Source) Marshal() ([]byte, error) {
	if err := s.Check(); err != nil {
		return nil, err
	}
	d := document{Engine: s.Engine, Files: make(map[string]string, len(s.Files)), V: Version}
	for p, b := range s.Files {
		d.Files[p] = base64.StdEncoding.EncodeToString(b)
	}
	js, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	return jcs.Canonicalize(js)
}

// Parse reads a stored document. It refuses anything Marshal would not
// have written: unknown members, another version, a path that breaks the
// rules, content that is not standard padded base64, a non-canonical
// encoding.
func Parse(b []byte) (*Source, error) {
	var d document
	if err := jsonx.DecodeStrict(b, &d); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	if d.V != Version {
		return nil, fmt.Errorf("%w: v is %d, this reader knows %d", ErrMalformed, d.V, Version)
	}
	s := &Source{Engine: d.Engine, Files: make(map[string][]byte, len(d.Files))}
	for p, enc := range d.Files {
		raw, err := base64.StdEncoding.Strict().DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("%w: file %q: content is not standard base64: %w", ErrMalformed, p, err)
		}
		s.Files[p] = raw
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	again, err := s.Marshal()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not the canonical (RFC 8785) encoding of its content", ErrMalformed)
	}
	return s, nil
}

// FS is the files as a read-only file system, for loaders that read one.
func (s *Source) FS() fs.FS {
	m := make(fstest.MapFS, len(s.Files))
	for p, b := range s.Files {
		m[p] = &fstest.MapFile{Data: b, Mode: 0o444}
	}
	return m
}
