package syncpipe

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
)

// The binary encoding carries a Go value between two processes of the
// same binary, such as the runtime parent and its init: both know the
// type, so it is positional and self-describes nothing. Decoding walks
// the value with reflection and needs no per-type tables, which makes it
// about twenty times cheaper than encoding/json in a process that has
// decoded nothing yet, as init always is.
//
//	bool                   1 byte, 0 or 1
//	int, int8..int64       zigzag varint
//	uint, uint8..uint64    uvarint
//	float32, float64       IEEE 754 bits as uvarint
//	string, []byte         uvarint length, then the bytes
//	slice, map             uvarint length+1 (0 is nil), then the elements
//	                       (map: key, value, key, value, ...)
//	pointer                0 for nil, or 1 then the value
//	array                  the elements
//	struct                 every field in order
//	interface              0 (only nil interfaces can be encoded)
//
// Channels, functions, structs with unexported fields and non-nil
// interfaces cannot be encoded.

// AppendBinary appends the binary encoding of v to buf; a pointer v is
// encoded as the value it points to.
func AppendBinary(buf []byte, v any) ([]byte, error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	return appendValue(buf, rv)
}

func appendValue(buf []byte, v reflect.Value) ([]byte, error) {
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return append(buf, 1), nil
		}
		return append(buf, 0), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return binary.AppendVarint(buf, v.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return binary.AppendUvarint(buf, v.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return binary.AppendUvarint(buf, math.Float64bits(v.Float())), nil
	case reflect.String:
		buf = binary.AppendUvarint(buf, uint64(v.Len()))
		return append(buf, v.String()...), nil
	case reflect.Slice:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		buf = binary.AppendUvarint(buf, uint64(v.Len())+1)
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return append(buf, v.Bytes()...), nil
		}
		return appendElems(buf, v)
	case reflect.Array:
		return appendElems(buf, v)
	case reflect.Map:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		buf = binary.AppendUvarint(buf, uint64(v.Len())+1)
		var err error
		for it := v.MapRange(); it.Next(); {
			if buf, err = appendValue(buf, it.Key()); err != nil {
				return nil, err
			}
			if buf, err = appendValue(buf, it.Value()); err != nil {
				return nil, err
			}
		}
		return buf, nil
	case reflect.Pointer:
		if v.IsNil() {
			return append(buf, 0), nil
		}
		return appendValue(append(buf, 1), v.Elem())
	case reflect.Interface:
		if v.IsNil() {
			return append(buf, 0), nil
		}
	case reflect.Struct:
		t := v.Type()
		var err error
		for i := 0; i < v.NumField(); i++ {
			if !t.Field(i).IsExported() {
				return nil, fmt.Errorf("binary encoding: %s has unexported field %s", t, t.Field(i).Name)
			}
			if buf, err = appendValue(buf, v.Field(i)); err != nil {
				return nil, err
			}
		}
		return buf, nil
	}
	return nil, fmt.Errorf("binary encoding: cannot encode %s", v.Type())
}

func appendElems(buf []byte, v reflect.Value) ([]byte, error) {
	var err error
	for i := 0; i < v.Len(); i++ {
		if buf, err = appendValue(buf, v.Index(i)); err != nil {
			return nil, err
		}
	}
	return buf, nil
}

// errShort is returned for an encoding that ends early.
var errShort = fmt.Errorf("binary decoding: %w", io.ErrUnexpectedEOF)

// UnmarshalBinary decodes data, as AppendBinary made it, into the value
// that the pointer v points to. Every byte of data must be used.
func UnmarshalBinary(data []byte, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return errors.New("binary decoding: need a non-nil pointer")
	}
	d := decoder{data: data}
	if err := d.value(rv.Elem()); err != nil {
		return err
	}
	if len(d.data) != 0 {
		return fmt.Errorf("binary decoding: %d bytes left over", len(d.data))
	}
	return nil
}

type decoder struct {
	data []byte
}

func (d *decoder) uvarint() (uint64, error) {
	x, n := binary.Uvarint(d.data)
	if n <= 0 {
		return 0, errShort
	}
	d.data = d.data[n:]
	return x, nil
}

// length reads a length and checks that at least that many bytes (each
// element takes one at least) are left.
func (d *decoder) length(plusOne bool) (n int, isNil bool, err error) {
	x, err := d.uvarint()
	if err != nil {
		return 0, false, err
	}
	if plusOne {
		if x == 0 {
			return 0, true, nil
		}
		x--
	}
	if x > uint64(len(d.data)) {
		return 0, false, errShort
	}
	return int(x), false, nil
}

