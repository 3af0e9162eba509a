package identity

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// A quoted value is cut on a character boundary: the reason is committed,
// and a cut inside a character would commit U+FFFD for what was sent.
func TestTruncateTextKeepsCharactersWhole(t *testing.T) {
	s := "a" + strings.Repeat("€", 100) // byte 200 is inside a €
	got := truncateText(s, 200)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "€…") || len(got) > 200+len("…") {
		t.Fatalf("truncateText = %q", got)
	}
	if truncateText("short", 200) != "short" {
		t.Fatal("a short value was changed")
	}
}
