package daal

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MetadataVersion is the version of the anchor metadata format.
const MetadataVersion = 1

// maxMetadata bounds the metadata string read back from the chain.
const maxMetadata = 1024

// Metadata is the metadata string of a checkpoint anchor, the third argument
// of logBatch(origin, root, metadata). It is compact JSON with exactly these
// keys in this order, no spaces:
//
//	{"v":1,"size":<tree size, decimal>,"checkpoint":"sha256:<64 hex>"}
//
// size is the checkpoint's tree size; checkpoint is the SHA-256 of the
// checkpoint body: the signed note's text up to and excluding the blank line
// that precedes the signatures, i.e. "<origin>\n<size>\n<base64 root>\n"
// for ztlog, which adds no extension lines. The body does not depend on who
// cosigned, so every copy of the checkpoint has the same hash. The root
// itself travels as the merkleRoot argument and the origin as agentId.
type Metadata struct {
	Size       uint64
	Checkpoint [32]byte
}

// Marshal is the metadata's one canonical encoding.
func (m Metadata) Marshal() string {
	return `{"v":1,"size":` + strconv.FormatUint(m.Size, 10) + `,"checkpoint":"sha256:` + hex.EncodeToString(m.Checkpoint[:]) + `"}`
}

// ErrMetadata is wrapped by every ParseMetadata error.
var ErrMetadata = errors.New("daal: anchor metadata")

// ParseMetadata reads anchor metadata. Only the canonical encoding is
// accepted: anything else (other keys, order, spacing, versions) is not
// something ztlog wrote.
func ParseMetadata(s string) (Metadata, error) {
	var m Metadata
	if len(s) > maxMetadata {
		return m, fmt.Errorf("%w: %d bytes, more than %d", ErrMetadata, len(s), maxMetadata)
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var raw struct {
		V          *json.Number `json:"v"`
		Size       *json.Number `json:"size"`
		Checkpoint *string      `json:"checkpoint"`
	}
	if err := dec.Decode(&raw); err != nil {
		return m, fmt.Errorf("%w: not the anchor JSON object: %w", ErrMetadata, err)
	}
	if raw.V == nil || raw.Size == nil || raw.Checkpoint == nil {
		return m, fmt.Errorf("%w: want the keys v, size and checkpoint", ErrMetadata)
	}
	if raw.V.String() != strconv.Itoa(MetadataVersion) {
		return m, fmt.Errorf("%w: version %s, this ztlog reads version %d", ErrMetadata, raw.V, MetadataVersion)
	}
	size, err := strconv.ParseUint(raw.Size.String(), 10, 64)
	if err != nil {
		return m, fmt.Errorf("%w: size %s is not a tree size", ErrMetadata, raw.Size)
	}
	m.Size = size
	d, err := parseDigest(*raw.Checkpoint)
	if err != nil {
		return m, fmt.Errorf("%w: checkpoint: %w", ErrMetadata, err)
	}
	m.Checkpoint = d
	if m.Marshal() != s {
		return m, fmt.Errorf("%w: not in canonical form (want %s)", ErrMetadata, m.Marshal())
	}
	return m, nil
}

// parseDigest reads "sha256:<64 lowercase hex>".
func parseDigest(s string) ([32]byte, error) {
	var d [32]byte
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return d, fmt.Errorf("%q is not sha256:<64 lowercase hex>", s)
	}
	if _, err := hex.Decode(d[:], []byte(h)); err != nil {
		return d, fmt.Errorf("%q is not sha256:<64 lowercase hex>", s)
	}
	return d, nil
}

// CheckpointBody is the text a checkpoint's signatures cover for a tree of
// the given origin, size and root, with no extension lines.
func CheckpointBody(origin string, size uint64, root []byte) []byte {
	return []byte(origin + "\n" + strconv.FormatUint(size, 10) + "\n" + base64.StdEncoding.EncodeToString(root) + "\n")
}

// NoteBody returns the body of a signed note: the text before the blank
// line that separates it from the signatures.
func NoteBody(note []byte) ([]byte, error) {
	i := bytes.Index(note, []byte("\n\n"))
	if i < 0 {
		return nil, errors.New("not a signed note: no blank line before the signatures")
	}
	return note[:i+1], nil
}

// MetadataFor is the metadata of an anchor of the checkpoint note (whose
// body must carry size).
func MetadataFor(note []byte, size uint64) (Metadata, error) {
	body, err := NoteBody(note)
	if err != nil {
		return Metadata{}, err
	}
	return Metadata{Size: size, Checkpoint: sha256.Sum256(body)}, nil
}
