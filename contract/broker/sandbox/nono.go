package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/zt-infra/ztlog/contract/capability"
)

// NonoOptions are the nono broker's own settings (not part of the manifest,
// but reported in the result's applied rules).
type NonoOptions struct {
	// Profile is a nono profile to start from (--profile). A profile can
	// grant more than the manifest; leave it empty unless the operator
	// vetted it.
	Profile string
	// Rollback takes atomic snapshots of writable paths (--rollback);
	// otherwise --no-rollback.
	Rollback bool
	// AuditIntegrity adds filesystem-state hashing to nono's audit trail
	// (--audit-integrity).
	AuditIntegrity bool
}

var nonoProfileRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$`)

func (o NonoOptions) validate() error {
	if o.Profile != "" && (!nonoProfileRE.MatchString(o.Profile) || strings.Contains(o.Profile, "..")) {
		return fmt.Errorf("sandbox: nono profile %q: want a name of letters, digits and . _ / - (no ..)", truncate(o.Profile, 80))
	}
	return nil
}

// Flags maps a manifest to `nono run` flags (everything between "run" and
// "--"), validating every value: paths absolute, clean and free of control
// characters (no NUL, no newline); domains well formed; ports 1–65535;
// a blocked network never combined with allowed domains or ports; no value
// that could be read as a flag. stat tells directories from files
// (--read/--write/--allow versus --read-file/--write-file/--allow-file);
// a path that does not exist is granted as a directory.
//
//	filesystem.read        --read DIR | --read-file FILE
//	filesystem.write       --write DIR | --write-file FILE
//	filesystem.read_write  --allow DIR | --allow-file FILE
//	network blocked        --block-net
//	network allow          --allow-domain D (each), --open-port P (each)
//	network unrestricted   (nothing: nono's default)
//	workdir                --workdir DIR
//	options                --profile P, --rollback | --no-rollback, --audit-integrity
//	always                 --silent --no-diagnostics
func Flags(m *capability.Manifest, o NonoOptions, stat func(string) (fs.FileInfo, error)) ([]string, error) {
	if m == nil {
		return nil, errors.New("nono: no manifest")
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("nono: %w", err)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	flags := []string{"--silent", "--no-diagnostics"}
	if o.Profile != "" {
		flags = append(flags, "--profile", o.Profile)
	}
	for _, l := range []struct {
		field       string
		paths       []string
		dir, file   string
		description string
	}{
		{"filesystem.read", m.Filesystem.Read, "--read", "--read-file", "read"},
		{"filesystem.write", m.Filesystem.Write, "--write", "--write-file", "write"},
		{"filesystem.read_write", m.Filesystem.ReadWrite, "--allow", "--allow-file", "read-write"},
	} {
		for i, p := range l.paths {
			if err := checkFlagValue(p); err != nil {
				return nil, fmt.Errorf("nono: %s[%d]: %w", l.field, i, err)
			}
			if err := capability.CheckPath(p); err != nil {
				return nil, fmt.Errorf("nono: %s[%d]: %w", l.field, i, err)
			}
			flag := l.dir
			if st, err := stat(p); err == nil && !st.IsDir() {
				flag = l.file
			}
			flags = append(flags, flag, p)
		}
	}
	n := m.Network
	switch n.Mode {
	case capability.NetBlocked:
		if len(n.Domains) > 0 || len(n.Ports) > 0 {
			return nil, errors.New("nono: network: --block-net cannot be combined with allowed domains or ports")
		}
		flags = append(flags, "--block-net")
	case capability.NetAllow:
		for i, d := range n.Domains {
			if err := checkFlagValue(d); err != nil {
				return nil, fmt.Errorf("nono: network.domains[%d]: %w", i, err)
			}
			if err := capability.CheckDomain(d); err != nil {
				return nil, fmt.Errorf("nono: network.domains[%d]: %w", i, err)
			}
			flags = append(flags, "--allow-domain", d)
		}
		for i, p := range n.Ports {
			if p < 1 || p > 65535 {
				return nil, fmt.Errorf("nono: network.ports[%d]: %d is not a port (1-65535)", i, p)
			}
			flags = append(flags, "--open-port", strconv.Itoa(p))
		}
	case capability.NetUnrestricted:
		if len(n.Domains) > 0 || len(n.Ports) > 0 {
			return nil, errors.New("nono: network: unrestricted takes no domains or ports")
		}
	default:
		return nil, fmt.Errorf("nono: network.mode %q", n.Mode)
	}
	if err := checkFlagValue(m.Workdir); err != nil {
		return nil, fmt.Errorf("nono: workdir: %w", err)
	}
	flags = append(flags, "--workdir", m.Workdir)
	if o.Rollback {
		flags = append(flags, "--rollback", "--no-rollback-prompt")
	} else {
		flags = append(flags, "--no-rollback")
	}
	if o.AuditIntegrity {
		flags = append(flags, "--audit-integrity")
	}
	return flags, nil
}

// checkFlagValue refuses values that could change how nono parses its
// command line: empty, leading "-", NUL, newlines or other control
// characters.
func checkFlagValue(v string) error {
	switch {
	case v == "":
		return errors.New("empty value")
	case strings.HasPrefix(v, "-"):
		return fmt.Errorf("%q would be read as a flag", truncate(v, 80))
	case strings.IndexFunc(v, unicode.IsControl) >= 0:
		return fmt.Errorf("%q contains a control character (NUL, newline, ...)", truncate(v, 80))
	}
	return nil
}
