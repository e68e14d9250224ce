package daemon

import (
	"reflect"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestCheckPSArgs(t *testing.T) {
	for _, ok := range []string{"-ef", "aux", "-o pid,comm", "-o pid=PID,comm", "-eo pid=PIDX"} {
		if err := checkPSArgs(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	err := checkPSArgs("-o user=PID,comm")
	if !errdefs.IsInvalidArgument(err) || err.Error() != `specifying "user=PID,comm" is not allowed: `+errdefs.ErrInvalidArgument.Error() {
		t.Errorf("renamed PID column: %v", err)
	}
}

func TestPidsArg(t *testing.T) {
	if got := pidsArg([]int{1, 22, 333}); got != "-q1,22,333" {
		t.Errorf("got %q", got)
	}
	if got := pidsArg(nil); got != "-q" {
		t.Errorf("got %q", got)
	}
}

func TestAsciiFields(t *testing.T) {
	got := asciiFields(" a\tb\u00a0c  d\n")
	if want := []string{"a", "b\u00a0c", "d"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestParsePS(t *testing.T) {
	const out = `UID          PID    PPID  C STIME TTY          TIME CMD
root           1       0  0 10:00 ?        00:00:01 /sbin/init
root         100      90  0 10:01 ?        00:00:00 sleep 1000
root         101     100  0 10:01 ?        00:00:00 sh -c echo  hi
`
	top, err := parsePS([]byte(out), []int{100, 101, 555})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}; !reflect.DeepEqual(top.Titles, want) {
		t.Errorf("titles %q", top.Titles)
	}
	want := [][]string{
		{"root", "100", "90", "0", "10:01", "?", "00:00:00", "sleep 1000"},
		{"root", "101", "100", "0", "10:01", "?", "00:00:00", "sh -c echo hi"},
	}
	if !reflect.DeepEqual(top.Processes, want) {
		t.Errorf("processes %q", top.Processes)
	}

	// Thread rows (ps m) follow their process.
	const threads = `USER  PID %CPU COMMAND
root  100  0.0 sleep
root    -  0.0 -
root  200  0.0 other
root    -  0.0 -
`
	top, err = parsePS([]byte(threads), []int{100})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"root", "100", "0.0", "sleep"}, {"root", "-", "0.0", "-"}}; !reflect.DeepEqual(top.Processes, want) {
		t.Errorf("threads %q", top.Processes)
	}

	if _, err := parsePS([]byte("USER COMMAND\nroot sh\n"), nil); err == nil || err.Error() != "Couldn't find PID field in ps output" {
		t.Errorf("no PID column: %v", err)
	}
	if _, err := parsePS([]byte("PID CMD\nabc sh\n"), nil); err == nil {
		t.Error("bad pid: no error")
	}
}
