package logfile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/log"
)

// base is the time of entry 0; entry i is i seconds later.
var base = time.Date(2024, 5, 1, 10, 0, 0, 123456789, time.UTC)

func at(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }

// testLog writes a log the way berth-shim does: Docker json-file lines
// appended to path, rotated by renaming path.N-1 ... path to one number
// up, or truncated when it keeps one file.
type testLog struct {
	t        testing.TB
	path     string
	maxFiles int
	f        *os.File
}

func newTestLog(t testing.TB, maxFiles int) *testLog {
	t.Helper()
	l := &testLog{t: t, path: filepath.Join(t.TempDir(), "container-json.log"), maxFiles: maxFiles}
	l.open(os.O_APPEND)
	t.Cleanup(func() { l.f.Close() })
	return l
}

func (l *testLog) open(flag int) {
	l.t.Helper()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|flag, 0o640)
	if err != nil {
		l.t.Fatal(err)
	}
	l.f = f
}

// line returns entry i as the writer encodes it.
func line(stream, text string, t time.Time) string {
	b, err := json.Marshal(entry{Log: text, Stream: stream, Time: t.UTC()})
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

// writeRaw appends s as it is.
func (l *testLog) writeRaw(s string) {
	l.t.Helper()
	if _, err := l.f.WriteString(s); err != nil {
		l.t.Fatal(err)
	}
}

// write appends entries from..to-1: "line i\n" on stdout for even i,
// stderr for odd ones, at at(i).
func (l *testLog) write(from, to int) {
	l.t.Helper()
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(line(stream(i), text(i), at(i)))
	}
	l.writeRaw(b.String())
}

func stream(i int) string {
	if i%2 == 0 {
		return "stdout"
	}
	return "stderr"
}

func text(i int) string { return "line " + strconv.Itoa(i) + "\n" }

// rotate rotates like the shim: close, shift, rename, create.
func (l *testLog) rotate() {
	l.t.Helper()
	if err := l.f.Close(); err != nil {
		l.t.Fatal(err)
	}
	if l.maxFiles < 2 {
		l.open(os.O_TRUNC)
		return
	}
	name := func(i int) string { return l.path + "." + strconv.Itoa(i) }
	if err := os.Remove(name(l.maxFiles - 1)); err != nil && !os.IsNotExist(err) {
		l.t.Fatal(err)
	}
	for i := l.maxFiles - 2; i >= 1; i-- {
		if err := os.Rename(name(i), name(i+1)); err != nil && !os.IsNotExist(err) {
			l.t.Fatal(err)
		}
	}
	if err := os.Rename(l.path, name(1)); err != nil {
		l.t.Fatal(err)
	}
	l.open(os.O_TRUNC)
}

// collect reads the log with opts and returns the entry numbers it got,
// checking that each entry is the one written under that number.
func collect(t *testing.T, l *testLog, opts ReadOptions) []int {
	t.Helper()
	var got []int
	err := Read(context.Background(), l.path, l.maxFiles, opts, func(m Message) error {
		got = append(got, number(t, m))
		return nil
	})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return got
}

// number checks that m is entry i as testLog.write wrote it and returns i.
func number(t testing.TB, m Message) int {
	t.Helper()
	i, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(string(m.Line), "line "), "\n"))
	if err != nil {
		t.Fatalf("unexpected entry %q", m.Line)
	}
	if string(m.Line) != text(i) || m.Stream != stream(i) || !m.Time.Equal(at(i)) {
		t.Fatalf("entry %d is %q on %s at %v, want %q on %s at %v", i, m.Line, m.Stream, m.Time, text(i), stream(i), at(i))
	}
	return i
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

// threeFiles makes a log of entries 0-9 in path.2 (0-2), path.1 (3-5) and
// path (6-9).
func threeFiles(t *testing.T) *testLog {
	l := newTestLog(t, 3)
	l.write(0, 3)
	l.rotate()
	l.write(3, 6)
	l.rotate()
	l.write(6, 10)
	return l
}

func TestReadAll(t *testing.T) {
	l := threeFiles(t)
	if got := collect(t, l, ReadOptions{Tail: -1}); !slices.Equal(got, seq(0, 10)) {
		t.Fatalf("got %v, want 0-9", got)
	}
	// With fewer files kept, the reader does not look at the older ones.
	if got := collect(t, &testLog{path: l.path, maxFiles: 2}, ReadOptions{Tail: -1}); !slices.Equal(got, seq(3, 10)) {
		t.Fatalf("max 2 files: got %v, want 3-9", got)
	}
}

func TestTail(t *testing.T) {
	l := threeFiles(t)
	// An entry being written: not counted, not returned.
	l.writeRaw(line("stdout", "partial\n", at(10))[:20])
	for _, tc := range []struct {
		tail int
		want []int
	}{
		{0, nil},
		{1, seq(9, 10)},
		{4, seq(6, 10)},    // all of the current file
		{5, seq(5, 10)},    // one from path.1
		{8, seq(2, 10)},    // into path.2
		{10, seq(0, 10)},   // exactly all
		{100, seq(0, 10)},  // more than there are
		{-1, seq(0, 10)},   // all
		{-100, seq(0, 10)}, // all
	} {
		if got := collect(t, l, ReadOptions{Tail: tc.tail}); !slices.Equal(got, tc.want) {
			t.Errorf("tail %d: got %v, want %v", tc.tail, got, tc.want)
		}
	}
}

