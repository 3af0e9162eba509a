package guardrail

import "testing"

// A secret or an e-mail address sent as an object member name is found.
func TestObjectMemberNamesScanned(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range []string{
		`{"recipients":{"bob@example.com":true}}`,
		`{"creds":{"` + fakeAWS + `":"x"}}`,
	} {
		// The same content as a value is found.
		fs, err := s.ScanJSON([]byte(args))
		if err != nil {
			t.Fatal(err)
		}
		if len(fs) == 0 {
			t.Errorf("no finding in %s", args)
		}
	}
}

// A JSON document sent as a string argument is read as JSON too: \u
// escapes of the inner document do not hide an address.
func TestNestedJSONEscapesScanned(t *testing.T) {
	s, _ := New()
	plain, _ := s.ScanJSON([]byte(`{"payload":"{\"to\":\"bob@example.com\"}"}`))
	if len(plain) == 0 {
		t.Fatal("baseline: nested JSON not scanned at all")
	}
	fs, err := s.ScanJSON([]byte(`{"payload":"{\"to\":\"bob\\u0040example.com\"}"}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) == 0 {
		t.Fatalf("e-mail hidden by an escape inside nested JSON: no finding")
	}
}

// A card number sent as a JSON number in exponent form
// (4.111111111111111e15, the same number as 4111111111111111) is found.
func TestCardAsExponentNumber(t *testing.T) {
	s, _ := New()
	base, _ := s.ScanJSON([]byte(`{"n":4111111111111111}`))
	if len(base) == 0 {
		t.Fatal("baseline: card number not found")
	}
	fs, _ := s.ScanJSON([]byte(`{"n":4.111111111111111e15}`))
	if len(fs) == 0 {
		t.Fatalf("card number in exponent form: no finding")
	}
}
