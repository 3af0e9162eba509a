// Package httpread is the HTTP read surface of the evidence log:
//
//	GET /log/checkpoint                   C2SP tlog-tiles checkpoint
//	GET /log/tile/<L>/<N>[.p/<W>]         C2SP tlog-tiles Merkle tiles
//	GET /log/tile/entries/<N>[.p/<W>]     C2SP tlog-tiles entry bundles
//	GET /v1/entries/{index}[?size=N]      an entry with its inclusion proof
//	GET /v1/proofs/consistency?old=&new=  a consistency proof
//
// The tlog-tiles resources are served byte for byte as stored, so any
// tlog-tiles client given the URL prefix <base>/log and the verifier key can
// read and verify the log. The JSON endpoints are specified in api.md next
// to this file; their errors use httperr.Error.
package httpread

import (
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"

	"github.com/gorilla/mux"
	"github.com/transparency-dev/tessera/api/layout"

	"github.com/zt-infra/ztlog/internal/tlogproof"
	ztlog "github.com/zt-infra/ztlog/log"
)

// Handler serves the read routes.
type Handler = handler

// Register adds the log's read routes to r.
func Register(r *mux.Router, l *ztlog.Log) *Handler {
	h := &handler{l: l}
	r.HandleFunc("/log/checkpoint", h.checkpoint).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/log/tile/entries/").HandlerFunc(h.entryBundle).Methods(http.MethodGet, http.MethodHead)
	r.PathPrefix("/log/tile/").HandlerFunc(h.tile).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/v1/entries/{index}", h.entry).Methods(http.MethodGet)
	r.HandleFunc("/v1/proofs/consistency", h.consistency).Methods(http.MethodGet)
	return h
}

type handler struct {
	l *ztlog.Log
}

const (
	immutable = "public, max-age=31536000, immutable"
	// The checkpoint changes every few hundred milliseconds; tlog-tiles asks
	// that it not be cached for more than a few seconds.
	mutable = "no-cache"
)

// checkpoint serves the checkpoint the log has verified (signature, and
// consistency with every one before it), the one the proof and entry
// endpoints answer for: never the storage's file unchecked, which could be
// a fork the log refuses or a size the proofs do not reach yet.
func (h *handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	cp, err := h.l.Checkpoint()
	if err != nil {
		WriteLogError(w, err, "")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", mutable)
	w.Write(cp.Note)
}

// published checks that the tile of level level, index n and width p (0:
// full) lies within the verified checkpoint's tree: tiles and bundles
// beyond it may still change (written before their batch was integrated,
// or by a batch that failed) and are not served, least of all as
// immutable.
func (h *handler) published(w http.ResponseWriter, path string, level, n uint64, p uint8) bool {
	cp, err := h.l.Checkpoint()
	if err != nil {
		WriteLogError(w, err, "path")
		return false
	}
	nodes := cp.Size
	if level < 8 {
		nodes >>= 8 * level
	} else {
		nodes = 0
	}
	width := uint64(p)
	if width == 0 {
		width = layout.TileWidth
	}
	if n > (math.MaxUint64-width)/layout.TileWidth || n*layout.TileWidth+width > nodes {
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "not_found", Field: "path",
			Message: fmt.Sprintf("%s is beyond the published tree (size %d); only resources of published tree sizes are served", path, cp.Size)})
		return false
	}
	return true
}

