package sandbox

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zt-infra/ztlog/attest"
	"github.com/zt-infra/ztlog/contract/capability"
)

// fakeStat says which paths are files (everything else is a directory).
type fakeInfo struct{ dir bool }

func (f fakeInfo) Name() string       { return "" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return map[bool]fs.FileMode{true: fs.ModeDir, false: 0}[f.dir] }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return f.dir }
func (f fakeInfo) Sys() any           { return nil }

func fakeStat(files ...string) func(string) (fs.FileInfo, error) {
	return func(p string) (fs.FileInfo, error) {
		for _, f := range files {
			if f == p {
				return fakeInfo{dir: false}, nil
			}
		}
		if strings.HasPrefix(p, "/missing") {
			return nil, fs.ErrNotExist
		}
		return fakeInfo{dir: true}, nil
	}
}

func base() *capability.Manifest {
	return &capability.Manifest{V: 1, Profile: "x", Network: capability.Network{Mode: capability.NetBlocked}, Workdir: "/w",
		Limits: capability.Limits{TimeoutSeconds: 5}, Commands: []string{"echo"}}
}

func TestNonoFlags(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(m *capability.Manifest)
		opts  NonoOptions
		files []string
		want  string // flags joined by spaces
		err   string // substring of the error
	}{
		{name: "blocked", want: "--silent --no-diagnostics --block-net --workdir /w --no-rollback"},
		{name: "filesystem dirs and files", files: []string{"/etc/hosts", "/w/out.log", "/w/db"},
			edit: func(m *capability.Manifest) {
				m.Filesystem = capability.Filesystem{Read: []string{"/usr", "/etc/hosts"}, Write: []string{"/w/out", "/w/out.log"}, ReadWrite: []string{"/w/work", "/w/db"}}
			},
			want: "--silent --no-diagnostics --read /usr --read-file /etc/hosts --write /w/out --write-file /w/out.log --allow /w/work --allow-file /w/db --block-net --workdir /w --no-rollback"},
		{name: "missing path is a directory grant", edit: func(m *capability.Manifest) { m.Filesystem.Read = []string{"/missing/x"} },
			want: "--silent --no-diagnostics --read /missing/x --block-net --workdir /w --no-rollback"},
		{name: "allow list", edit: func(m *capability.Manifest) {
			m.Network = capability.Network{Mode: capability.NetAllow, Domains: []string{"api.example.com", "*.cdn.example.net"}, Ports: []int{443, 8443}}
		}, want: "--silent --no-diagnostics --allow-domain api.example.com --allow-domain *.cdn.example.net --open-port 443 --open-port 8443 --workdir /w --no-rollback"},
		{name: "unrestricted", edit: func(m *capability.Manifest) { m.Network = capability.Network{Mode: capability.NetUnrestricted} },
			want: "--silent --no-diagnostics --workdir /w --no-rollback"},
		{name: "options", opts: NonoOptions{Profile: "always-further/claude", Rollback: true, AuditIntegrity: true},
			want: "--silent --no-diagnostics --profile always-further/claude --block-net --workdir /w --rollback --no-rollback-prompt --audit-integrity"},

		{name: "blocked with domains", edit: func(m *capability.Manifest) { m.Network.Domains = []string{"a.example"} }, err: "blocked"},
		{name: "port 0", edit: func(m *capability.Manifest) {
			m.Network = capability.Network{Mode: capability.NetAllow, Ports: []int{0}}
		}, err: "network.ports[0]"},
		{name: "port 65536", edit: func(m *capability.Manifest) {
			m.Network = capability.Network{Mode: capability.NetAllow, Ports: []int{65536}}
		}, err: "network.ports[0]"},
		{name: "domain with newline", edit: func(m *capability.Manifest) {
			m.Network = capability.Network{Mode: capability.NetAllow, Domains: []string{"a.example\n--allow /"}}
		}, err: "network.domains[0]"},
		{name: "domain flag", edit: func(m *capability.Manifest) {
			m.Network = capability.Network{Mode: capability.NetAllow, Domains: []string{"--allow-net"}}
		}, err: "network.domains[0]"},
		{name: "domain malformed", edit: func(m *capability.Manifest) {
			m.Network = capability.Network{Mode: capability.NetAllow, Domains: []string{"exa_mple.com"}}
		}, err: "network.domains[0]"},
		{name: "path with NUL", edit: func(m *capability.Manifest) { m.Filesystem.Read = []string{"/usr\x00/x"} }, err: "filesystem.read[0]"},
		{name: "path with newline", edit: func(m *capability.Manifest) { m.Filesystem.ReadWrite = []string{"/w\n--allow=/"} }, err: "filesystem.read_write[0]"},
		{name: "relative path", edit: func(m *capability.Manifest) { m.Filesystem.Write = []string{"w"} }, err: "filesystem.write[0]"},
		{name: "workdir newline", edit: func(m *capability.Manifest) { m.Workdir = "/w\nx" }, err: "workdir"},
		{name: "profile flag", opts: NonoOptions{Profile: "--allow-net"}, err: "profile"},
		{name: "profile dotdot", opts: NonoOptions{Profile: "../../etc/x"}, err: "profile"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := base()
			if c.edit != nil {
				c.edit(m)
			}
			flags, err := Flags(m, c.opts, fakeStat(c.files...))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("flags %q, err %v; want an error naming %q", flags, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(flags, " "); got != c.want {
				t.Fatalf("flags\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}

// TestNonoSpawn runs a command under the real nono, when it is installed.
func TestNonoSpawn(t *testing.T) {
	if _, err := exec.LookPath("nono"); err != nil {
		t.Skip("nono is not installed (https://nono.sh); the nono broker's spawn is not tested here")
	}
	r, err := New(Config{Mode: ModeNono})
	if err != nil {
		t.Fatal(err)
	}
	m := capability.Strict(t.TempDir(), "cat", "echo")
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("s3cr3t"), 0o644)
	o, out, _ := run(t, r, m, "echo", "hi")
	if o.Outcome() != attest.OutcomeOK || out != "hi\n" || o.Sandbox.Kind != "nono" {
		t.Fatalf("echo under nono: %s %q %+v", o.Outcome(), out, o.Sandbox)
	}
	o, out, _ = run(t, r, m, "cat", secret)
	if o.Outcome() == attest.OutcomeOK || strings.Contains(out, "s3cr3t") {
		t.Fatalf("nono let cat read outside the grant: %s %q", o.Outcome(), out)
	}
}
