package version

import (
	"runtime/debug"
	"testing"
)

func stamped() *debug.BuildInfo {
	return &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/zt-infra/ztlog", Version: "v0.0.0-20261206082511-ba7f3b9a1c2d+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "ba7f3b9a1c2d0000000000000000000000000000"},
			{Key: "vcs.time", Value: "2026-12-06T08:25:11Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
}

func TestFromBuildInfoStamped(t *testing.T) {
	got := fromBuildInfo(stamped(), "", "")
	if got.Module != "github.com/zt-infra/ztlog" {
		t.Errorf("Module = %q", got.Module)
	}
	if got.Version != "v0.0.0-20261206082511-ba7f3b9a1c2d+dirty" {
		t.Errorf("Version = %q", got.Version)
	}
	if got.Revision != "ba7f3b9a1c2d0000000000000000000000000000" {
		t.Errorf("Revision = %q", got.Revision)
	}
	if got.Time != "2026-12-06T08:25:11Z" {
		t.Errorf("Time = %q", got.Time)
	}
	if !got.Modified {
		t.Error("Modified = false, want true")
	}
	if got.GoVersion != "go1.26.8" {
		t.Errorf("GoVersion = %q", got.GoVersion)
	}
}

func TestFromBuildInfoOverrides(t *testing.T) {
	got := fromBuildInfo(stamped(), "v1.2.3", "0123456789abcdef0123456789abcdef01234567")
	if got.Version != "v1.2.3" {
		t.Errorf("Version = %q, want the -ldflags override", got.Version)
	}
	if got.Revision != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("Revision = %q, want the -ldflags override", got.Revision)
	}
}

func TestFromBuildInfoUnstamped(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/zt-infra/ztlog", Version: "(devel)"}}
	got := fromBuildInfo(bi, "", "")
	if got.Version != Unknown {
		t.Errorf("Version = %q, want %q for (devel)", got.Version, Unknown)
	}
	if got.Revision != Unknown {
		t.Errorf("Revision = %q, want %q without vcs.revision", got.Revision, Unknown)
	}
	if got.Modified {
		t.Error("Modified = true without vcs.modified")
	}
	none := fromBuildInfo(nil, "", "")
	if none.Version != Unknown {
		t.Errorf("no build info: Version = %q, want %q", none.Version, Unknown)
	}
	if none.Revision != Unknown {
		t.Errorf("no build info: Revision = %q, want %q", none.Revision, Unknown)
	}
}

func TestString(t *testing.T) {
	got := fromBuildInfo(stamped(), "", "").String("ztlog")
	want := "ztlog v0.0.0-20261206082511-ba7f3b9a1c2d+dirty (revision ba7f3b9a1c2d0000000000000000000000000000, modified, 2026-12-06T08:25:11Z, go1.26.8)"
	if got != want {
		t.Errorf("String:\n got %s\nwant %s", got, want)
	}
	bare := Info{Version: Unknown, Revision: Unknown}.String("zt")
	if bare != "zt unknown (revision unknown)" {
		t.Errorf("bare String = %q", bare)
	}
}

// The test binary itself has build information: Get must not panic and
// must fill the toolchain.
func TestGetRunningBinary(t *testing.T) {
	got := Get()
	if got.GoVersion == "" {
		t.Error("GoVersion empty for the running test binary")
	}
}
