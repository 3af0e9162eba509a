package broker

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"
	"github.com/zt-infra/ztlog/verifier/proof"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/contract/receipt"
	"github.com/zt-infra/ztlog/internal/tlogproof"
	"github.com/zt-infra/ztlog/internal/trustpolicy"
)

// Strict makes a broker prove, before it runs anything, that the decision
// its receipt names is in the log: the entry at the receipt's log index,
// with a C2SP tlog-proof whose checkpoint verifies under the trust policy
// (log key and witness quorum), has the receipt's leaf hash, and is an
// allow for the same action digest carrying the receipt's id.
type Strict struct {
	// Entries fetches an entry and its tlog-proof.
	Entries EntrySource
	// Policy is the trust policy (internal/trustpolicy).
	Policy *trustpolicy.Policy
	// Wait bounds how long a broker waits for a checkpoint that covers
	// the decision (default 10s).
	Wait time.Duration
}

// ErrNotCovered: no published checkpoint covers the entry yet.
var ErrNotCovered = errors.New("no published checkpoint covers the entry yet")

// EntrySource fetches an entry with its tlog-proof.
type EntrySource interface {
	Entry(ctx context.Context, index uint64) (leaf, tlogProof []byte, err error)
}

func (s *Strict) prove(ctx context.Context, c *receipt.Claims, now time.Time) error {
	wait := s.Wait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var leaf, proofText []byte
	var err error
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		leaf, proofText, err = s.Entries.Entry(ctx, c.LogIndex)
		if !errors.Is(err, ErrNotCovered) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("decision %d: %w within %s", c.LogIndex, err, wait)
		case <-time.After(delay):
		}
	}
	if err != nil {
		return fmt.Errorf("decision %d: %w", c.LogIndex, err)
	}
	p, err := tlogproof.Parse(proofText)
	if err != nil {
		return fmt.Errorf("decision %d: tlog-proof: %w", c.LogIndex, err)
	}
	if p.Index != c.LogIndex {
		return fmt.Errorf("the tlog-proof is for index %d, the receipt names %d", p.Index, c.LogIndex)
	}
	if _, err := proof.VerifyTLogProof(p, leaf, s.Policy, trustpolicy.VerifyOptions{Now: now}); err != nil {
		return fmt.Errorf("decision %d: %w", c.LogIndex, err)
	}
	if lh := base64.StdEncoding.EncodeToString(leafHash(leaf)); lh != c.LeafHash {
		return fmt.Errorf("the entry at %d has leaf hash %s, the receipt says %s", c.LogIndex, lh, c.LeafHash)
	}
	e, err := entry.Parse(leaf)
	if err != nil {
		return fmt.Errorf("entry %d: %w", c.LogIndex, err)
	}
	d, ok := e.(*entry.Decision)
	switch {
	case !ok:
		return fmt.Errorf("entry %d is not a decision", c.LogIndex)
	case d.Effect != entry.Allow:
		return fmt.Errorf("entry %d is a deny", c.LogIndex)
	case d.ActionDigest != c.ActionDigest:
		return fmt.Errorf("entry %d is about action %s, the receipt %s", c.LogIndex, d.ActionDigest, c.ActionDigest)
	case d.Receipt == nil || d.Receipt.ID != c.ID:
		return fmt.Errorf("entry %d did not issue receipt %s", c.LogIndex, c.ID)
	}
	return nil
}

// HTTPEntries reads entries from a ztlog server's GET /v1/entries/{index}
// (log/httpread/api.md).
type HTTPEntries struct {
	Client  *http.Client
	BaseURL string
}

// Entry fetches the entry at index and its tlog-proof.
func (h *HTTPEntries) Entry(ctx context.Context, index uint64) ([]byte, []byte, error) {
	url := strings.TrimSuffix(h.BaseURL, "/") + "/v1/entries/" + strconv.FormatUint(index, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := httperr.ReadBody(resp.Body, 1<<20)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound, http.StatusServiceUnavailable:
		return nil, nil, ErrNotCovered
	default:
		return nil, nil, fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, text.Cut(string(bytes.TrimSpace(body)), 200))
	}
	var e struct {
		Leaf      string `json:"leaf"`
		TLogProof string `json:"tlog_proof"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", url, err)
	}
	leaf, err := base64.StdEncoding.DecodeString(e.Leaf)
	if err != nil || e.TLogProof == "" {
		return nil, nil, fmt.Errorf("GET %s: no leaf or tlog_proof", url)
	}
	return leaf, []byte(e.TLogProof), nil
}
