package correlation

import (
	"regexp"
	"testing"
)

// A generated correlation id is a random UUIDv4 in its text form, and an
// acceptable id.
func TestNewIsAUUIDv4(t *testing.T) {
	uuid4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := New()
		if !uuid4.MatchString(id) {
			t.Fatalf("%q is not a UUIDv4", id)
		}
		if !Valid(id) {
			t.Fatalf("%q is not an acceptable correlation id", id)
		}
		if seen[id] {
			t.Fatalf("%q generated twice", id)
		}
		seen[id] = true
	}
}
