package text

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exact", 5, "exact"},
		{"abcdef", 3, "abc…"},
		{"a€b", 2, "a…"}, // € is 3 bytes: byte 2 is inside it
		{"a€b", 4, "a€…"},
		{"€€", 0, "…"},
		{"abc", -1, "…"},
	} {
		if got := Cut(c.s, c.n); got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

func FuzzCut(f *testing.F) {
	f.Add("a€b", 2)
	f.Fuzz(func(t *testing.T, s string, n int) {
		got := Cut(s, n)
		if len(s) <= n {
			if got != s {
				t.Fatalf("Cut(%q, %d) changed a short string: %q", s, n, got)
			}
			return
		}
		prefix := strings.TrimSuffix(got, "…")
		if !strings.HasPrefix(s, prefix) || len(prefix) > max(n, 0) {
			t.Fatalf("Cut(%q, %d) = %q: not a prefix of at most %d bytes", s, n, got, n)
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("Cut(%q, %d) = %q cuts a character", s, n, got)
		}
	})
}

func TestPrefixAndIsLowerHex(t *testing.T) {
	if got := Prefix("a€b", 2); got != "a" {
		t.Errorf(`Prefix("a€b", 2) = %q, want "a"`, got)
	}
	if got := Prefix("short", 10); got != "short" {
		t.Errorf("Prefix changed a short string: %q", got)
	}
	for _, c := range []struct {
		s  string
		n  int
		ok bool
	}{{"0af9", 4, true}, {"0aF9", 4, false}, {"0ag9", 4, false}, {"0af", 4, false}, {"", 0, true}} {
		if IsLowerHex(c.s, c.n) != c.ok {
			t.Errorf("IsLowerHex(%q, %d) = %v", c.s, c.n, !c.ok)
		}
	}
}

func TestRefused(t *testing.T) {
	for _, tc := range []struct {
		in   string
		r    rune
		what string
	}{
		{"a\x01b", 0x01, "a control character"},
		{"tab\there", '\t', "a control character"},
		{"del\x7f", 0x7f, "a control character"},
		{"c1\u0085", 0x85, "a control character"},
		{"c1\u009f", 0x9f, "a control character"},
		{"lre\u202a", 0x202a, "a bidirectional override or isolate"},
		{"rlo\u202e", 0x202e, "a bidirectional override or isolate"},
		{"lri\u2066", 0x2066, "a bidirectional override or isolate"},
		{"pdi\u2069", 0x2069, "a bidirectional override or isolate"},
		{"ls\u2028", 0x2028, "a line or paragraph separator"},
		{"ps\u2029", 0x2029, "a line or paragraph separator"},
	} {
		r, what, ok := Refused(tc.in)
		if !ok {
			t.Errorf("Refused(%q) found nothing, want U+%04X", tc.in, tc.r)
			continue
		}
		if r != tc.r {
			t.Errorf("Refused(%q) rune U+%04X, want U+%04X", tc.in, r, tc.r)
		}
		if what != tc.what {
			t.Errorf("Refused(%q) kind %q, want %q", tc.in, what, tc.what)
		}
	}
	for _, ok := range []string{"plain", "ünïcödé", "emoji 🚀", "\u00a0nbsp", "arabic مرحبا", "\u200d zwj", "\u202f narrow nbsp", "\u2065"} {
		if r, _, bad := Refused(ok); bad {
			t.Errorf("Refused(%q) refused U+%04X, want accepted", ok, r)
		}
	}
	if got, want := RefusedMessage("x\u202ey"), "contains U+202E, a bidirectional override or isolate; remove it"; got != want {
		t.Errorf("RefusedMessage = %q, want %q", got, want)
	}
}

func FuzzRefused(f *testing.F) {
	for _, s := range []string{"", "plain", "a\u202eb", "\u0085", "\u2028", "é\u2066x\u2069", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, _, bad := Refused(s)
		var first rune = -1
		for _, c := range s {
			if IsRefused(c) {
				first = c
				break
			}
		}
		if bad != (first >= 0) {
			t.Fatalf("Refused(%q) = %v, but rune by rune the first refused is %U", s, bad, first)
		}
		if bad && r != first {
			t.Fatalf("Refused(%q) names %U, the first refused rune is %U", s, r, first)
		}
		if (RefusedMessage(s) != "") != bad {
			t.Fatalf("RefusedMessage(%q) disagrees with Refused", s)
		}
	})
}
