package sandbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/capability"
)

// sleeping reports whether a process whose command line holds marker
// runs on the host.
func sleeping(marker string) bool {
	ds, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, d := range ds {
		if b, err := os.ReadFile(d); err == nil && strings.Contains(string(b), marker) {
			return true
		}
	}
	return false
}

// A process the command detaches from its process group (setsid) dies
// with the run at the time limit, whatever the network mode: it must not
// run on after the result says the work was stopped.
func TestTimeoutKillsDetachedProcesses(t *testing.T) {
	for _, v := range []struct {
		name string
		net  capability.Network
	}{
		{"unrestricted", capability.Network{Mode: capability.NetUnrestricted}},
		{"ports", capability.Network{Mode: capability.NetAllow, Ports: []int{443}}},
		{"blocked", capability.Network{Mode: capability.NetBlocked}},
	} {
		t.Run(v.name, func(t *testing.T) {
			r := localRunner(t, "")
			m := manifest(t, "bash")
			m.Commands = append(m.Commands, "setsid", "sleep")
			if v.net.Mode != capability.NetBlocked {
				m.Profile = "open"
			}
			m.Network = v.net
			m.Limits.TimeoutSeconds = 1
			marker := map[string]string{"unrestricted": "30.71", "ports": "30.72", "blocked": "30.73"}[v.name]
			o, _, errOut := run(t, r, m, "bash", "-c", `setsid sleep `+marker+` <&- >&- 2>&- & sleep 30`)
			if o.Exit == nil || !o.Exit.TimedOut {
				t.Fatalf("expected a timeout: %s %+v %+v %q", o.Outcome(), o.Exit, o.Error, errOut)
			}
			deadline := time.Now().Add(2 * time.Second)
			for sleeping(marker) {
				if time.Now().After(deadline) {
					t.Fatalf("sleep %s, detached by the sandboxed command, is still running after the time limit killed the run (sandbox %+v)", marker, o.Sandbox)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
