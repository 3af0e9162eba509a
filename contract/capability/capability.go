// Package capability is the capability manifest: the least privilege an
// approved action runs with — filesystem paths it may read, write or both,
// network (blocked, an allow list of domains and ports, or unrestricted),
// environment variables passed, working directory, time and memory limits,
// and the commands it may run. The format and its digest are specified in
// manifest.md next to this file; vectors are in testdata/capabilities.
//
// The manifest's digest is part of the action digest (so a receipt names the
// manifest it was issued for), of the runtime-context attestation and of the
// decision entry; brokers enforce exactly the manifest they were handed and
// refuse work whose manifest digest is not the one approved.
package capability

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/zt-infra/ztlog/internal/jcs"
	"github.com/zt-infra/ztlog/internal/text"

	"github.com/go-json-experiment/json"
)

// Version is the manifest version this package reads and writes.
const Version = 1

// MaxSize is the largest manifest accepted, in bytes of JSON.
const MaxSize = 16 << 10

// Network modes.
const (
	// NetBlocked: no network at all (a network namespace of its own).
	NetBlocked = "blocked"
	// NetAllow: only the listed domains and TCP ports.
	NetAllow = "allow"
	// NetUnrestricted: the host's network, unfiltered.
	NetUnrestricted = "unrestricted"
)

// ProfileStrict is the one profile name whose meaning is checked (see
// manifest.md, "The strict profile").
const ProfileStrict = "strict"

// Manifest is a capability manifest.
type Manifest struct {
	// V is the manifest version, 1.
	V int `json:"v"`
	// Profile names the manifest; "strict" is checked to be strict.
	Profile    string     `json:"profile"`
	Filesystem Filesystem `json:"filesystem"`
	Network    Network    `json:"network"`
	// Env lists the names of environment variables passed from the
	// broker's environment; nothing else is passed.
	Env []string `json:"env,omitempty"`
	// Workdir is the working directory (absolute). It is not granted by
	// itself: grant it in Filesystem.
	Workdir string `json:"workdir"`
	Limits  Limits `json:"limits"`
	// Commands is the allow list: bare names (resolved in the PATH passed)
	// or absolute paths.
	Commands []string `json:"commands"`
	// Outputs are files, relative to Workdir, whose digests the broker
	// reports after the run.
	Outputs []string `json:"outputs,omitempty"`
}

// Filesystem lists absolute paths by access.
type Filesystem struct {
	// Read: read files, list directories, execute.
	Read []string `json:"read,omitempty"`
	// Write: create, write and remove, without reading.
	Write []string `json:"write,omitempty"`
	// ReadWrite: both.
	ReadWrite []string `json:"read_write,omitempty"`
}

// Network is the network grant.
type Network struct {
	Mode string `json:"mode"`
	// Domains (mode allow): host names, or "*.name" for its subdomains.
	Domains []string `json:"domains,omitempty"`
	// Ports (mode allow): TCP ports that may be connected to.
	Ports []int `json:"ports,omitempty"`
}

// Limits bound the run. TimeoutSeconds is required; the others are
// optional (0 = not limited by the manifest).
type Limits struct {
	TimeoutSeconds int   `json:"timeout_seconds"`
	MemoryBytes    int64 `json:"memory_bytes,omitempty"`
	CPUSeconds     int   `json:"cpu_seconds,omitempty"`
	Processes      int   `json:"processes,omitempty"`
	OpenFiles      int   `json:"open_files,omitempty"`
	FileSizeBytes  int64 `json:"file_size_bytes,omitempty"`
}

// ErrInvalid: the manifest is malformed or inconsistent. Every error of
// Parse and Validate is an *Error, which wraps it.
var ErrInvalid = errors.New("capability manifest invalid")

// Error names the field of the manifest that is wrong ("manifest" for the
// document as a whole) and why.
type Error struct {
	Field  string
	Reason string
}

func (e *Error) Error() string { return ErrInvalid.Error() + ": " + e.Field + ": " + e.Reason }
func (e *Error) Unwrap() error { return ErrInvalid }

func invalid(field, format string, a ...any) error {
	return &Error{Field: field, Reason: fmt.Sprintf(format, a...)}
}

