package runtime

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestSpecFileMirrorsSpec: specFile has specs.Spec's fields, in order, with
// the same json tags, and the same types except the raw platform sections;
// a runtime-spec upgrade that adds a field fails here.
func TestSpecFileMirrorsSpec(t *testing.T) {
	want, got := reflect.TypeOf(specs.Spec{}), reflect.TypeOf(specFile{})
	if want.NumField() != got.NumField() {
		t.Fatalf("specFile has %d fields, specs.Spec %d", got.NumField(), want.NumField())
	}
	raw := reflect.TypeOf(json.RawMessage{})
	for i := 0; i < want.NumField(); i++ {
		w, g := want.Field(i), got.Field(i)
		if w.Name != g.Name || w.Tag.Get("json") != g.Tag.Get("json") || (w.Type != g.Type && g.Type != raw) {
			t.Errorf("field %d: specFile has %s %s `%s`, specs.Spec %s %s `%s`", i, g.Name, g.Type, g.Tag, w.Name, w.Type, w.Tag)
		}
	}
}

// fillValue sets every field reachable from v to a non-zero value (interfaces
// stay nil).
func fillValue(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n % 100))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n%100) + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fillValue(s.Index(0), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fillValue(k, n)
		fillValue(e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fillValue(p.Elem(), n)
		v.Set(p)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Field(i).CanSet() {
				fillValue(v.Field(i), n)
			}
		}
	}
}

// TestDecodeSpecLikeUnmarshal: decodeSpec gives what json.Unmarshal into a
// specs.Spec gives, for a config with every field, every platform's
// section among them, and for one with key case and nulls that
// encoding/json accepts.
func TestDecodeSpecLikeUnmarshal(t *testing.T) {
	var full specs.Spec
	n := 0
	fillValue(reflect.ValueOf(&full).Elem(), &n)
	fullJSON, err := json.Marshal(&full)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"full":  fullJSON,
		"case":  []byte(`{"ociVersion":"1.0.2","WINDOWS":{"layerFolders":["a"]},"Hostname":"h","vm":null,"solaris":{"milestone":"m"}}`),
		"empty": []byte(`{}`),
		// encoding/json's leniencies, which the v1 mode keeps.
		"duplicates": []byte(`{"hostname":"a","hostname":"b","process":{"args":["x"],"ARGS":["y"]}}`),
		"badUTF8":    []byte("{\"hostname\":\"a\xffb\",\"annotations\":{\"k\\u00e9\":\"\\ud800\"}}"),
		"nulls":      []byte(`{"process":null,"mounts":null,"linux":{"resources":null,"sysctl":null},"hostname":null}`),
	} {
		var want specs.Spec
		if err := json.Unmarshal(data, &want); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := decodeSpec(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, &want) {
			t.Errorf("%s: decodeSpec = %+v, want %+v", name, got, &want)
		}
	}
	for _, bad := range []string{`{"windows":5}`, `{"zos":[1]}`, `{"linux":"x"}`, `{`} {
		if _, err := decodeSpec([]byte(bad)); err == nil {
			t.Errorf("decodeSpec(%s) succeeded", bad)
		}
	}
}

