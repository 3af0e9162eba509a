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
