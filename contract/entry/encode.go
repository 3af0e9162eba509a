package entry

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/zt-infra/ztlog/internal/jcs"
)

// This file writes the entry types straight into their RFC 8785 form, with
// members pre-sorted per type, instead of encoding with encoding/json and
// canonicalizing the result. It is the fast path of Marshal (and so of
// Parse's round-trip check); anything it does not cover exactly — a string
// that is not valid UTF-8, an integer beyond 2^53, a type it does not know —
// returns errSlowPath and Marshal takes the reference path, whose bytes
// the tests compare with this one's.

// errSlowPath: the value must be encoded by the reference path.
var errSlowPath = errors.New("contract: value needs the reference encoder")

type encodeFunc func(dst []byte, v reflect.Value) ([]byte, error)

// maxExactInt is 2^53: integers up to it print the same in ECMAScript form.
const maxExactInt = 1 << 53

var (
	encoders    sync.Map // reflect.Type -> builtEncoder
	rawJSONType = reflect.TypeFor[json.RawMessage]()
)

// builtEncoder is a type's encoder, or why the type has none (kept too, so
// that a type the direct encoder cannot take costs one build, not one per
// Marshal).
type builtEncoder struct {
	enc encodeFunc
	err error
}

// appendCanonical appends the JCS encoding of v, or returns errSlowPath.
func appendCanonical(dst []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	enc, err := encoderFor(rv.Type())
	if err != nil {
		return nil, errSlowPath
	}
	return enc(dst, rv)
}

func encoderFor(t reflect.Type) (encodeFunc, error) {
	b, ok := encoders.Load(t)
	if !ok {
		enc, err := buildEncoder(t, 0)
		b, _ = encoders.LoadOrStore(t, builtEncoder{enc, err})
	}
	return b.(builtEncoder).enc, b.(builtEncoder).err
}

func buildEncoder(t reflect.Type, depth int) (encodeFunc, error) {
	if depth > jcs.MaxDepth {
		return nil, fmt.Errorf("type %s nests deeper than %d", t, jcs.MaxDepth)
	}
	if t == rawJSONType {
		return encodeRawJSON, nil
	}
	if t.Implements(reflect.TypeFor[json.Marshaler]()) || reflect.PointerTo(t).Implements(reflect.TypeFor[json.Marshaler]()) {
		return nil, fmt.Errorf("type %s has its own MarshalJSON", t)
	}
	switch t.Kind() {
	case reflect.String:
		return encodeString, nil
	case reflect.Bool:
		return encodeBool, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return encodeInt, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return encodeUint, nil
	case reflect.Pointer:
		return withElem(t, depth, pointerEncoder)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil, fmt.Errorf("byte slice %s", t) // base64 in encoding/json
		}
		return withElem(t, depth, sliceEncoder)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("map key type %s", t.Key())
		}
		return withElem(t, depth, mapEncoder)
	case reflect.Struct:
		return buildStructEncoder(t, depth)
	}
	return nil, fmt.Errorf("type %s (%s)", t, t.Kind())
}

// withElem builds the encoder of t's element type and wraps it: nil is
// written as null (as encoding/json writes a nil pointer, slice or map),
// anything else by the wrapped encoder.
func withElem(t reflect.Type, depth int, wrap func(elem encodeFunc) encodeFunc) (encodeFunc, error) {
	elem, err := buildEncoder(t.Elem(), depth+1)
	if err != nil {
		return nil, err
	}
	enc := wrap(elem)
	return func(dst []byte, v reflect.Value) ([]byte, error) {
		if v.IsNil() {
			return append(dst, "null"...), nil
		}
		return enc(dst, v)
	}, nil
}

func pointerEncoder(elem encodeFunc) encodeFunc {
	return func(dst []byte, v reflect.Value) ([]byte, error) { return elem(dst, v.Elem()) }
}

