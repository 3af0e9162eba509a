// Package text holds the one way ztlog shortens text it quotes in errors,
// reasons and reports, and its check of lowercase hex digests.
package text

import (
	"fmt"
	"unicode/utf8"
)

// Cut returns s when it has at most n bytes. Otherwise it returns the
// longest prefix of s of at most n bytes that ends on a character boundary,
// followed by "…": a quoted value is never cut inside a UTF-8 character
// (a reason the log commits would otherwise hold U+FFFD for what was
// sent).
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Prefix(s, n) + "…"
}

// Prefix returns the longest prefix of s of at most n bytes that ends on
// a character boundary (s itself when it is short enough), unmarked.
func Prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n < 0 {
		n = 0
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// IsLowerHex reports whether s is exactly n lowercase hex digits (the
// form of the digests in entries, statements and claims).
func IsLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Refused returns the first character of s that free text may not hold
// and what kind it is, or ok=false when there is none. Refused are the
// control characters (Unicode Cc: C0, DEL and C1), the bidirectional
// embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069) and the
// line and paragraph separators (U+2028, U+2029): each can make a log
// line, a terminal or an auditor's tool display text other than it is.
func Refused(s string) (r rune, what string, ok bool) {
	for _, r := range s {
		switch {
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			return r, "a control character", true
		case r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069:
			return r, "a bidirectional override or isolate", true
		case r == 0x2028 || r == 0x2029:
			return r, "a line or paragraph separator", true
		}
	}
	return 0, "", false
}

// RefusedMessage describes the first refused character of s for an error
// ("contains U+202E, a bidirectional override or isolate; remove it"), or
// returns "" when s has none.
func RefusedMessage(s string) string {
	r, what, ok := Refused(s)
	if !ok {
		return ""
	}
	return fmt.Sprintf("contains U+%04X, %s; remove it", r, what)
}

// IsRefused reports whether r is a character free text may not hold (see
// Refused).
func IsRefused(r rune) bool {
	_, _, bad := Refused(string(r))
	return bad
}
