package build

import (
	"bytes"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

// TestParse checks the parser's use: stages, meta args, the text a step
// shows (a continued line joined), and syntax errors with their line and
// instruction.
func TestParse(t *testing.T) {
	df, err := parse([]byte("ARG V=1\nFROM busybox AS a\nRUN echo one \\\n  two\nFROM a\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(df.stages) != 2 || len(df.metaArgs) != 1 || df.stages[0].Name != "a" || df.stages[1].BaseName != "a" {
		t.Fatalf("stages %+v meta %+v", df.stages, df.metaArgs)
	}
	if got := commandText(df.stages[0].Commands[0]); got != "RUN echo one   two" {
		t.Errorf("step text %q", got)
	}
	// The escape directive changes the continuation character and the
	// lexer's escape.
	df, err = parse([]byte("# escape=`\nFROM busybox\nRUN echo a `\n  b\nENV P=C:\\dir\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := commandText(df.stages[0].Commands[0]); got != "RUN echo a   b" {
		t.Errorf("step text with escape=`: %q", got)
	}
	if df.escape != '`' {
		t.Errorf("escape %q", df.escape)
	}
	for _, tc := range []struct{ df, want string }{
		{"FROM busybox\nFROBNICATE bar\n", `dockerfile parse error on line 2: unknown instruction: FROBNICATE (instruction "FROBNICATE bar")`},
		{"# escape=x\nFROM busybox\n", "invalid escape token"},
		{"RUN true\n", "no build stage in current context"},
		{"", "file with no instructions"},
		{"FROM busybox\nHEALTHCHECK --interval=x CMD true\n", `line 2`},
	} {
		_, err := parse([]byte(tc.df))
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: error %v, want %q", tc.df, err, tc.want)
		}
	}
}

func TestExposedPorts(t *testing.T) {
	for in, want := range map[string][]string{
		"80": {"80/tcp"}, "53/UDP": {"53/udp"}, "8000-8002/tcp": {"8000/tcp", "8001/tcp", "8002/tcp"}, "1/sctp": {"1/sctp"},
	} {
		if got, err := exposedPorts(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "80/xyz", "9-8", "70000", "1-x"} {
		if _, err := exposedPorts(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: error %v", bad, err)
		}
	}
}

func TestValidSignal(t *testing.T) {
	for _, s := range []string{"SIGTERM", "TERM", "sigint", "9", "SIGRTMIN+3"} {
		if !validSignal(s) {
			t.Errorf("%s refused", s)
		}
	}
	for _, s := range []string{"", "FOO", "0", "65", "SIG"} {
		if validSignal(s) {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestCacheKey checks that every input of a step changes its key.
func TestCacheKey(t *testing.T) {
	base := cacheKey("sha256:aa", "/bin/sh -c true", "network=none")
	if base != cacheKey("sha256:aa", "/bin/sh -c true", "network=none") {
		t.Fatal("the key is not stable")
	}
	for _, k := range []string{
		cacheKey("sha256:ab", "/bin/sh -c true", "network=none"),
		cacheKey("sha256:aa", "/bin/sh -c false", "network=none"),
		cacheKey("sha256:aa", "/bin/sh -c true", "network=host"),
		cacheKey("sha256:aa", "/bin/sh -c true\x00network=none", ""),
	} {
		if k == base {
			t.Errorf("a changed input kept the key %s", k)
		}
	}
}

// TestSequencer writes from stages out of order and checks that the
// output is in stage order, the current stage's lines passing at once.
func TestSequencer(t *testing.T) {
	var out bytes.Buffer
	s := newSequencer(&out, 3)
	w0, w1, w2 := s.writer(0), s.writer(1), s.writer(2)
	w2.Write([]byte("2a "))
	w0.Write([]byte("0a "))
	if out.String() != "0a " {
		t.Errorf("stage 0's line is held: %q", out.String())
	}
	w1.Write([]byte("1a "))
	s.finish(2)
	w0.Write([]byte("0b "))
	s.finish(0)
	w1.Write([]byte("1b "))
	s.finish(1)
	if got := out.String(); got != "0a 0b 1a 1b 2a " {
		t.Errorf("output %q", got)
	}
	var wg sync.WaitGroup
	var out2 bytes.Buffer
	s = newSequencer(&out2, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				s.writer(i).Write([]byte{byte('0' + i)})
			}
			s.finish(i)
		}()
	}
	wg.Wait()
	if got := out2.String(); got != strings.Repeat("0", 100)+strings.Repeat("1", 100) {
		t.Errorf("concurrent output %q", got)
	}
}
