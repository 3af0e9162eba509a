package jsonx

import (
	"errors"
	"testing"
)

func TestDecodeStrict(t *testing.T) {
	type doc struct {
		A int `json:"a"`
	}
	var d doc
	if err := DecodeStrict([]byte(`{"a":1}`), &d); err != nil {
		t.Fatalf("valid document: %v", err)
	}
	if d.A != 1 {
		t.Errorf("a = %d, want 1", d.A)
	}
	if err := DecodeStrict([]byte(`{"a":1,"b":2}`), &d); err == nil {
		t.Error("an unknown member was accepted")
	}
	if err := DecodeStrict([]byte(`{"a":1} {}`), &d); !errors.Is(err, ErrTrailing) {
		t.Errorf("trailing data: %v, want ErrTrailing", err)
	}
	if err := DecodeStrict([]byte(`{"a":`), &d); err == nil || errors.Is(err, ErrTrailing) {
		t.Errorf("truncated document: %v, want a decode error", err)
	}
}

func FuzzDecodeStrict(f *testing.F) {
	f.Add([]byte(`{"a":1}`))
	f.Add([]byte(`{"a":1} x`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var v map[string]any
		_ = DecodeStrict(raw, &v)
	})
}
