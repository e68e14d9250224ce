package syncpipe_test

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/runtime/nsinit"
	"github.com/berth-project/berth/internal/runtime/syncpipe"
	"github.com/berth-project/berth/internal/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fill sets every field reachable from v to a non-zero value that depends
// on seed, so that a field the encoding dropped or mixed up shows.
// Interfaces stay nil (the encoding carries only nil ones).
func fill(v reflect.Value, seed *int) {
	*seed++
	n := *seed
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(n%2 == 0)
		if !v.Bool() {
			v.SetBool(true)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-int64(n % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(n%200) + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(n) + 0.5)
	case reflect.String:
		v.SetString(strings.Repeat("é", n%3) + "s" + string(rune('a'+n%26)))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		fill(s.Index(0), seed)
		fill(s.Index(1), seed)
		v.Set(s)
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			fill(v.Index(i), seed)
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for i := 0; i < 2; i++ {
			k := reflect.New(v.Type().Key()).Elem()
			fill(k, seed)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, seed)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem(), seed)
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), seed)
		}
	}
}

// fullConfig is an init config with every field of the spec set, other
// platforms' sections removed as the runtime sends it.
func fullConfig(t *testing.T) *nsinit.Config {
	t.Helper()
	var cfg nsinit.Config
	seed := 0
	fill(reflect.ValueOf(&cfg).Elem(), &seed)
	cfg.Spec.Windows, cfg.Spec.Solaris, cfg.Spec.VM, cfg.Spec.ZOS, cfg.Spec.FreeBSD = nil, nil, nil, nil, nil
	if cfg.Spec.Process.Capabilities == nil || len(cfg.Spec.Linux.Namespaces) != 2 || cfg.Seccomp == nil {
		t.Fatal("fill left the config incomplete")
	}
	return &cfg
}

func TestBinaryRoundTripFullConfig(t *testing.T) {
	cfg := fullConfig(t)
	data, err := syncpipe.AppendBinary(nil, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got nsinit.Config
	if err := syncpipe.UnmarshalBinary(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&got, cfg) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", got.Spec, cfg.Spec)
	}
}

func TestBinaryKeepsNilAndEmpty(t *testing.T) {
	type T struct {
		NilSlice   []string
		EmptySlice []string
		NilMap     map[string]int
		EmptyMap   map[string]int
		NilBytes   []byte
		EmptyBytes []byte
		Ptr        *int
		Zero       *int
	}
	zero := 0
	in := T{EmptySlice: []string{}, EmptyMap: map[string]int{}, EmptyBytes: []byte{}, Zero: &zero}
	data, err := syncpipe.AppendBinary(nil, in)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := syncpipe.UnmarshalBinary(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %#v, want %#v", out, in)
	}
	if out.NilSlice != nil || out.EmptySlice == nil || out.NilMap != nil || out.EmptyMap == nil ||
		out.NilBytes != nil || out.EmptyBytes == nil || out.Ptr != nil || out.Zero == nil {
		t.Fatalf("nil and empty mixed up: %#v", out)
	}
}

func TestBinaryTruncatedAndTrailing(t *testing.T) {
	data, err := syncpipe.AppendBinary(nil, fullConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		var cfg nsinit.Config
		err := syncpipe.UnmarshalBinary(data[:n], &cfg)
		if err == nil {
			t.Fatalf("decoding the first %d of %d bytes succeeded", n, len(data))
		}
	}
	var cfg nsinit.Config
	if err := syncpipe.UnmarshalBinary(append(data, 0), &cfg); err == nil || !strings.Contains(err.Error(), "left over") {
		t.Fatalf("trailing byte: got %v", err)
	}
}

func TestBinaryRejectsBadInput(t *testing.T) {
	// A length far beyond the data must fail before allocating it.
	var s []string
	if err := syncpipe.UnmarshalBinary([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, &s); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("huge slice length: got %v", err)
	}
	var b bool
	if err := syncpipe.UnmarshalBinary([]byte{2}, &b); err == nil {
		t.Error("bool 2 decoded")
	}
	var p *int
	if err := syncpipe.UnmarshalBinary([]byte{7, 0}, &p); err == nil {
		t.Error("pointer tag 7 decoded")
	}
	var small int8
	if err := syncpipe.UnmarshalBinary([]byte{0x80, 0x04}, &small); err == nil || !strings.Contains(err.Error(), "overflows") {
		t.Errorf("256 into int8: got %v", err)
	}
	if err := syncpipe.UnmarshalBinary([]byte{0}, s); err == nil {
		t.Error("decoding into a non-pointer succeeded")
	}
}

func TestBinaryRejectsUnencodable(t *testing.T) {
	type unexported struct {
		A int
		b int
	}
	for name, v := range map[string]any{
		"interface":  struct{ X any }{X: 1},
		"unexported": unexported{b: 1},
		"chan":       make(chan int),
		"windows":    &specs.Spec{Windows: &specs.Windows{CredentialSpec: "x"}},
	} {
		if _, err := syncpipe.AppendBinary(nil, v); err == nil {
			t.Errorf("%s: encoded", name)
		}
	}
	// A nil interface is fine.
	if _, err := syncpipe.AppendBinary(nil, &specs.Spec{Windows: &specs.Windows{}}); err != nil {
		t.Errorf("nil interface: %v", err)
	}
}

func TestSendRecvBinary(t *testing.T) {
	parent, child, err := syncpipe.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parent.Close(); child.Close() })
	want := nsinit.Config{ID: "c1", Rootfs: "/r", Seccomp: &seccomp.Program{Filter: []byte{1, 2, 3}}, Spec: &specs.Spec{Hostname: "h"}}
	go func() {
		if err := parent.SendBinary(&want); err != nil {
			t.Error(err)
		}
		parent.Close()
	}()
	var got nsinit.Config
	if err := child.RecvBinary(&got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if err := child.RecvBinary(&got); err != io.EOF {
		t.Fatalf("after close: got %v, want io.EOF", err)
	}
}
