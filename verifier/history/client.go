package history

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/zt-infra/ztlog/internal/httperr"
)

// MaxAnswer bounds the answer a client reads (1 GiB): an agent with
// 100,000 entries of 1 KiB is about 130 MB.
const MaxAnswer = 1 << 30

// Query names what to ask for: exactly one of Agent and CorrelationID;
// Size 0 asks for the size the server has indexed.
type Query struct {
	Agent         string
	CorrelationID string
	Size          uint64
}

// Key is the index key the query asks for.
func (q Query) Key() string {
	if q.Agent != "" {
		return AgentKey(q.Agent)
	}
	return CorrelationKey(q.CorrelationID)
}

// ServerBase is the server's base URL given a log URL: the tlog-tiles
// prefix .../log/ or the base itself.
func ServerBase(logURL string) (*url.URL, error) {
	u, err := url.Parse(logURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q is not an http(s) URL", logURL)
	}
	p := strings.TrimSuffix(u.Path, "/")
	p = strings.TrimSuffix(p, "/log")
	u.Path = p
	return u, nil
}

// Fetch asks the server at base for the history (GET /v1/history) and
// returns the answer's bytes. An error answer is returned as an error
// carrying the server's message.
func Fetch(ctx context.Context, hc *http.Client, base *url.URL, q Query) ([]byte, error) {
	if (q.Agent == "") == (q.CorrelationID == "") {
		return nil, fmt.Errorf("ask for exactly one of an agent and a correlation id")
	}
	v := url.Values{}
	if q.Agent != "" {
		v.Set("agent", q.Agent)
	} else {
		v.Set("correlation_id", q.CorrelationID)
	}
	if q.Size > 0 {
		v.Set("size", strconv.FormatUint(q.Size, 10))
	}
	u := base.JoinPath("v1", "history")
	u.RawQuery = v.Encode()
	return get(ctx, hc, u.String())
}

// FetchIndexCheckpoint reads GET /v1/history/checkpoint; found is false
// when the server serves no history index (404).
func FetchIndexCheckpoint(ctx context.Context, hc *http.Client, base *url.URL) (note []byte, found bool, err error) {
	b, err := get(ctx, hc, base.JoinPath("v1", "history", "checkpoint").String())
	if se, ok := err.(*ServerError); ok && se.Status == http.StatusNotFound {
		return nil, false, nil
	}
	return b, err == nil, err
}

// ServerError is an error answer of the server.
type ServerError struct {
	URL     string
	Status  int
	Code    string
	Message string
}

func (e *ServerError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s: %d %s: %s", e.URL, e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("%s: %d %s", e.URL, e.Status, e.Message)
}

func get(ctx context.Context, hc *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	var resp *http.Response
	if err == nil {
		resp, err = hc.Do(req)
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := httperr.ReadBody(resp.Body, MaxAnswer)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		se := &ServerError{URL: u, Status: resp.StatusCode, Message: strings.TrimSpace(string(b))}
		var e struct{ Code, Message string }
		if json.Unmarshal(b, &e) == nil && e.Code != "" {
			se.Code, se.Message = e.Code, e.Message
		}
		if len(se.Message) > 300 {
			se.Message = se.Message[:300]
		}
		return nil, se
	}
	return b, nil
}
