package broker

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/zt-infra/ztlog/internal/httperr"
	"github.com/zt-infra/ztlog/internal/jsonx"
	"github.com/zt-infra/ztlog/internal/text"

	"github.com/spiffe/go-spiffe/v2/bundle/x509bundle"
	"github.com/spiffe/go-spiffe/v2/spiffeid"
	"github.com/spiffe/go-spiffe/v2/spiffetls/tlsconfig"
	"github.com/spiffe/go-spiffe/v2/svid/x509svid"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/api"
)

// Limits of the work API.
const (
	// MaxWorkBody is the largest POST /v1/work body.
	MaxWorkBody = 2 << 20
	// MaxOutput is how much of stdout and of stderr a WorkResponse
	// returns (the digests cover everything).
	MaxOutput = 1 << 20
)

// WorkRequest is the body of POST /v1/work (broker.md).
type WorkRequest struct {
	Receipt      string          `json:"receipt"`
	Action       string          `json:"action"`
	Resource     string          `json:"resource"`
	Argv         []string        `json:"argv"`
	Capabilities json.RawMessage `json:"capabilities"`
	// Stdin is the command's input, standard base64 (optional).
	Stdin string `json:"stdin,omitempty"`
}

// WorkResponse answers work that was accepted (HTTP 200), whatever its
// outcome (broker.md).
type WorkResponse struct {
	Outcome string                `json:"outcome"`
	Exit    *attest.Exit          `json:"exit,omitempty"`
	Error   *attest.ErrorInfo     `json:"error,omitempty"`
	Sandbox attest.SandboxApplied `json:"sandbox"`
	// Stdout and Stderr: standard base64 of at most MaxOutput bytes each.
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated,omitempty"`
	StderrTruncated bool   `json:"stderr_truncated,omitempty"`
	// Statement is the signed broker-result envelope, Chain its signer.
	Statement json.RawMessage `json:"statement,omitempty"`
	Chain     []string        `json:"chain,omitempty"`
	// Result is the committed result entry; ResultError says why there is
	// none.
	Result      *api.ResultResponse `json:"result,omitempty"`
	ResultError string              `json:"result_error,omitempty"`
	// DecisionIndex is the log index of the decision honoured.
	DecisionIndex uint64 `json:"decision_index"`
}

// Server serves the work API of a broker: POST /v1/work over mutual TLS,
// the caller being the agent's X.509-SVID.
type Server struct {
	Broker *Broker
	// MaxConcurrent bounds work running at once (default 4); more is 503.
	MaxConcurrent int
	sem           chan struct{}
}

// Handler is the HTTP handler: POST /v1/work, GET /healthz.
func (s *Server) Handler() http.Handler {
	n := s.MaxConcurrent
	if n <= 0 {
		n = 4
	}
	s.sem = make(chan struct{}, n)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/work", s.work)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	return mux
}

func (s *Server) work(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		httperr.WriteError(w, http.StatusUnauthorized, &httperr.Error{Code: "unauthenticated",
			Message: "present the agent's X.509-SVID (mutual TLS)"})
		return
	}
	caller, err := x509svid.IDFromCert(r.TLS.PeerCertificates[0])
	if err != nil {
		httperr.WriteError(w, http.StatusUnauthorized, &httperr.Error{Code: "invalid_identity", Message: err.Error()})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWorkBody))
	if err != nil {
		httperr.WriteError(w, http.StatusRequestEntityTooLarge, &httperr.Error{Code: api.CodeTooLarge,
			Message: fmt.Sprintf("work request larger than %d bytes or unreadable: %v", MaxWorkBody, err)})
		return
	}
	req, stdin, e := DecodeWorkRequest(body)
	if e != nil {
		httperr.WriteError(w, http.StatusBadRequest, e)
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	default:
		w.Header().Set("Retry-After", "1")
		httperr.WriteError(w, http.StatusServiceUnavailable, &httperr.Error{Code: "busy",
			Message: "the broker is running as much work as it is allowed to; the receipt was not used — retry"})
		return
	}
	out, errOut := &capped{max: MaxOutput}, &capped{max: MaxOutput}
	rep, err := s.Broker.Handle(r.Context(), &Work{Receipt: req.Receipt, Action: req.Action, Resource: req.Resource,
		Argv: req.Argv, Capabilities: req.Capabilities, Caller: caller.String(),
		Stdin: bytes.NewReader(stdin), Stdout: out, Stderr: errOut})
	if ref, ok := AsRefused(err); ok {
		status := http.StatusForbidden
		if ref.Code == RefuseInternal {
			status = http.StatusServiceUnavailable
		}
		httperr.WriteError(w, status, &httperr.Error{Code: ref.Code, Message: ref.Message})
		return
	}
	if err != nil {
		httperr.WriteError(w, http.StatusInternalServerError, &httperr.Error{Code: "internal_error", Message: err.Error()})
		return
	}
	resp := WorkResponse{Outcome: rep.Predicate.Outcome, Exit: rep.Predicate.Exit, Error: rep.Predicate.Error, Sandbox: rep.Predicate.Sandbox,
		Stdout: base64.StdEncoding.EncodeToString(out.buf.Bytes()), Stderr: base64.StdEncoding.EncodeToString(errOut.buf.Bytes()),
		StdoutTruncated: out.truncated, StderrTruncated: errOut.truncated, Result: rep.Result, DecisionIndex: rep.Claims.LogIndex}
	if rep.Statement != nil {
		resp.Statement, resp.Chain = rep.Statement.Envelope, rep.Statement.ChainBase64()
	}
	if rep.ReportError != nil {
		resp.ResultError = rep.ReportError.Error()
	}
	w.Header().Set("Cache-Control", "no-store")
	httperr.WriteJSON(w, http.StatusOK, resp)
}

