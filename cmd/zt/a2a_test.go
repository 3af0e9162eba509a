package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/entry"
	"github.com/zt-infra/ztlog/internal/testutil/devproc"
)

const a2aTestdata = "../../contract/gateway/a2a/testdata"

// a2aNode returns node, or skips naming what is missing.
func a2aNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (needed for the @a2a-js/sdk server and client)")
	}
	for _, pkg := range []string{"@a2a-js/sdk", "express"} {
		if _, err := os.Stat(filepath.Join("/opt/ztlog-tools/node_modules", pkg, "package.json")); err != nil {
			t.Skipf("%s is not installed under /opt/ztlog-tools (.ci/deps.d/a2a.sh installs it)", pkg)
		}
	}
	return node
}

// zt a2a between the @a2a-js/sdk client and server, deciding with a real
// ztlog dev: the echo skill is allowed (forwarded, decision and linked
// result committed), transfer is denied (never reaches the server, deny
// committed).
func TestA2AGateAgainstZtlogDev(t *testing.T) {
	node := a2aNode(t)
	d := startDev(t)
	record := filepath.Join(t.TempDir(), "received.jsonl")
	srv := exec.Command(node, filepath.Join(a2aTestdata, "server.cjs"), record)
	srv.Env = append(os.Environ(), "NODE_PATH=/opt/ztlog-tools/node_modules")
	out, _ := srv.StdoutPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Kill(); srv.Wait() })
	sc := bufio.NewScanner(out)
	var upstream string
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
			upstream = "http://127.0.0.1:" + p
			break
		}
	}
	if upstream == "" {
		t.Fatal("the A2A server did not start")
	}
	addr := devproc.FreeAddr(t)
	var gateErr bytes.Buffer
	gate := exec.Command(ztBin, "a2a", "--upstream", upstream, "--server", d.url(), "--svid", d.svid("agent"),
		"--broker-svid", d.svid("broker"), "--listen", addr)
	gate.Stderr = &gateErr
	if err := gate.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gate.Process.Kill(); gate.Wait() })
	base := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get(base + "/.well-known/agent-card.json")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zt a2a did not start: %v\n%s", err, gateErr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	client := func(skill, text string) (ok bool, answer string) {
		cmd := exec.Command(node, filepath.Join(a2aTestdata, "client.cjs"), base, "send", skill, text)
		cmd.Env = append(os.Environ(), "NODE_PATH=/opt/ztlog-tools/node_modules")
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		var r struct {
			OK          bool
			Text, Error string
		}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("client output %q", b)
		}
		return r.OK, r.Text + r.Error
	}
	if ok, answer := client("echo", "hi from the dev test"); !ok || answer != "echo: hi from the dev test" {
		t.Errorf("echo: ok=%v %q\n%s", ok, answer, gateErr.String())
	}
	if ok, answer := client("transfer", "pay mallory"); ok || !strings.Contains(answer, "denied") {
		t.Errorf("transfer: ok=%v %q", ok, answer)
	}
	got, _ := os.ReadFile(record)
	if n := strings.Count(string(got), "\n"); n != 1 {
		t.Errorf("the agent received %d messages, want 1 (the echo): %s", n, got)
	}
	if strings.Contains(string(got), "mallory") {
		t.Errorf("the denied message reached the agent: %s", got)
	}
	// The log: allow, its result, the deny (after the dev setup entries),
	// once a checkpoint covers them.
	var allow, deny, result int
	var allowIndex uint64
	var resultLinks []uint64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		allow, deny, result, resultLinks = 0, 0, 0, nil
		for i := uint64(0); ; i++ {
			resp, err := http.Get("http://" + d.addr + "/v1/entries/" + itoa(i))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				break
			}
			switch e := readEntry(t, d, i).(type) {
			case *entry.Decision:
				if e.Action == "a2a.echo-agent.echo" && e.Effect == entry.Allow {
					allow++
					allowIndex = i
				}
				if e.Action == "a2a.echo-agent.transfer" && e.Effect == entry.Deny {
					deny++
				}
			case *entry.Result:
				result++
				resultLinks = append(resultLinks, e.DecisionIndex)
			}
		}
		if (allow > 0 && deny > 0 && result > 0) || time.Now().After(deadline) {
			break
		}
	}
	if allow != 1 {
		t.Errorf("%d committed allows of a2a.echo-agent.echo, want 1", allow)
	}
	if deny != 1 {
		t.Errorf("%d committed denies of a2a.echo-agent.transfer, want 1", deny)
	}
	if result != 1 || resultLinks[0] != allowIndex {
		t.Errorf("results linked to %v, want one linked to %d", resultLinks, allowIndex)
	}
}

func itoa(i uint64) string { return strconv.FormatUint(i, 10) }
