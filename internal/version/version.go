// Package version says what a ztlog binary was built from: the main
// module's version and the VCS revision, read from the build information
// the Go toolchain embeds (runtime/debug.ReadBuildInfo).
//
// A build without VCS stamping (-buildvcs=false, or a source tree without
// .git, as in some image builds) can set both with the linker:
//
//	go build -ldflags "-X github.com/zt-infra/ztlog/internal/version.Version=v1.2.3 \
//	    -X github.com/zt-infra/ztlog/internal/version.Revision=$(git rev-parse HEAD)" ./cmd/...
//
// A value set with -X wins over the embedded one.
package version

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// Version and Revision override the embedded module version and VCS
// revision when set at link time with -ldflags -X. Empty by default.
var (
	Version  string
	Revision string
)

// Unknown stands for a value the build did not record.
const Unknown = "unknown"

// Info is what a binary was built from.
type Info struct {
	// Module is the main module's path, github.com/zt-infra/ztlog.
	Module string `json:"module"`
	// Version is the main module's version: a release tag, a pseudo-version
	// derived from the commit (v0.0.0-20261206082511-ba7f3b9a1c2d, with
	// "+dirty" for a modified tree), or Unknown.
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, or Unknown.
	Revision string `json:"revision"`
	// Time is the commit time (RFC 3339), or "" when not recorded.
	Time string `json:"time,omitempty"`
	// Modified says the working tree had uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go"`
}

// Get returns the running binary's build information, with the -ldflags
// overrides applied.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuildInfo(bi, Version, Revision)
}

// fromBuildInfo reads bi (nil when the binary has none), then applies the
// overrides ver and rev where they are not empty.
func fromBuildInfo(bi *debug.BuildInfo, ver, rev string) Info {
	in := Info{Version: Unknown, Revision: Unknown}
	if bi != nil {
		in.Module = bi.Main.Path
		in.GoVersion = bi.GoVersion
		// "(devel)" is what a build without a version to stamp records.
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if s.Value != "" {
					in.Revision = s.Value
				}
			case "vcs.time":
				in.Time = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if ver != "" {
		in.Version = ver
	}
	if rev != "" {
		in.Revision = rev
	}
	return in
}

// String is the one line `NAME version` prints:
//
//	ztlog v0.0.0-20261206082511-ba7f3b9a1c2d (revision ba7f3b9a1c2d..., 2026-12-06T08:25:11Z, go1.26.8)
//
// with ", modified" after the revision for a build from a modified tree.
func (i Info) String(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (revision %s", name, i.Version, i.Revision)
	if i.Modified {
		b.WriteString(", modified")
	}
	if i.Time != "" {
		b.WriteString(", " + i.Time)
	}
	if i.GoVersion != "" {
		b.WriteString(", " + i.GoVersion)
	}
	b.WriteString(")")
	return b.String()
}