// TestPeekCgroupsPath: when peekCgroupsPath reports a path, it is the one
// json.Unmarshal decodes, whatever the key case, duplicates, escapes or
// nesting.
func TestPeekCgroupsPath(t *testing.T) {
	for _, tc := range []struct {
		doc    string
		want   string
		wantOK bool
	}{
		{`{}`, "", true},
		{`{"linux":{}}`, "", true},
		{`{"linux":{"cgroupsPath":"/a/b"}}`, "/a/b", true},
		{`{"process":{"args":["x",{"linux":{"cgroupsPath":"/no"}}]},"linux":{"namespaces":[{"type":"pid"}],"cgroupsPath":"/yes"}}`, "/yes", true},
		{`{"LINUX":{"CgroupsPATH":"/case"}}`, "/case", true},
		{`{"linux":{"cgroupsPath":"/first","cgroupspath":"/last"}}`, "/last", true},
		{`{"linux":{"cgroupsPath":"/one"},"linux":{"sysctl":{}}}`, "/one", true},
		{`{"linux":{"cgroupsPath":"/one"},"linux":{"cgroupsPath":"/two"}}`, "/two", true},
		{`{"linux":{"cgroups\u0050ath":"/escaped"}}`, "/escaped", true},
		{`{"linux":{"cgroupsPath":null}}`, "", true},
		{`{"annotations":{"cgroupsPath":"/no"},"linux":{"resources":{"cgroupsPath":"/no"}}}`, "", true},
		{`{"linux":null}`, "", false},
		{`{"linux":{"cgroupsPath":5}}`, "", false},
		{`[]`, "", false},
		{`{"linux":{"cgroupsPath":"/trunc"`, "", false},
	} {
		got, ok := peekCgroupsPath([]byte(tc.doc))
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("peekCgroupsPath(%s) = %q, %v; want %q, %v", tc.doc, got, ok, tc.want, tc.wantOK)
		}
		var s specs.Spec
		if ok && json.Unmarshal([]byte(tc.doc), &s) == nil {
			decoded := ""
			if s.Linux != nil {
				decoded = s.Linux.CgroupsPath
			}
			if decoded != got {
				t.Errorf("peekCgroupsPath(%s) = %q, json.Unmarshal gives %q", tc.doc, got, decoded)
			}
		}
	}
}

// TestStateEncodingLikeJSON: storedState mirrors State's exported fields
// (bar the spec's type), and encodeState and decodeState give exactly what
// json.Marshal and json.Unmarshal of a State give, for a state with every
// field set, every platform's section among them, and for one without a
// spec; the spec decoded late (spec, hooks, annotations) is the same, and a
// state re-encoded without decoding its spec keeps it as it was.
func TestStateEncodingLikeJSON(t *testing.T) {
	want, got := reflect.TypeOf(State{}), reflect.TypeOf(storedState{})
	exported := 0
	for i := 0; i < want.NumField(); i++ {
		if want.Field(i).IsExported() {
			exported++
		}
	}
	if exported != got.NumField() {
		t.Fatalf("storedState has %d fields, State %d exported", got.NumField(), exported)
	}
	for i := 0; i < got.NumField(); i++ {
		w, g := want.Field(i), got.Field(i)
		if w.Name != g.Name || w.Tag != g.Tag || (w.Type != g.Type && w.Name != "Config") {
			t.Errorf("field %d: storedState has %s %s `%s`, State %s %s `%s`", i, g.Name, g.Type, g.Tag, w.Name, w.Type, w.Tag)
		}
	}
	var full State
	n := 0
	fillValue(reflect.ValueOf(&full).Elem(), &n)
	full.Created = time.Date(2024, 5, 6, 7, 8, 9, 10, time.UTC)
	for name, st := range map[string]*State{"full": &full, "no spec": {ID: "x", Pid: 3}} {
		wantJSON, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, err := encodeState(st)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(gotJSON) != string(wantJSON) {
			t.Errorf("%s: encodeState =\n%s\nwant\n%s", name, gotJSON, wantJSON)
		}
		var wantState State
		if err := json.Unmarshal(wantJSON, &wantState); err != nil {
			t.Fatal(err)
		}
		gotState, err := decodeState(wantJSON)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if again, err := encodeState(gotState); err != nil || string(again) != string(wantJSON) {
			t.Errorf("%s: re-encoded before its spec was decoded =\n%s (%v)\nwant\n%s", name, again, err, wantJSON)
		}
		if h, a := gotState.hooks(), gotState.annotations(); !reflect.DeepEqual(h, hooksOf(wantState.Config)) || !reflect.DeepEqual(a, annotationsOf(wantState.Config)) {
			t.Errorf("%s: hooks %+v annotations %v before the spec is decoded, want %+v %v", name, h, a, hooksOf(wantState.Config), annotationsOf(wantState.Config))
		}
		if _, err := gotState.spec(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(gotState, &wantState) {
			t.Errorf("%s: decodeState = %+v, want %+v", name, gotState, &wantState)
		}
	}
	st, err := decodeState([]byte(`{"config":{"windows":7}}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.spec(); err == nil {
		t.Error("a bad windows section decoded")
	}
}

func hooksOf(s *specs.Spec) *specs.Hooks {
	if s == nil {
		return nil
	}
	return s.Hooks
}

func annotationsOf(s *specs.Spec) map[string]string {
	if s == nil {
		return nil
	}
	return s.Annotations
}
