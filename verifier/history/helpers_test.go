package history

import "strings"

// noteText is the text part of a signed note.
func noteText(signed string) string {
	i := strings.Index(signed, "\n\n")
	return signed[:i+1]
}

// flipLine replaces line n (0-based) of a signed note's text with another
// valid hash, keeping the signature.
func flipLine(signed string, n int) string {
	lines := strings.Split(signed, "\n")
	lines[n] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	return strings.Join(lines, "\n")
}
