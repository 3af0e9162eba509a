package broker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/text"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
)

// Reporter commits signed results.
type Reporter interface {
	Report(ctx context.Context, s *attest.Signed) (*api.ResultResponse, error)
}

// HTTPReporter posts results to a ztlog server's POST /v1/results over a
// client that presents the broker's X.509-SVID. Posting the same statement
// again is safe (the server answers with the entry it committed), so
// transport errors and 503s are retried with backoff, up to Attempts
// (default 5) or ctx's end.
type HTTPReporter struct {
	Client   *http.Client
	BaseURL  string
	Attempts int
}

// ResultBody is the POST /v1/results body for s, carrying the envelope
// bytes exactly as signed.
func ResultBody(s *attest.Signed) []byte {
	chain, _ := json.Marshal(s.ChainBase64())
	var b bytes.Buffer
	b.WriteString(`{"statement":`)
	b.Write(s.Envelope)
	b.WriteString(`,"chain":`)
	b.Write(chain)
	b.WriteString(`}`)
	return b.Bytes()
}

// Report posts s and returns the committed result entry.
func (h *HTTPReporter) Report(ctx context.Context, s *attest.Signed) (*api.ResultResponse, error) {
	res, _, err := h.commit(ctx, ResultBody(s))
	return res, err
}

// commit posts a result body, retrying what may succeed later; retryable
// says whether the last failure was of that kind.
func (h *HTTPReporter) commit(ctx context.Context, body []byte) (res *api.ResultResponse, retryable bool, err error) {
	attempts := h.Attempts
	if attempts <= 0 {
		attempts = 5
	}
	url := strings.TrimSuffix(h.BaseURL, "/") + "/v1/results"
	var last error
	for i, delay := 0, 200*time.Millisecond; i < attempts; i, delay = i+1, delay*2 {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, true, fmt.Errorf("%w (last: %w)", ctx.Err(), last)
			case <-time.After(delay):
			}
		}
		res, retry, err := h.post(ctx, url, body)
		if err == nil {
			return res, false, nil
		}
		last = err
		if !retry {
			// Given up because the caller stopped waiting: that may still
			// succeed later. Otherwise the server refused it for good.
			return nil, ctx.Err() != nil, err
		}
	}
	return nil, true, fmt.Errorf("result not committed after %d attempts: %w", attempts, last)
}

func (h *HTTPReporter) post(ctx context.Context, url string, body []byte) (*api.ResultResponse, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.Client.Do(req)
	if err != nil {
		return nil, ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	raw, err := httperr.ReadBody(resp.Body, 1<<20)
	if err != nil {
		return nil, true, fmt.Errorf("POST /v1/results: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e httperr.Error
		json.Unmarshal(raw, &e)
		err := fmt.Errorf("POST /v1/results: HTTP %d %s: %s", resp.StatusCode, e.Code, e.Message)
		return nil, transientStatus(resp.StatusCode), err
	}
	var res api.ResultResponse
	if err := json.Unmarshal(raw, &res); err != nil || res.Log.LeafHash == "" {
		// Not the server's answer (a proxy's?): posting again is safe.
		return nil, true, fmt.Errorf("POST /v1/results: the answer is not a committed result: %s", text.Cut(string(raw), 200))
	}
	return &res, false, nil
}

// transientStatus reports whether an HTTP failure may succeed later: any
// 5xx (the log's storage_error or busy, a proxy's 502 or 504), 408, 429,
// and 401 — the broker's own identity was not accepted (an SVID that
// expired on a kept connection, a bundle not yet updated), which says
// nothing about the result. Only the other 4xx are the log refusing the
// result for good.
func transientStatus(code int) bool {
	return code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code == http.StatusUnauthorized
}

func leafHash(leaf []byte) []byte {
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(leaf)
	return h.Sum(nil)
}

func newEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc
}
