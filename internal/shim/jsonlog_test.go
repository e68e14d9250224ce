package shim

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestAppendEntryIsJSON(t *testing.T) {
	when := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.FixedZone("x", 3600))
	for _, line := range []string{
		"plain\n", "", "quote \" backslash \\ tab \t cr \r", "ctrl \x00\x01\x1f <html> & more",
		"utf8 é ✓ \u2028 \u2029", "bad utf8 \xff\xfe end", strings.Repeat("x", 100000),
	} {
		b := appendEntry(nil, "stderr", []byte(line), when)
		if !bytes.HasSuffix(b, []byte("}\n")) || bytes.Count(b, []byte("\n")) != 1 {
			t.Errorf("entry for %q is not one line: %q", line, b)
		}
		var e struct{ Log, Stream, Time string }
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatalf("entry for %q: %v: %s", line, err, b)
		}
		want := strings.ToValidUTF8(line, "\ufffd")
		if line == "bad utf8 \xff\xfe end" {
			want = "bad utf8 \ufffd\ufffd end"
		}
		if e.Log != want || e.Stream != "stderr" || e.Time != "2024-05-06T06:08:09.123456Z" {
			t.Errorf("entry for %q decodes to %+v", line, e)
		}
		// Same bytes as encoding/json, so readers and tools agree.
		std, _ := json.Marshal(line)
		if !bytes.Contains(b, std) {
			t.Errorf("entry for %q: %s, want the log as %s", line, b, std)
		}
	}
}

// split feeds chunks to a lineSplitter and returns the entries.
func split(chunks ...string) []string {
	var out []string
	s := newLineSplitter("stdout", func(_ string, line []byte) { out = append(out, string(line)) })
	for _, c := range chunks {
		s.write([]byte(c))
	}
	s.flush()
	return out
}

func TestLineSplitter(t *testing.T) {
	long := strings.Repeat("a", maxLogLine)
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"lines", []string{"a\nb\n"}, []string{"a\n", "b\n"}},
		{"joined across reads", []string{"he", "llo\nwor", "ld\n"}, []string{"hello\n", "world\n"}},
		{"partial at the end", []string{"x\ny"}, []string{"x\n", "y"}},
		{"empty lines", []string{"\n\n"}, []string{"\n", "\n"}},
		{"exactly the limit", []string{long[:maxLogLine-1] + "\n"}, []string{long[:maxLogLine-1] + "\n"}},
		{"long line in pieces", []string{long + long + "tail\n"}, []string{long, long, "tail\n"}},
		{"long line across reads", []string{long[:100], long[100:] + "z\n"}, []string{long, "z\n"}},
		{"nothing", nil, nil},
	} {
		got := split(tc.chunks...)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") || len(got) != len(tc.want) {
			t.Errorf("%s: got %d entries %.80q, want %d %.80q", tc.name, len(got), got, len(tc.want), tc.want)
		}
	}
}

func TestJSONLogRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	l, err := openJSONLog(path, 200, 3)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i := 0; i < 20; i++ {
		if err := l.write("stdout", []byte(strings.Repeat("x", 50)+"\n"), now); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "c-json.log c-json.log.1 c-json.log.2" {
		t.Fatalf("files = %v, want the log and two rotated ones", names)
	}
	for _, n := range names[1:] {
		fi, _ := os.Stat(filepath.Join(dir, n))
		if fi.Size() < 200 || fi.Size() > 400 {
			t.Errorf("%s has %d bytes, want about max-size", n, fi.Size())
		}
	}

	// One file: truncated in place.
	one := filepath.Join(t.TempDir(), "one.log")
	l, err = openJSONLog(one, 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		l.write("stdout", []byte(strings.Repeat("y", 50)+"\n"), now)
	}
	l.close()
	fi, err := os.Stat(one)
	if err != nil || fi.Size() >= 200 {
		t.Errorf("single log: %v, %v; want under max-size", fi, err)
	}
	if _, err := os.Stat(one + ".1"); !os.IsNotExist(err) {
		t.Errorf("single log rotated to a second file: %v", err)
	}

	if _, err := openJSONLog(filepath.Join(t.TempDir(), "no", "dir", "x.log"), 0, 1); err == nil {
		t.Error("open in a missing dir succeeded")
	}
	if _, err := openJSONLog(one, -1, 1); !errdefs.IsInvalidArgument(err) {
		t.Errorf("negative max size = %v, want invalid argument", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "10": 10, "10b": 10, "1k": 1024, "2KB": 2048, "3m": 3 << 20, "1g": 1 << 30, " 5M ": 5 << 20} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "k", "-1", "1.5m", "1t", "abc", "99999999999g"} {
		if _, err := ParseSize(in); !errdefs.IsInvalidArgument(err) {
			t.Errorf("ParseSize(%q) = %v, want invalid argument", in, err)
		}
	}
}

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	req := request{Method: methodKill, Signal: 9, All: true}
	if err := writeFrame(&b, req); err != nil {
		t.Fatal(err)
	}
	b.WriteString("stream bytes")
	var got request
	if err := readFrame(&b, &got); err != nil || got != req {
		t.Fatalf("read %+v, %v; want %+v", got, err, req)
	}
	if b.String() != "stream bytes" {
		t.Errorf("readFrame consumed the stream after it: %q left", b.String())
	}
	for _, bad := range [][]byte{{0xff, 0xff, 0xff, 0xff}, {0, 0, 0, 2, '{'}, {0, 0, 0, 1, '['}} {
		if err := readFrame(bytes.NewReader(bad), &got); err == nil {
			t.Errorf("frame %q accepted", bad)
		}
	}
	e := decodeError("container x is running", className(errdefs.ErrConflict))
	if !errdefs.IsConflict(e) || e.Error() != "container x is running" {
		t.Errorf("decoded error %v lost its class or text", e)
	}
}
