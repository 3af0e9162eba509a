package main

import "strings"

// flagNames turns the library options a verifier's messages name into the
// flags of zt-audit that set them: libraries never name a command's flags.
var flagNames = strings.NewReplacer(
	"Options.Roots", "--spiffe-bundle FILE",
	"Options.MaxOpen", "--max-open",
	"Options.MaxLate", "--max-late",
	"Options.KMSKey", "--kms-key PEM",
)

// hint is msg in zt-audit's terms.
func hint(msg string) string { return flagNames.Replace(msg) }