func (h *handler) tile(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/log/tile/")
	level, index, ok := strings.Cut(rest, "/")
	if !ok {
		badTilePath(w, r.URL.Path)
		return
	}
	l, n, p, err := layout.ParseTileLevelIndexPartial(level, index)
	if err != nil || "/log/"+layout.TilePath(l, n, p) != r.URL.Path {
		badTilePath(w, r.URL.Path)
		return
	}
	if !h.published(w, r.URL.Path, l, n, p) {
		return
	}
	t, err := h.l.ReadTile(r.Context(), l, n, p)
	if err != nil {
		writeResourceError(w, err, r.URL.Path)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", immutable)
	w.Write(t)
}

func (h *handler) entryBundle(w http.ResponseWriter, r *http.Request) {
	index := strings.TrimPrefix(r.URL.Path, "/log/tile/entries/")
	n, p, err := layout.ParseTileIndexPartial(index)
	if err != nil || "/log/"+layout.EntriesPath(n, p) != r.URL.Path {
		badTilePath(w, r.URL.Path)
		return
	}
	if !h.published(w, r.URL.Path, 0, n, p) {
		return
	}
	b, err := h.l.ReadEntryBundle(r.Context(), n, p)
	if err != nil {
		writeResourceError(w, err, r.URL.Path)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", immutable)
	w.Header().Add("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		zw := gzip.NewWriter(w)
		zw.Write(b)
		zw.Close()
		return
	}
	w.Write(b)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(coding), "gzip") && !qZero(params) {
			return true
		}
	}
	return false
}

// qZero reports whether Accept-Encoding parameters give q=0 in any of its
// spellings (RFC 9110: "q=0", "Q=0.0", "q=0.000").
func qZero(params string) bool {
	for _, kv := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		v = strings.TrimSpace(v)
		if v == "0" || (strings.HasPrefix(v, "0.") && strings.Trim(v[2:], "0") == "") {
			return true
		}
	}
	return false
}

func badTilePath(w http.ResponseWriter, path string) {
	httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{
		Code:    "bad_tile_path",
		Field:   "path",
		Message: fmt.Sprintf("%q is not a C2SP tlog-tiles path: want /log/tile/<L>/<N>[.p/<W>] or /log/tile/entries/<N>[.p/<W>], N as x001/x234/067", path),
	})
}

// EntryResponse is the body of GET /v1/entries/{index}.
type EntryResponse struct {
	// Index of the entry.
	Index uint64 `json:"index"`
	// Leaf is the entry exactly as committed (standard base64).
	Leaf string `json:"leaf"`
	// Entry is the same entry as a JSON value, for reading; Leaf is
	// authoritative.
	Entry json.RawMessage `json:"entry,omitempty"`
	// LeafHash is the RFC 6962 leaf hash (standard base64).
	LeafHash string `json:"leaf_hash"`
	// TreeSize is the size of the tree the proof is for.
	TreeSize uint64 `json:"tree_size"`
	// InclusionProof is the Merkle path, leaf's sibling first.
	InclusionProof []string `json:"inclusion_proof"`
	// Checkpoint is the signed checkpoint of TreeSize, when TreeSize is the
	// latest published size.
	Checkpoint string `json:"checkpoint,omitempty"`
	// TLogProof is the same proof and checkpoint in C2SP tlog-proof@v1 text
	// form, when Checkpoint is present.
	TLogProof string `json:"tlog_proof,omitempty"`
}

func (h *handler) entry(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	index, ok := ParseUint(w, "index", mux.Vars(r)["index"])
	if !ok {
		return
	}
	leaf, cp, err := h.l.Entry(ctx, index)
	if err != nil {
		WriteLogError(w, err, "index")
		return
	}
	size := cp.Size
	if s := r.URL.Query().Get("size"); s != "" {
		if size, ok = ParseUint(w, "size", s); !ok {
			return
		}
		if size > cp.Size {
			httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "not_found", Field: "size",
				Message: fmt.Sprintf("size %d is beyond the published tree size %d", size, cp.Size)})
			return
		}
		if index >= size {
			httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "bad_size", Field: "size",
				Message: fmt.Sprintf("entry %d is not in a tree of size %d; ask for a size above the index", index, size)})
			return
		}
	}
	proof, err := h.l.InclusionProof(ctx, index, size)
	if err != nil {
		WriteLogError(w, err, "size")
		return
	}
	resp := EntryResponse{
		Index:          index,
		Leaf:           base64.StdEncoding.EncodeToString(leaf),
		LeafHash:       base64.StdEncoding.EncodeToString(ztlog.LeafHash(leaf)),
		TreeSize:       size,
		InclusionProof: b64all(proof),
	}
	if json.Valid(leaf) {
		resp.Entry = leaf
	}
	if size == cp.Size {
		resp.Checkpoint = string(cp.Note)
		resp.TLogProof = string(tlogproof.Format(&tlogproof.Proof{Index: index, Hashes: proof, Checkpoint: cp.Note}))
	}
	w.Header().Set("Cache-Control", "no-cache")
	httperr.WriteJSON(w, http.StatusOK, resp)
}

