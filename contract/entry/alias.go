package entry

import (
	"fmt"
	"regexp"
)

// MaxAliases is the most aliases one agent entry may carry.
const MaxAliases = 16

// MaxAliasLen is the longest alias, in bytes.
const MaxAliasLen = 128

// aliasPattern is the form of an alias: a name as the older ZT control plane
// gave its actors (e.g. "hello-world-agent"). It has no "/" and so can never
// be taken for a SPIFFE ID.
var aliasPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@-]*$`)

// ValidAlias reports whether s is a well-formed agent alias: 1 to
// MaxAliasLen bytes, starting with a letter or digit, then letters, digits
// and . _ : @ - (no "/", so no alias is a SPIFFE ID).
func ValidAlias(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > MaxAliasLen:
		return fmt.Errorf("longer than %d bytes", MaxAliasLen)
	case !aliasPattern.MatchString(s):
		return fmt.Errorf("%q is not an alias (a letter or digit, then letters, digits and . _ : @ -; no /)", s)
	}
	return nil
}

func checkAlias(field, s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if err := ValidAlias(s); err != nil {
		return fieldErr(field, "%v", err)
	}
	return nil
}

// checkAliases checks an agent entry's alias list: each well-formed, none
// twice, at most MaxAliases.
func checkAliases(field string, aliases []string) error {
	if len(aliases) > MaxAliases {
		return fieldErr(field, "more than %d aliases", MaxAliases)
	}
	seen := make(map[string]bool, len(aliases))
	for i, a := range aliases {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := checkAlias(f, a, true); err != nil {
			return err
		}
		if seen[a] {
			return fieldErr(f, "%q is listed twice", a)
		}
		seen[a] = true
	}
	return nil
}
