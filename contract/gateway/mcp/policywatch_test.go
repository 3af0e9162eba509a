package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/zt-infra/ztlog/contract/gateway/mcp"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

// The policy watcher (filter_tools "policy"): connected clients are told
// (notifications/tools/list_changed) when the policy in force, changed at
// run time the way an operator changes it (ztlog dev reloads its policy
// files when they change), hides other tools.

// allowDelete is a rule of ztlog dev's example policy data that allows the
// counting server's delete_everything, hidden by the example policy.
const allowDelete = `{"actor_prefix": "spiffe://dev.ztlog.local/agent/", "action": "mcp.tool.counting.delete_everything"},`

// policyHash is the hash of the policy in force (GET /v1/policy).
func (d *dev) policyHash(t testing.TB) string {
	t.Helper()
	resp, err := http.Get("http://" + d.Addr + "/v1/policy")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Hash string `json:"hash"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("GET /v1/policy: %v", err)
	}
	return st.Hash
}

// editPolicy replaces old by new in ztlog dev's policy data
// (dev/policy/opa/data.json), which it reloads when the file changes, and
// returns the hash of the new policy once it is in force.
func (d *dev) editPolicy(t testing.TB, old, new string) string {
	t.Helper()
	before := d.policyHash(t)
	path := d.file("policy/opa/data.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	var now string
	waitFor(t, 20*time.Second, "the edited policy in force", func() bool {
		now = d.policyHash(t)
		return now != before
	})
	return now
}

// waitFor polls ok until it holds, failing the test after within.
func waitFor(t testing.TB, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// listChanges counts the tools/list_changed notifications a client gets.
type listChanges struct {
	n    atomic.Int64
	came chan struct{}
}

func newListChanges() *listChanges { return &listChanges{came: make(chan struct{}, 64)} }

func (l *listChanges) options() *sdk.ClientOptions {
	return &sdk.ClientOptions{ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
		l.n.Add(1)
		select {
		case l.came <- struct{}{}:
		default:
		}
	}}
}

func (l *listChanges) count() int64 { return l.n.Load() }

// await waits until the client got n notifications in all.
func (l *listChanges) await(t testing.TB, n int64, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for l.count() < n {
		select {
		case <-l.came:
		case <-timeout:
			t.Fatalf("the client got %d tools/list_changed within %v, want %d", l.count(), within, n)
		}
	}
}

// watchedGateway opens a gateway filtering by policy over a counting
// server, with a client that counts its list_changed notifications.
func watchedGateway(t *testing.T, d *dev, every time.Duration) (*mcp.Gateway, *sdk.ClientSession, *countingServer, *listChanges) {
	t.Helper()
	srv := newCountingServer()
	o := gatewayOptions(t, d)
	o.Mapping = policyFiltered()
	o.PolicyWatchInterval = every
	changes := newListChanges()
	g, cs := openGatewayClient(t, o, srv.transport(t), changes.options())
	if got := listNames(t, cs); !slices.Equal(got, []string{"add", "echo"}) {
		t.Fatalf("listed %v at start, want [add echo]", got)
	}
	return g, cs, srv, changes
}

// TestPolicyWatchTellsClients: an operator allows a hidden tool; within
// the watch interval, with no call made, the connected client is told the
// list changed and its next tools/list shows the tool (callable and
// allowed now). The operator takes it back: told again, hidden again.
func TestPolicyWatchTellsClients(t *testing.T) {
	d := startDev(t)
	_, cs, srv, changes := watchedGateway(t, d, mcp.MinPolicyWatchInterval)
	if n := changes.count(); n != 0 {
		t.Fatalf("%d tools/list_changed before any policy change", n)
	}

	d.editPolicy(t, `"allow": [`, `"allow": [`+allowDelete)
	changes.await(t, 1, 20*time.Second)
	if got := listNames(t, cs); !slices.Equal(got, []string{"add", "delete_everything", "echo"}) {
		t.Fatalf("after the policy allowed delete_everything the list is %v, want [add delete_everything echo]", got)
	}
	if res := call(t, cs, "delete_everything", map[string]any{"message": "allowed now"}); res.IsError {
		t.Fatalf("delete_everything, allowed now: tool error %q", textOf(res))
	}
	if n := srv.count("delete_everything"); n != 1 {
		t.Fatalf("delete_everything reached the server %d times, want 1", n)
	}

	d.editPolicy(t, allowDelete, "")
	changes.await(t, 2, 20*time.Second)
	if got := listNames(t, cs); !slices.Equal(got, []string{"add", "echo"}) {
		t.Fatalf("after the policy forbade delete_everything again the list is %v, want [add echo]", got)
	}
}

// TestDecisionUnderNewPolicyTellsClients: with a watch interval of an hour,
// a decision made through the gateway under a new policy hash makes it ask
// again at once; the policy now forbids echo, which was shown: the client
// is told, and echo is hidden.
func TestDecisionUnderNewPolicyTellsClients(t *testing.T) {
	d := startDev(t)
	g, cs, _, changes := watchedGateway(t, d, time.Hour)
	h := d.editPolicy(t, `"action": "mcp.tool.*.echo"`, `"action": "mcp.tool.*.echo-retired"`)
	if n := changes.count(); n != 0 {
		t.Fatalf("%d tools/list_changed before any call under the new policy (the watcher waits an hour)", n)
	}
	if res := call(t, cs, "add", map[string]any{"a": 1, "b": 2}); res.IsError {
		t.Fatalf("add: tool error %q", textOf(res))
	}
	changes.await(t, 1, 20*time.Second)
	if got := g.PolicyHash(); got != h {
		t.Fatalf("the gateway filters under policy %s, want the one in force, %s", got, h)
	}
	if got := listNames(t, cs); !slices.Equal(got, []string{"add"}) {
		t.Fatalf("after the policy forbade echo the list is %v, want [add]", got)
	}
}

// TestPolicyChangeHidingNothingNewIsQuiet: a new policy (another hash) that
// hides the same tools tells nobody. Then one that does hide other tools
// is told, once.
func TestPolicyChangeHidingNothingNewIsQuiet(t *testing.T) {
	d := startDev(t)
	g, cs, _, changes := watchedGateway(t, d, mcp.MinPolicyWatchInterval)
	h1 := d.editPolicy(t, `"gpt-4o"`, `"gpt-4o", "gpt-5"`)
	waitFor(t, 20*time.Second, "the gateway to ask under the new policy", func() bool { return g.PolicyHash() == h1 })
	// The check that asked under h1 is over once the count moves on.
	c0, _, _ := mcp.PolicyWatchCounts(g)
	waitFor(t, 20*time.Second, "the next check of the watcher", func() bool {
		c, _, _ := mcp.PolicyWatchCounts(g)
		return c > c0
	})
	if _, _, told := mcp.PolicyWatchCounts(g); told != 0 {
		t.Fatalf("the gateway told clients %d times of a policy change that hides nothing new, want 0", told)
	}
	if n := changes.count(); n != 0 {
		t.Fatalf("%d tools/list_changed for a policy change that hides nothing new, want 0", n)
	}

	d.editPolicy(t, `"allow": [`, `"allow": [`+allowDelete)
	changes.await(t, 1, 20*time.Second)
	if _, _, told := mcp.PolicyWatchCounts(g); told != 1 {
		t.Fatalf("the gateway told clients %d times, want 1 (the second change only)", told)
	}
	if got := listNames(t, cs); !slices.Equal(got, []string{"add", "delete_everything", "echo"}) {
		t.Fatalf("listed %v, want [add delete_everything echo]", got)
	}
}

// TestPolicyWatchOutage: ztlog stops answering (SIGSTOP). A client listing
// meanwhile sees every tool (as before: showing allows nothing); the
// watcher's failures change nothing, tell nobody, and are logged once.
// ztlog answers again (SIGCONT): the watcher finds delete_everything
// hidden again and tells the client, whose next list hides it.
func TestPolicyWatchOutage(t *testing.T) {
	d := startDev(t)
	logs := &devproc.SyncBuffer{}
	srv := newCountingServer()
	o := gatewayOptions(t, d)
	o.Mapping = policyFiltered()
	o.PolicyWatchInterval = 3 * time.Second // the first check comes after the stop
	o.Timeout = 2 * time.Second
	o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	changes := newListChanges()
	g, cs := openGatewayClient(t, o, srv.transport(t), changes.options())
	if err := d.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer d.Cmd.Process.Signal(syscall.SIGCONT)

	for i := range 2 {
		if got := listNames(t, cs); !slices.Equal(got, []string{"add", "delete_everything", "echo"}) {
			t.Fatalf("listing %d with ztlog not answering: the list is %v, want every tool", i+1, got)
		}
	}
	const unfiltered = "tools/list not filtered by policy"
	if n := strings.Count(logs.String(), unfiltered); n != 1 {
		t.Fatalf("%d log lines %q for two unfiltered listings, want 1 (rate-limited):\n%s", n, unfiltered, logs.String())
	}
	waitFor(t, 30*time.Second, "two failed checks of the watcher", func() bool {
		_, failed, _ := mcp.PolicyWatchCounts(g)
		return failed >= 2
	})
	const failure = "policy watch: the decision service did not answer"
	if n := strings.Count(logs.String(), failure); n != 1 {
		t.Fatalf("%d log lines %q for two or more failed checks, want 1 (rate-limited):\n%s", n, failure, logs.String())
	}
	if n := changes.count(); n != 0 {
		t.Fatalf("%d tools/list_changed while ztlog did not answer, want 0", n)
	}

	if err := d.Cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	changes.await(t, 1, 30*time.Second)
	if got := listNames(t, cs); !slices.Equal(got, []string{"add", "echo"}) {
		t.Fatalf("with ztlog answering again the list is %v, want [add echo]", got)
	}
}

// watchers counts the goroutines running a policy watcher whose stack
// holds every one of frames.
func watchers(frames ...string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "mcp.(*Gateway).startPolicyWatch.func") {
			continue
		}
		all := true
		for _, f := range frames {
			all = all && strings.Contains(g, f)
		}
		if all {
			count++
		}
	}
	return count
}

// TestPolicyWatchStopsOnClose: a gateway filtering by policy runs one
// watcher, which Close ends even in the middle of a check that ztlog does
// not answer (SIGSTOP); a gateway that does not filter runs none.
func TestPolicyWatchStopsOnClose(t *testing.T) {
	d := startDev(t)
	base := watchers()

	o := gatewayOptions(t, d)
	_, closeGW, err := mcp.Open(context.Background(), o, newCountingServer().transport(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := watchers() - base; n != 0 {
		t.Fatalf("a gateway without filter_tools runs %d watchers, want 0", n)
	}
	closeGW()

	o = gatewayOptions(t, d)
	o.Mapping = policyFiltered()
	o.PolicyWatchInterval = mcp.MinPolicyWatchInterval
	o.Timeout = time.Minute
	g, closeGW, err := mcp.Open(context.Background(), o, newCountingServer().transport(t))
	if err != nil {
		t.Fatal(err)
	}
	if n := watchers() - base; n != 1 {
		t.Fatalf("a gateway filtering by policy runs %d watchers, want 1", n)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer d.Cmd.Process.Signal(syscall.SIGCONT)
	// A check under way, waiting for ztlog (up to a minute): the watcher
	// is asking, and still is a moment later, the same check.
	waitFor(t, 20*time.Second, "a check of the watcher waiting for ztlog", func() bool {
		c0, _, _ := mcp.PolicyWatchCounts(g)
		if watchers("(*Gateway).askPossible") != 1 {
			return false
		}
		time.Sleep(300 * time.Millisecond)
		c1, _, _ := mcp.PolicyWatchCounts(g)
		return c1 == c0 && watchers("(*Gateway).askPossible") == 1
	})
	start := time.Now()
	closeGW()
	if took := time.Since(start); took > 20*time.Second {
		t.Fatalf("Close took %v during a check ztlog does not answer", took)
	}
	if n := watchers() - base; n != 0 {
		t.Fatalf("%d watchers still run after Close, want 0", n)
	}
}
