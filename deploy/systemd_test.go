package deploy

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const unitPath = "systemd/ztlog.service"

// verifyUnit runs `systemd-analyze verify` on unit (its text) and returns
// what it reported about the unit. systemd-analyze exits 0 on unknown keys
// and unparsable values (it only warns), so every line naming the unit
// file counts, not only the exit status. The ExecStart binary,
// /usr/local/bin/ztlog, is not installed here: verify checks only that it
// is executable, so it is pointed at this test binary.
func verifyUnit(t *testing.T, unit string) (report string, ok bool) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: the unit is not verified")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit = strings.ReplaceAll(unit, "/usr/local/bin/ztlog", self)
	dir := t.TempDir()
	p := filepath.Join(dir, "ztlog.service")
	if err := os.WriteFile(p, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", "--man=no", p).CombinedOutput()
	var mine []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "ztlog.service") {
			mine = append(mine, line)
		}
	}
	return strings.Join(mine, "\n"), err == nil && len(mine) == 0
}

func readUnit(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSystemdUnitVerifies(t *testing.T) {
	if report, ok := verifyUnit(t, readUnit(t)); !ok {
		t.Errorf("systemd-analyze verify %s:\n%s", unitPath, report)
	}
}

// TestSystemdVerifyCatches shows the verification above can fail: broken
// copies of the unit, each with what systemd-analyze says.
func TestSystemdVerifyCatches(t *testing.T) {
	unit := readUnit(t)
	for _, c := range []struct{ name, old, new, want string }{
		{"misspelt key", "NoNewPrivileges=yes", "NoNewPrivilege=yes", "Unknown key 'NoNewPrivilege'"},
		{"bad value", "ProtectSystem=strict", "ProtectSystem=strcit", "strcit"},
		{"missing binary", "ExecStart=/usr/local/bin/ztlog", "ExecStart=/nonexistent/ztlog", "/nonexistent/ztlog"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(unit, c.old) {
				t.Fatalf("%s has no %q to break", unitPath, c.old)
			}
			report, ok := verifyUnit(t, strings.Replace(unit, c.old, c.new, 1))
			if ok {
				t.Fatalf("verify passed the unit with %q", c.new)
			}
			if !strings.Contains(report, c.want) {
				t.Errorf("verify report does not mention %q:\n%s", c.want, report)
			}
		})
	}
}

// unitDirectives are the unit's Key=Value lines (continuations joined),
// in order.
func unitDirectives(unit string) [][2]string {
	var out [][2]string
	var cur string
	sc := bufio.NewScanner(strings.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[")) {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur += s + " "
			continue
		}
		cur += line
		k, v, _ := strings.Cut(cur, "=")
		out = append(out, [2]string{k, v})
		cur = ""
	}
	return out
}

// TestSystemdUnitWiring checks the unit against `ztlog serve`'s flags and
// the hardening it promises.
func TestSystemdUnitWiring(t *testing.T) {
	flags := binaryFlags(t)["ztlog serve"]
	unit := readUnit(t)
	set := map[string][]string{}
	for _, d := range unitDirectives(unit) {
		set[d[0]] = append(set[d[0]], d[1])
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "StateDirectory": "ztlog", "CapabilityBoundingSet": "",
	} {
		if got := set[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if len(set["ExecStart"]) != 1 {
		t.Fatalf("ExecStart lines: %d, want 1", len(set["ExecStart"]))
	}
	fields := strings.Fields(set["ExecStart"][0])
	if len(fields) < 2 || fields[0] != "/usr/local/bin/ztlog" || fields[1] != "serve" {
		t.Fatalf("ExecStart = %q, want /usr/local/bin/ztlog serve ...", fields)
	}
	given := map[string]string{}
	for _, a := range fields[2:] {
		k, v, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !ok || !strings.HasPrefix(a, "--") {
			t.Errorf("ExecStart argument %q: want --name=value", a)
			continue
		}
		if !flags[k] {
			t.Errorf("ExecStart: --%s is not a flag of `ztlog serve`", k)
		}
		given[k] = v
	}
	// ProtectSystem=strict leaves only the state directory writable.
	if got := given["data-dir"]; !strings.HasPrefix(got, "${STATE_DIRECTORY}/") {
		t.Errorf("--data-dir=%s: want it under ${STATE_DIRECTORY} (the only writable place with ProtectSystem=strict)", got)
	}
	creds := map[string]bool{}
	for _, c := range set["LoadCredential"] {
		name, _, _ := strings.Cut(c, ":")
		creds[name] = true
	}
	for _, f := range []string{"key", "receipt-key"} {
		name, ok := strings.CutPrefix(given[f], "${CREDENTIALS_DIRECTORY}/")
		if !ok {
			t.Errorf("--%s=%s: want a credential, ${CREDENTIALS_DIRECTORY}/NAME (the dynamic user cannot read root's 0600 key files)", f, given[f])
		} else if !creds[name] {
			t.Errorf("--%s names credential %q, which no LoadCredential= loads", f, name)
		}
	}

	// The example environment file names only real flags.
	env, err := os.ReadFile("systemd/ztlog.env")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(env), "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "#")
		name, _, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "ZTLOG_") || strings.Contains(name, " ") {
			continue
		}
		n++
		if flag := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(name, "ZTLOG_"), "_", "-")); !flags[flag] {
			t.Errorf("ztlog.env: %s: --%s is not a flag of `ztlog serve`", name, flag)
		}
	}
	if n == 0 {
		t.Error("ztlog.env names no ZTLOG_ setting")
	}
}