func TestSinceUntil(t *testing.T) {
	l := threeFiles(t)
	for _, tc := range []struct {
		name         string
		since, until time.Time
		tail         int
		want         []int
	}{
		{"since is inclusive", at(4), time.Time{}, -1, seq(4, 10)},
		{"since between entries", at(4).Add(time.Nanosecond), time.Time{}, -1, seq(5, 10)},
		{"until is inclusive", time.Time{}, at(4), -1, seq(0, 5)},
		{"both", at(2), at(7), -1, seq(2, 8)},
		{"since after all", at(10), time.Time{}, -1, nil},
		{"until before all", time.Time{}, at(-1), -1, nil},
		{"tail before since", at(3), time.Time{}, 8, seq(3, 10)}, // tail 8 is 2-9, since drops 2
		{"tail and until", time.Time{}, at(7), 3, seq(7, 8)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := collect(t, l, ReadOptions{Since: tc.since, Until: tc.until, Tail: tc.tail})
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestMissingLog(t *testing.T) {
	dir := t.TempDir()
	for _, path := range []string{filepath.Join(dir, "none.log"), filepath.Join(dir, "no-dir", "none.log")} {
		err := Read(context.Background(), path, 5, ReadOptions{Tail: -1}, func(m Message) error {
			t.Fatalf("entry %q from a missing log", m.Line)
			return nil
		})
		if err != nil {
			t.Fatalf("read missing %s: %v", path, err)
		}
	}
}

// logged returns a context whose logger writes into the returned buffer.
func logged() (context.Context, *syncBuffer) {
	var buf syncBuffer
	return log.WithLogger(context.Background(), slog.New(slog.NewTextHandler(&buf, nil))), &buf
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestMalformedLines(t *testing.T) {
	l := newTestLog(t, 1)
	l.write(0, 2)
	l.writeRaw("not json\n")
	l.write(2, 3)
	l.writeRaw(`{"log":"cut off","stre` + "\n")
	l.writeRaw("\n")
	l.writeRaw(strings.Repeat("x", maxLineLen+blockSize) + "\n") // overlong
	l.write(3, 5)
	ctx, logs := logged()
	var got []int
	err := Read(ctx, l.path, 1, ReadOptions{Tail: -1}, func(m Message) error {
		got = append(got, number(t, m))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, seq(0, 5)) {
		t.Fatalf("got %v, want 0-4", got)
	}
	out := logs.String()
	if n := strings.Count(out, "skip malformed log line"); n != 3 {
		t.Errorf("%d warnings about malformed lines, want 3:\n%s", n, out)
	}
	if n := strings.Count(out, "skip overlong log line"); n != 1 {
		t.Errorf("%d warnings about overlong lines, want 1:\n%s", n, out)
	}
	// The tail counts malformed lines as entries, as Docker does.
	got = collect(t, l, ReadOptions{Tail: 3})
	if !slices.Equal(got, seq(3, 5)) {
		t.Fatalf("tail 3: got %v, want 3-4", got)
	}
}

func TestCallbackError(t *testing.T) {
	l := threeFiles(t)
	stop := errors.New("stop")
	n := 0
	err := Read(context.Background(), l.path, 3, ReadOptions{Tail: -1}, func(Message) error {
		n++
		if n == 4 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 4 {
		t.Fatalf("got %v after %d entries, want the callback's error after 4", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = Read(ctx, l.path, 3, ReadOptions{Tail: -1}, func(m Message) error {
		t.Fatalf("entry %q after cancel", m.Line)
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("read with a cancelled context: %v", err)
	}
}

// TestTailReadsLittle checks that a tail reads blocks from the end, not
// the whole file: tail 10 of a 50 MB log with a rotated file beside it.
func TestTailReadsLittle(t *testing.T) {
	l := newTestLog(t, 2)
	l.write(0, 1000)
	l.rotate()
	w := bufio.NewWriterSize(l.f, 1<<20)
	n := 1000
	var size int64
	for ; size < 50<<20; n++ {
		s := line(stream(n), text(n), at(n))
		size += int64(len(s))
		w.WriteString(s)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, tail := range []int{10, 0} {
		var got []int
		r := newReader(context.Background(), l.path, 2, ReadOptions{Tail: tail}, func(m Message) error {
			got = append(got, number(t, m))
			return nil
		})
		if err := r.run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, seq(n-tail, n)) {
			t.Fatalf("tail %d: got %v, want %d-%d", tail, got, n-tail, n-1)
		}
		t.Logf("tail %d of %d bytes: read %d bytes", tail, size, r.nread)
		if r.nread > 2*blockSize {
			t.Fatalf("tail %d of %d bytes read %d bytes", tail, size, r.nread)
		}
	}
}

// TestFileUnderTwoNames reads a log whose current file is also path.1, as
// a reader sees it when a rotation happens while it opens the files: the
// file is read once, after the older path.2.
func TestFileUnderTwoNames(t *testing.T) {
	l := newTestLog(t, 3)
	l.write(0, 2)
	l.rotate()
	l.write(2, 4)
	if err := os.Rename(l.path+".1", l.path+".2"); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(l.path, l.path+".1"); err != nil {
		t.Fatal(err)
	}
	if got := collect(t, l, ReadOptions{Tail: -1}); !slices.Equal(got, seq(0, 4)) {
		t.Fatalf("got %v, want 0-3", got)
	}
}
