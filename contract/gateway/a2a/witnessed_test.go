package a2a_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/zt-infra/ztlog/contract/api"
	"github.com/zt-infra/ztlog/contract/broker"
	"github.com/zt-infra/ztlog/contract/client"
	"github.com/zt-infra/ztlog/contract/contracttest"
	"github.com/zt-infra/ztlog/contract/gateway/a2a"
	"github.com/zt-infra/ztlog/contract/receipt"
)

// witnessedDecider answers every decision with an allow whose receipt is
// witnessed, as the Go SDK reports one it accepted (it checks the
// evidence's form; the cosignatures are the broker's to verify).
type witnessedDecider struct{}

func (witnessedDecider) Decide(context.Context, client.Request) (*client.Decision, error) {
	return &client.Decision{Allow: true, Assurance: client.Witnessed,
		Receipt:  &receipt.Claims{Assurance: receipt.Witnessed},
		Response: api.ActionResponse{Decision: "allow", Log: api.LogRef{Index: 3, LeafHash: "x"}}}, nil
}

// TestWitnessedAllowIsNotForwardedWithoutTrustPolicy: the gate is the
// broker of its decisions; it holds no trust policy, so a witnessed allow
// is refused as no decision and the agent never sees the message.
func TestWitnessedAllowIsNotForwardedWithoutTrustPolicy(t *testing.T) {
	var posts atomic.Int32
	var upstream *httptest.Server
	upstream = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == a2a.CardPath {
			json.NewEncoder(w).Encode(map[string]any{"name": "Echo Agent", "url": upstream.URL + "/rpc",
				"skills": []map[string]string{{"id": "echo", "name": "echo"}}})
			return
		}
		posts.Add(1)
		w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	}))
	defer upstream.Close()
	srv := contracttest.Start(t, contracttest.Options{})
	g, err := a2a.New(context.Background(), a2a.Config{Upstream: upstream.URL, Decider: witnessedDecider{},
		Broker: srv.SVID(contracttest.BrokerID), Reporter: &broker.HTTPReporter{}})
	if err != nil {
		t.Fatal(err)
	}
	gate := httptest.NewServer(g)
	defer gate.Close()
	body := `{"jsonrpc":"2.0","id":1,"method":"message/send","params":{"message":{"role":"user","messageId":"m1",` +
		`"parts":[{"kind":"text","text":"hi"}],"metadata":{"skill":"echo"}}}}`
	resp, err := http.Post(gate.URL+"/rpc", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var answer struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		t.Fatalf("answer %q: %v", raw, err)
	}
	if answer.Error == nil {
		t.Fatalf("a witnessed allow was answered without error: %s", raw)
	}
	if answer.Error.Code != a2a.CodeNoDecision {
		t.Errorf("error code %d, want %d (no decision): %s", answer.Error.Code, a2a.CodeNoDecision, answer.Error.Message)
	}
	if !strings.Contains(answer.Error.Message, "trust policy") {
		t.Errorf("error %q does not name the missing trust policy", answer.Error.Message)
	}
	if n := posts.Load(); n != 0 {
		t.Errorf("the agent received %d requests", n)
	}
}
