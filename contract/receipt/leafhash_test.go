package receipt

import (
	"errors"
	"strings"
	"testing"
)

// receipt.md says leaf_hash is
// standard base64 of 32 bytes: one spelling. Non-canonical encodings
// (non-zero pad bits, embedded newlines) of the same 32 bytes are refused
// by Sign and Verify.
func TestLeafHashIsCanonicalBase64(t *testing.T) {
	k := testVectorKey(t)
	canonical := vectorClaims().LeafHash // 43 'A' + '='
	for name, lh := range map[string]string{
		"non-zero pad bits": strings.TrimSuffix(canonical, "A=") + "B=",
		"embedded newline":  canonical[:20] + "\n" + canonical[20:],
	} {
		c := vectorClaims()
		c.LeafHash = lh
		tok, err := k.Sign(c)
		if err == nil {
			_, err = Verify(tok, NewKeyset(k).JWKS(vectorTime), vectorWant)
		}
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: leaf_hash %q: got %v, want ErrMalformed", name, lh, err)
		}
	}
}
