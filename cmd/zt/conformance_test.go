package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// zt conformance passes against a real `ztlog dev` process: every check,
// the result checks included, in the human, JSON and JUnit reports.
func TestConformanceAgainstZtlogDev(t *testing.T) {
	d := startDev(t)
	junit := filepath.Join(t.TempDir(), "conformance.xml")
	cmd := exec.Command(ztBin, "conformance", "--target", d.url(), "--svid", d.svid("agent"),
		"--broker-svid", d.svid("broker"), "--jwt", d.svid("agent.jwt"), "--json", "--junit", junit)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		t.Errorf("zt conformance: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	var rep struct {
		Results []struct {
			ID, Status, Detail string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	if len(rep.Results) < 15 {
		t.Errorf("%d checks ran, want at least 15", len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.Status != "pass" {
			t.Errorf("%s: %s: %s", r.ID, r.Status, r.Detail)
		}
	}
	b, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var ju struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(b, &ju); err != nil || len(ju.Suites) != 1 {
		t.Fatalf("--junit: %v\n%s", err, b)
	}
	if ju.Suites[0].Tests != len(rep.Results) {
		t.Errorf("JUnit: %d tests, the JSON report %d", ju.Suites[0].Tests, len(rep.Results))
	}
	if ju.Suites[0].Failures != 0 {
		t.Errorf("JUnit: %d failures", ju.Suites[0].Failures)
	}
}

// A target that is not a conformant adapter (here: the public read API
// over plain HTTP is not the contract) fails, exit 1; usage errors exit 2.
func TestConformanceExitStatuses(t *testing.T) {
	d := startDev(t)
	for _, c := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"no target", []string{"--svid", d.svid("agent")}, 2, "needs --target and --svid"},
		{"plain http", []string{"--target", "http://" + d.addr, "--svid", d.svid("agent")}, 2, "https://"},
		{"missing svid", []string{"--target", d.url(), "--svid", d.svid("nobody")}, 2, "--svid"},
		{"unreachable", []string{"--target", "https://127.0.0.1:1", "--svid", d.svid("agent"), "--timeout", "2s"}, 1, "FAIL  ZT-WK-001"},
		{"nothing allowed", []string{"--target", d.url(), "--svid", d.svid("agent"), "--allow-action", "aws.s3.list"}, 1, "FAIL  ZT-ALLOW-001"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(ztBin, append([]string{"conformance"}, c.args...)...)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != c.code {
				t.Errorf("exit %d, want %d\n%s", code, c.code, out.String())
			}
			if !strings.Contains(out.String(), c.out) {
				t.Errorf("output lacks %q:\n%s", c.out, out.String())
			}
		})
	}
}
