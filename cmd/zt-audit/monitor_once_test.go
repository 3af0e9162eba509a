package main

import (
	"context"
	"testing"
)

// zt-audit monitor --once against a log whose checkpoint cannot be read
// (here: an empty log directory) verified nothing: exit 2 (unusable input),
// not 0, so a cron job or CI gate does not see success for a log it never
// read.
func TestMonitorOnceUnreadableLogExitsTwo(t *testing.T) {
	k := newLogKey(t, "example.com/zt-audit-monitor-once")
	empty := t.TempDir() // a directory with no checkpoint
	err := runMonitor(context.Background(), []string{"--log", empty, "--policy", k.policy, "--state", t.TempDir(), "--once"})
	if code := exitCode(err); code != 2 {
		t.Fatalf("monitor --once on a log whose checkpoint cannot be read: exit %d (err %v), want 2 (unusable input)", code, err)
	}
}
