// Package text holds the one way ztlog shortens text it quotes in errors,
// reasons and reports, and its check of lowercase hex digests.
package text

import "unicode/utf8"

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