// Parse reads a manifest strictly (one JSON object, no unknown or duplicate
// members, at most MaxSize bytes) and validates it.
func Parse(b []byte) (*Manifest, error) {
	if len(b) > MaxSize {
		return nil, invalid("manifest", "%d bytes, the limit is %d", len(b), MaxSize)
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, invalid("manifest", "not a JSON object")
	}
	var m Manifest
	if err := json.Unmarshal(b, &m, json.RejectUnknownMembers(true)); err != nil {
		return nil, invalid("manifest", "%v", err)
	}
	if err := checkPresent(b, &m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// checkPresent refuses what the decoded struct cannot tell from an
// omission: a missing "filesystem" (required, manifest.md and the schema;
// "filesystem":{} grants nothing) and an optional limit given as 0 (each
// is 1 or more, or omitted). b has already decoded strictly into m.
func checkPresent(b []byte, m *Manifest) error {
	var members struct {
		Filesystem stdjson.RawMessage            `json:"filesystem"`
		Limits     map[string]stdjson.RawMessage `json:"limits"`
	}
	if err := stdjson.Unmarshal(b, &members); err != nil {
		return invalid("manifest", "%v", err)
	}
	if members.Filesystem == nil {
		return invalid("filesystem", "required: the paths the work may use (\"filesystem\":{} grants none)")
	}
	for _, l := range []struct {
		name string
		v    int64
	}{{"memory_bytes", m.Limits.MemoryBytes}, {"cpu_seconds", int64(m.Limits.CPUSeconds)}, {"processes", int64(m.Limits.Processes)},
		{"open_files", int64(m.Limits.OpenFiles)}, {"file_size_bytes", m.Limits.FileSizeBytes}} {
		if _, given := members.Limits[l.name]; given && l.v == 0 {
			return invalid("limits."+l.name, "0 is not a limit: give 1 or more, or omit it for no limit")
		}
	}
	return nil
}

// Limits on sizes.
const (
	maxPath  = 4096
	maxList  = 64
	maxName  = 64
	maxLimit = 86400
)

var (
	profileRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	envRE     = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	labelRE   = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// CheckPath reports why p is not an absolute, clean path without control
// characters (NUL, newline, ...), or nil.
func CheckPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > maxPath:
		return fmt.Errorf("longer than %d bytes", maxPath)
	case !utf8.ValidString(p):
		return errors.New("not UTF-8")
	case strings.IndexFunc(p, unicode.IsControl) >= 0:
		return errors.New("contains a control character (NUL, newline, ...)")
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not absolute", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not clean (want %q)", p, path.Clean(p))
	}
	return nil
}

// CheckDomain reports why d is not a well-formed domain (lower-case LDH
// labels, at least two, at most 253 bytes, optionally "*." first), or nil.
func CheckDomain(d string) error {
	name, wild := strings.CutPrefix(d, "*.")
	if len(d) == 0 || len(d) > 253 {
		return errors.New("want 1 to 253 bytes")
	}
	labels := strings.Split(name, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%q is not a fully qualified domain (at least two labels)", d)
	}
	for _, l := range labels {
		if !labelRE.MatchString(l) {
			return fmt.Errorf("%q: label %q is not lower-case letters, digits and inner hyphens (1-63)", d, l)
		}
	}
	if !wild && strings.Contains(d, "*") {
		return fmt.Errorf("%q: a wildcard is only allowed as the first label (*.example.com)", d)
	}
	if strings.Trim(labels[len(labels)-1], "0123456789") == "" {
		return fmt.Errorf("%q looks like an IP address; name domains", d)
	}
	return nil
}