// ConsistencyResponse is the body of GET /v1/proofs/consistency.
type ConsistencyResponse struct {
	Old   uint64   `json:"old"`
	New   uint64   `json:"new"`
	Proof []string `json:"proof"`
	// Checkpoint is the signed checkpoint of New, when New is the latest
	// published size.
	Checkpoint string `json:"checkpoint,omitempty"`
}

func (h *handler) consistency(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if !q.Has("old") {
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "missing_parameter", Field: "old",
			Message: "give the older tree size as ?old=N"})
		return
	}
	old, ok := ParseUint(w, "old", q.Get("old"))
	if !ok {
		return
	}
	cp, err := h.l.Checkpoint()
	if err != nil {
		WriteLogError(w, err, "")
		return
	}
	newSize := cp.Size
	if q.Has("new") {
		if newSize, ok = ParseUint(w, "new", q.Get("new")); !ok {
			return
		}
	}
	switch {
	case newSize > cp.Size:
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "not_found", Field: "new",
			Message: fmt.Sprintf("size %d is beyond the published tree size %d", newSize, cp.Size)})
		return
	case old > newSize:
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{Code: "bad_size", Field: "old",
			Message: fmt.Sprintf("old size %d is larger than new size %d", old, newSize)})
		return
	}
	proof, err := h.l.ConsistencyProof(r.Context(), old, newSize)
	if err != nil {
		WriteLogError(w, err, "new")
		return
	}
	resp := ConsistencyResponse{Old: old, New: newSize, Proof: b64all(proof)}
	if newSize == cp.Size {
		resp.Checkpoint = string(cp.Note)
	}
	w.Header().Set("Cache-Control", "no-cache")
	httperr.WriteJSON(w, http.StatusOK, resp)
}

// ParseUint reads a decimal tree index or size: digits only, no sign, no
// leading zeros. It writes the 400 itself when the value is malformed.
func ParseUint(w http.ResponseWriter, field, s string) (uint64, bool) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != s {
		httperr.WriteError(w, http.StatusBadRequest, &httperr.Error{
			Code:    "bad_" + field,
			Field:   field,
			Message: fmt.Sprintf("%s %q is not a decimal integer (digits only, no sign or leading zeros)", field, text.Cut(s, 40)),
		})
		return 0, false
	}
	return n, true
}

func b64all(hs [][]byte) []string {
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}

// writeResourceError answers a failed tile or bundle read without exposing
// storage paths.
func writeResourceError(w http.ResponseWriter, err error, path string) {
	if errors.Is(err, ztlog.ErrNotFound) {
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "not_found", Field: "path",
			Message: fmt.Sprintf("%s does not exist; only resources of published tree sizes are served", path)})
		return
	}
	WriteLogError(w, err, "path")
}

// WriteLogError maps a log error to its status and JSON error.
func WriteLogError(w http.ResponseWriter, err error, field string) {
	switch {
	case errors.Is(err, ztlog.ErrNotFound):
		httperr.WriteError(w, http.StatusNotFound, &httperr.Error{Code: "not_found", Field: field, Message: err.Error()})
	case errors.Is(err, ztlog.ErrNoCheckpoint):
		httperr.WriteError(w, http.StatusServiceUnavailable, &httperr.Error{Code: "no_checkpoint", Message: "the log has not published a checkpoint yet; retry shortly"})
	case errors.Is(err, ztlog.ErrInconsistent):
		httperr.WriteError(w, http.StatusServiceUnavailable, &httperr.Error{Code: "inconsistent", Message: err.Error()})
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		httperr.WriteError(w, http.StatusServiceUnavailable, &httperr.Error{Code: "timeout", Message: err.Error()})
	default:
		httperr.WriteError(w, http.StatusInternalServerError, &httperr.Error{Code: "storage_error", Message: err.Error()})
	}
}
