package sandbox

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/contract/capability"
)

// BenchmarkRun measures what containment costs a short command (`true`):
// a plain fork/exec (the baseline), the helper alone (unsafe), Landlock,
// Landlock with a network namespace by CLONE_NEWNET, and by bubblewrap —
// milliseconds per run, each beside the baseline of the same run.
func BenchmarkRun(b *testing.B) {
	const n = 30
	for b.Loop() {
		start := time.Now()
		for range n {
			if err := exec.Command("/usr/bin/true").Run(); err != nil {
				b.Fatal(err)
			}
		}
		base := time.Since(start) / n
		b.ReportMetric(float64(base.Microseconds())/1000, "plain-ms/run")
		for _, v := range []struct {
			name string
			cfg  Config
			net  string
		}{
			{"unsafe", Config{Mode: ModeUnsafe}, capability.NetUnrestricted},
			{"landlock", Config{Mode: ModeLocal, Bwrap: "none"}, capability.NetUnrestricted},
			{"landlock+netns", Config{Mode: ModeLocal, Bwrap: "none"}, capability.NetBlocked},
			{"landlock+bwrap", Config{Mode: ModeLocal}, capability.NetBlocked},
		} {
			r, err := New(v.cfg)
			if err != nil {
				b.Logf("%s: %v", v.name, err)
				continue
			}
			m := capability.Strict(b.TempDir(), "true")
			if v.net != capability.NetBlocked {
				m.Profile, m.Network = "open", capability.Network{Mode: v.net}
			}
			start := time.Now()
			for range n {
				o, err := r.Run(context.Background(), &Spec{Manifest: m, Argv: []string{"true"}})
				if err != nil || o.Outcome() != "ok" {
					b.Fatalf("%s: %v %+v", v.name, err, o)
				}
			}
			per := time.Since(start) / n
			b.ReportMetric(float64(per.Microseconds())/1000, v.name+"-ms/run")
			b.ReportMetric(float64(per)/float64(base), v.name+"-x-plain")
		}
	}
}