// Validate checks every field and their consistency.
func (m *Manifest) Validate() error {
	if m.V != Version {
		return invalid("v", "version %d, this reader knows %d", m.V, Version)
	}
	if len(m.Profile) > maxName || !profileRE.MatchString(m.Profile) {
		return invalid("profile", "want 1 to %d of a-z 0-9 . _ - (starting with a letter or digit), got %q", maxName, text.Cut(m.Profile, 80))
	}
	seen := map[string]string{}
	for _, l := range []struct {
		field string
		paths []string
	}{{"filesystem.read", m.Filesystem.Read}, {"filesystem.write", m.Filesystem.Write}, {"filesystem.read_write", m.Filesystem.ReadWrite}} {
		if len(l.paths) > maxList {
			return invalid(l.field, "more than %d paths", maxList)
		}
		for i, p := range l.paths {
			f := fmt.Sprintf("%s[%d]", l.field, i)
			if err := CheckPath(p); err != nil {
				return invalid(f, "%v", err)
			}
			if prev, dup := seen[p]; dup {
				return invalid(f, "%q is already granted in %s; grant each path once", p, prev)
			}
			seen[p] = l.field
		}
	}
	if err := m.Network.validate(); err != nil {
		return err
	}
	if len(m.Env) > maxList {
		return invalid("env", "more than %d variables", maxList)
	}
	envSeen := map[string]bool{}
	for i, e := range m.Env {
		if len(e) > 256 || !envRE.MatchString(e) {
			return invalid(fmt.Sprintf("env[%d]", i), "%q is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", text.Cut(e, 80))
		}
		if envSeen[e] {
			return invalid(fmt.Sprintf("env[%d]", i), "%s is listed twice", e)
		}
		envSeen[e] = true
	}
	if err := CheckPath(m.Workdir); err != nil {
		return invalid("workdir", "%v", err)
	}
	if err := m.Limits.validate(); err != nil {
		return err
	}
	if len(m.Commands) == 0 {
		return invalid("commands", "the allow list is empty; name the commands the work may run")
	}
	if len(m.Commands) > maxList {
		return invalid("commands", "more than %d commands", maxList)
	}
	cmdSeen := map[string]bool{}
	for i, c := range m.Commands {
		f := fmt.Sprintf("commands[%d]", i)
		if strings.Contains(c, "/") {
			if err := CheckPath(c); err != nil {
				return invalid(f, "%v (a command is a bare name or an absolute path)", err)
			}
		} else if c == "" || len(c) > 256 || c == "." || c == ".." || strings.IndexFunc(c, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }) >= 0 || !utf8.ValidString(c) {
			return invalid(f, "%q is not a command name", text.Cut(c, 80))
		}
		if cmdSeen[c] {
			return invalid(f, "%q is listed twice", c)
		}
		cmdSeen[c] = true
	}
	if len(m.Outputs) > maxList {
		return invalid("outputs", "more than %d files", maxList)
	}
	outSeen := map[string]bool{}
	for i, o := range m.Outputs {
		f := fmt.Sprintf("outputs[%d]", i)
		if err := CheckPath("/" + o); err != nil || o == "" || strings.HasPrefix(o, "/") || o == ".." || strings.HasPrefix(o, "../") {
			return invalid(f, "%q: want a clean path relative to workdir, inside it", text.Cut(o, 80))
		}
		if outSeen[o] {
			return invalid(f, "%q is listed twice", o)
		}
		outSeen[o] = true
	}
	if m.Profile == ProfileStrict {
		if err := m.checkStrict(); err != nil {
			return err
		}
	}
	return nil
}

func (n *Network) validate() error {
	switch n.Mode {
	case NetBlocked, NetUnrestricted:
		if len(n.Domains) > 0 || len(n.Ports) > 0 {
			return invalid("network", "mode %s takes no domains or ports (a blocked network cannot allow domains); use mode allow", n.Mode)
		}
		return nil
	case NetAllow:
	default:
		return invalid("network.mode", "want blocked, allow or unrestricted, got %q", text.Cut(n.Mode, 40))
	}
	if len(n.Domains) == 0 && len(n.Ports) == 0 {
		return invalid("network", "mode allow needs at least one domain or port")
	}
	if len(n.Domains) > maxList || len(n.Ports) > maxList {
		return invalid("network", "more than %d domains or ports", maxList)
	}
	seen := map[string]bool{}
	for i, d := range n.Domains {
		if err := CheckDomain(d); err != nil {
			return invalid(fmt.Sprintf("network.domains[%d]", i), "%v", err)
		}
		if seen[d] {
			return invalid(fmt.Sprintf("network.domains[%d]", i), "%s is listed twice", d)
		}
		seen[d] = true
	}
	ports := map[int]bool{}
	for i, p := range n.Ports {
		if p < 1 || p > 65535 {
			return invalid(fmt.Sprintf("network.ports[%d]", i), "%d is not a port (1-65535)", p)
		}
		if ports[p] {
			return invalid(fmt.Sprintf("network.ports[%d]", i), "%d is listed twice", p)
		}
		ports[p] = true
	}
	return nil
}

