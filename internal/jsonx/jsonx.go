// Package jsonx decodes the JSON documents ztlog reads strictly: exactly
// one value, no member the Go type does not name, nothing after it.
package jsonx

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrTrailing is returned when data follows the JSON value.
var ErrTrailing = errors.New("trailing data after the JSON object")

// DecodeStrict decodes raw into v, refusing unknown members and trailing
// data. The error is encoding/json's or ErrTrailing.
func DecodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return ErrTrailing
	}
	return nil
}