// DecodeWorkRequest reads a POST /v1/work body: one JSON object, no
// unknown members, a receipt, an action, a resource, a non-empty argv of
// strings without NUL, a manifest object, stdin in standard base64. The
// broker's checks (Broker.Check) judge the contents.
func DecodeWorkRequest(body []byte) (*WorkRequest, []byte, *httperr.Error) {
	var req WorkRequest
	if err := jsonx.DecodeStrict(body, &req); err != nil {
		return nil, nil, &httperr.Error{Code: api.CodeMalformedJSON, Message: "work request: " + err.Error()}
	}
	for _, f := range []struct{ name, v string }{{"receipt", req.Receipt}, {"action", req.Action}, {"resource", req.Resource}} {
		if f.v == "" {
			return nil, nil, &httperr.Error{Code: api.CodeMissingField, Field: f.name, Message: f.name + " is required"}
		}
	}
	if len(req.Argv) == 0 || len(req.Argv) > 4096 {
		return nil, nil, &httperr.Error{Code: api.CodeInvalidField, Field: "argv", Message: "argv: want 1 to 4096 arguments"}
	}
	for i, a := range req.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, nil, &httperr.Error{Code: api.CodeInvalidField, Field: fmt.Sprintf("argv[%d]", i), Message: "an argument contains NUL"}
		}
	}
	if t := bytes.TrimSpace(req.Capabilities); len(t) == 0 || t[0] != '{' {
		return nil, nil, &httperr.Error{Code: api.CodeInvalidField, Field: "capabilities", Message: "capabilities: want the capability manifest (an object)"}
	}
	stdin, err := base64.StdEncoding.DecodeString(req.Stdin)
	if err != nil {
		return nil, nil, &httperr.Error{Code: api.CodeInvalidField, Field: "stdin", Message: "stdin: not standard base64"}
	}
	return &req, stdin, nil
}

// capped keeps the first max bytes written.
type capped struct {
	max       int
	buf       bytes.Buffer
	truncated bool
}

func (c *capped) Write(b []byte) (int, error) {
	if room := c.max - c.buf.Len(); room < len(b) {
		c.truncated = true
		if room > 0 {
			c.buf.Write(b[:room])
		}
		return len(b), nil
	}
	return c.buf.Write(b)
}

// Client hands work to a `zt broker` over mutual TLS.
type Client struct {
	HTTP *http.Client
	URL  string
}

// Submit posts work. A refusal comes back as a *Refused; any answer that
// is not a well-formed WorkResponse is an error.
func (c *Client) Submit(ctx context.Context, req *WorkRequest) (*WorkResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(c.URL, "/")+"/v1/work", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.HTTP.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := httperr.ReadBody(resp.Body, 4*MaxOutput)
	if err != nil {
		return nil, fmt.Errorf("broker: POST %s: reading the answer: %w", hr.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e httperr.Error
		if json.Unmarshal(raw, &e) == nil && e.Code != "" {
			if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusServiceUnavailable {
				return nil, &Refused{Code: e.Code, Message: e.Message}
			}
			return nil, fmt.Errorf("broker: HTTP %d %s: %s", resp.StatusCode, e.Code, e.Message)
		}
		return nil, fmt.Errorf("broker: HTTP %d: %s", resp.StatusCode, text.Cut(string(raw), 200))
	}
	var wr WorkResponse
	if err := json.Unmarshal(raw, &wr); err != nil {
		return nil, fmt.Errorf("broker: the answer is not a work response: %w", err)
	}
	switch wr.Outcome {
	case attest.OutcomeOK, attest.OutcomeFailed, attest.OutcomeError:
	default:
		return nil, errors.New("broker: the answer has no outcome")
	}
	return &wr, nil
}

// ServerTLS is the TLS configuration of a broker's work API: the broker's
// own X.509-SVID, and a client X.509-SVID required from a member of the
// trust domain (the agent).
func ServerTLS(svid x509svid.Source, bundles x509bundle.Source, td spiffeid.TrustDomain) *tls.Config {
	return tlsconfig.MTLSServerConfig(svid, bundles, tlsconfig.AuthorizeMemberOf(td))
}