func (l *Limits) validate() error {
	if l.TimeoutSeconds < 1 || l.TimeoutSeconds > maxLimit {
		return invalid("limits.timeout_seconds", "want 1 to %d, got %d", maxLimit, l.TimeoutSeconds)
	}
	for _, c := range []struct {
		field    string
		v, lo, h int64
	}{
		{"limits.memory_bytes", l.MemoryBytes, 1 << 20, 1 << 40},
		{"limits.cpu_seconds", int64(l.CPUSeconds), 1, maxLimit},
		{"limits.processes", int64(l.Processes), 1, 1 << 16},
		{"limits.open_files", int64(l.OpenFiles), 16, 1 << 20},
		{"limits.file_size_bytes", l.FileSizeBytes, 1, 1 << 40},
	} {
		if c.v != 0 && (c.v < c.lo || c.v > c.h) {
			return invalid(c.field, "want %d to %d (or omit it), got %d", c.lo, c.h, c.v)
		}
	}
	return nil
}

// StrictTimeout is the longest timeout of a strict manifest.
const StrictTimeout = 300

// checkStrict: network blocked; nothing writable outside workdir; memory
// and process limits set; timeout at most StrictTimeout.
func (m *Manifest) checkStrict() error {
	if m.Network.Mode != NetBlocked {
		return invalid("profile", "strict needs network mode blocked, got %s", m.Network.Mode)
	}
	for _, p := range append(append([]string{}, m.Filesystem.Write...), m.Filesystem.ReadWrite...) {
		if !Within(p, m.Workdir) {
			return invalid("profile", "strict grants write access only inside workdir %s, not %s", m.Workdir, p)
		}
	}
	if m.Limits.MemoryBytes == 0 || m.Limits.Processes == 0 {
		return invalid("profile", "strict needs limits.memory_bytes and limits.processes")
	}
	if m.Limits.TimeoutSeconds > StrictTimeout {
		return invalid("profile", "strict needs limits.timeout_seconds of at most %d", StrictTimeout)
	}
	return nil
}

// Within reports whether path p is dir or inside it (both clean, absolute).
func Within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Canonical is the manifest in its canonical form: empty optional members
// omitted, every list sorted, RFC 8785 (JCS) serialization. The digest is
// over these bytes, so member order, list order and formatting do not
// change it.
func (m *Manifest) Canonical() ([]byte, error) {
	c := *m
	c.Filesystem.Read = sortedStrings(m.Filesystem.Read)
	c.Filesystem.Write = sortedStrings(m.Filesystem.Write)
	c.Filesystem.ReadWrite = sortedStrings(m.Filesystem.ReadWrite)
	c.Network.Domains = sortedStrings(m.Network.Domains)
	if len(m.Network.Ports) > 0 {
		c.Network.Ports = append([]int(nil), m.Network.Ports...)
		sort.Ints(c.Network.Ports)
	}
	c.Env = sortedStrings(m.Env)
	c.Commands = sortedStrings(m.Commands)
	c.Outputs = sortedStrings(m.Outputs)
	var buf bytes.Buffer
	enc := stdjson.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, err
	}
	return jcs.Canonicalize(buf.Bytes())
}

// Digest is "sha256:" and the hex SHA-256 of the canonical form.
func (m *Manifest) Digest() (string, error) {
	b, err := m.Canonical()
	if err != nil {
		return "", err
	}
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:]), nil
}

func sortedStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// SystemReadPaths are the directories and files ordinary dynamically linked
// programs need to start (loader, libraries, binaries); Strict grants them
// read access.
var SystemReadPaths = []string{"/bin", "/etc/ld.so.cache", "/lib", "/lib64", "/sbin", "/usr"}

// Strict returns a strict manifest: read access to SystemReadPaths,
// read-write access to workdir only, network blocked, PATH passed, 30 s,
// 512 MiB, 64 processes, the given commands.
func Strict(workdir string, commands ...string) *Manifest {
	return &Manifest{
		V: Version, Profile: ProfileStrict,
		Filesystem: Filesystem{Read: append([]string(nil), SystemReadPaths...), ReadWrite: []string{workdir}},
		Network:    Network{Mode: NetBlocked},
		Env:        []string{"PATH"},
		Workdir:    workdir,
		Limits:     Limits{TimeoutSeconds: 30, MemoryBytes: 512 << 20, Processes: 64, OpenFiles: 256},
		Commands:   commands,
	}
}