func (d *decoder) value(v reflect.Value) error {
	switch v.Kind() {
	case reflect.Bool:
		if len(d.data) == 0 {
			return errShort
		}
		b := d.data[0]
		d.data = d.data[1:]
		if b > 1 {
			return fmt.Errorf("binary decoding: bad bool %d", b)
		}
		v.SetBool(b == 1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, n := binary.Varint(d.data)
		if n <= 0 {
			return errShort
		}
		d.data = d.data[n:]
		if v.OverflowInt(x) {
			return fmt.Errorf("binary decoding: %d overflows %s", x, v.Type())
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		x, err := d.uvarint()
		if err != nil {
			return err
		}
		if v.OverflowUint(x) {
			return fmt.Errorf("binary decoding: %d overflows %s", x, v.Type())
		}
		v.SetUint(x)
	case reflect.Float32, reflect.Float64:
		x, err := d.uvarint()
		if err != nil {
			return err
		}
		v.SetFloat(math.Float64frombits(x))
	case reflect.String:
		n, _, err := d.length(false)
		if err != nil {
			return err
		}
		v.SetString(string(d.data[:n]))
		d.data = d.data[n:]
	case reflect.Slice:
		n, isNil, err := d.length(true)
		if err != nil || isNil {
			return err
		}
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b := make([]byte, n)
			copy(b, d.data)
			d.data = d.data[n:]
			v.SetBytes(b)
			return nil
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := 0; i < n; i++ {
			if err := d.value(s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if err := d.value(v.Index(i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		n, isNil, err := d.length(true)
		if err != nil || isNil {
			return err
		}
		t := v.Type()
		m := reflect.MakeMapWithSize(t, n)
		for i := 0; i < n; i++ {
			k := reflect.New(t.Key()).Elem()
			if err := d.value(k); err != nil {
				return err
			}
			e := reflect.New(t.Elem()).Elem()
			if err := d.value(e); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		if len(d.data) == 0 {
			return errShort
		}
		b := d.data[0]
		d.data = d.data[1:]
		switch b {
		case 0:
			return nil
		case 1:
			p := reflect.New(v.Type().Elem())
			if err := d.value(p.Elem()); err != nil {
				return err
			}
			v.Set(p)
		default:
			return fmt.Errorf("binary decoding: bad pointer tag %d", b)
		}
	case reflect.Interface:
		if len(d.data) == 0 {
			return errShort
		}
		if d.data[0] != 0 {
			return fmt.Errorf("binary decoding: bad interface tag %d", d.data[0])
		}
		d.data = d.data[1:]
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Field(i)
			if !f.CanSet() {
				return fmt.Errorf("binary decoding: %s has unexported field %s", v.Type(), v.Type().Field(i).Name)
			}
			if err := d.value(f); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("binary decoding: cannot decode %s", v.Type())
	}
	return nil
}

// SendBinary writes v in the binary encoding as one message (same framing
// as Send, no descriptors).
func (p *Pipe) SendBinary(v any) error {
	buf, err := AppendBinary(make([]byte, 4, 4096), v)
	if err != nil {
		return fmt.Errorf("encode sync message: %w", err)
	}
	binary.LittleEndian.PutUint32(buf, uint32(len(buf)-4))
	if _, err := p.f.Write(buf); err != nil {
		return fmt.Errorf("send sync message: %w", err)
	}
	return nil
}

// RecvBinary reads one message sent with SendBinary into v. At a clean
// end of stream it returns io.EOF.
func (p *Pipe) RecvBinary(v any) error {
	body, err := p.readFrame()
	if err != nil {
		return err
	}
	if err := UnmarshalBinary(body, v); err != nil {
		return fmt.Errorf("decode sync message: %w", err)
	}
	return nil
}

// readFrame reads one frame's body with read(2).
func (p *Pipe) readFrame() ([]byte, error) {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(p.f, hdr); err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("receive sync message: %w", err)
	}
	size := binary.LittleEndian.Uint32(hdr)
	if size > maxMessage {
		return nil, fmt.Errorf("sync message of %d bytes is too large", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(p.f, body); err != nil {
		return nil, fmt.Errorf("receive sync message body: %w", err)
	}
	return body, nil
}