func sliceEncoder(elem encodeFunc) encodeFunc {
	return func(dst []byte, v reflect.Value) ([]byte, error) {
		dst = append(dst, '[')
		var err error
		for i := range v.Len() {
			if i > 0 {
				dst = append(dst, ',')
			}
			if dst, err = elem(dst, v.Index(i)); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
}

func mapEncoder(elem encodeFunc) encodeFunc {
	return func(dst []byte, v reflect.Value) ([]byte, error) {
		type pair struct {
			k string
			v reflect.Value
		}
		pairs := make([]pair, 0, v.Len())
		for it := v.MapRange(); it.Next(); {
			k := it.Key().String()
			if !utf8.ValidString(k) {
				return nil, errSlowPath
			}
			pairs = append(pairs, pair{k, it.Value()})
		}
		slices.SortFunc(pairs, func(a, b pair) int { return jcs.CompareUTF16([]byte(a.k), []byte(b.k)) })
		dst = append(dst, '{')
		var err error
		for i, p := range pairs {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jcs.AppendString(dst, []byte(p.k))
			dst = append(dst, ':')
			if dst, err = elem(dst, p.v); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
}

type fieldEncoder struct {
	name      string
	key       []byte // "name":
	index     []int
	omitEmpty bool
	enc       encodeFunc
}

func buildStructEncoder(t reflect.Type, depth int) (encodeFunc, error) {
	var fields []fieldEncoder
	if err := collectFields(t, nil, &fields, depth); err != nil {
		return nil, err
	}
	slices.SortFunc(fields, func(a, b fieldEncoder) int { return jcs.CompareUTF16([]byte(a.name), []byte(b.name)) })
	for i := 1; i < len(fields); i++ {
		if fields[i].name == fields[i-1].name {
			return nil, fmt.Errorf("type %s: two fields named %q", t, fields[i].name)
		}
	}
	return func(dst []byte, v reflect.Value) ([]byte, error) {
		dst = append(dst, '{')
		first := true
		var err error
		for i := range fields {
			f := &fields[i]
			fv := v.FieldByIndex(f.index)
			if f.omitEmpty && isEmptyValue(fv) {
				continue
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, f.key...)
			if dst, err = f.enc(dst, fv); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}, nil
}

// collectFields lists t's JSON members the way encoding/json does for the
// shapes this package uses: exported fields, "-" skipped, embedded structs
// without a name inlined, the omitempty option. Any other option or shape
// is refused, so the reference path handles it.
func collectFields(t reflect.Type, index []int, out *[]fieldEncoder, depth int) error {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		idx := append(slices.Clone(index), i)
		if sf.Anonymous && name == "" {
			if sf.Type.Kind() != reflect.Struct {
				return fmt.Errorf("embedded %s in %s", sf.Type, t)
			}
			if err := collectFields(sf.Type, idx, out, depth+1); err != nil {
				return err
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		omit := false
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "":
			case "omitempty":
				omit = true
			default:
				return fmt.Errorf("field %s.%s: option %q", t, sf.Name, o)
			}
		}
		if !utf8.ValidString(name) {
			return fmt.Errorf("field %s.%s: name not UTF-8", t, sf.Name)
		}
		enc, err := buildEncoder(sf.Type, depth+1)
		if err != nil {
			return err
		}
		key := jcs.AppendString(nil, []byte(name))
		*out = append(*out, fieldEncoder{name: name, key: append(key, ':'), index: idx, omitEmpty: omit, enc: enc})
	}
	return nil
}

// isEmptyValue is encoding/json's omitempty test.
func isEmptyValue(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

func encodeString(dst []byte, v reflect.Value) ([]byte, error) {
	s := v.String()
	if !utf8.ValidString(s) {
		return nil, errSlowPath // encoding/json substitutes U+FFFD
	}
	return jcs.AppendString(dst, []byte(s)), nil
}

func encodeBool(dst []byte, v reflect.Value) ([]byte, error) {
	return strconv.AppendBool(dst, v.Bool()), nil
}

func encodeInt(dst []byte, v reflect.Value) ([]byte, error) {
	n := v.Int()
	if n > maxExactInt || n < -maxExactInt {
		return nil, errSlowPath
	}
	return strconv.AppendInt(dst, n, 10), nil
}

func encodeUint(dst []byte, v reflect.Value) ([]byte, error) {
	n := v.Uint()
	if n > maxExactInt {
		return nil, errSlowPath
	}
	return strconv.AppendUint(dst, n, 10), nil
}

func encodeRawJSON(dst []byte, v reflect.Value) ([]byte, error) {
	raw := v.Bytes()
	if raw == nil {
		return append(dst, "null"...), nil
	}
	out, err := jcs.AppendCanonical(dst, raw)
	if err != nil {
		return nil, errSlowPath // the reference path says what is wrong
	}
	return out, nil
}
