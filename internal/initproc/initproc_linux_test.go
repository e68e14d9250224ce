package initproc_test

import (
	"bufio"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// deadline bounds every wait of these tests: a line that never comes or an
// init that never exits fails the test instead of hanging it.
const deadline = 10 * time.Second

// initPath is the berth-init binary under test, set by TestMain.
var initPath string

// TestMain builds cmd/berth-init the way the Makefile does (static,
// stripped) unless BERTH_BIN_DIR holds a prebuilt one, and removes it
// afterwards.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BERTH_BIN_DIR"); dir != "" {
		initPath = filepath.Join(dir, "berth-init")
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "berth-init-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "make build dir:", err)
		os.Exit(1)
	}
	initPath = filepath.Join(dir, "berth-init")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version=test",
		"-o", initPath, "github.com/berth-project/berth/cmd/berth-init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	code := 1
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build berth-init: %v\n%s", err, out)
	} else {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// initProc is a berth-init running as PID 1 of a new pid namespace.
type initProc struct {
	cmd   *exec.Cmd
	lines chan string // the lines the container writes to stdout
	stdin *os.File    // write end of its stdin pipe (nil with a tty)
	done  chan struct{}
	err   error // Wait's result, once done is closed
}

// startInit runs berth-init with args as PID 1 of a new pid namespace,
// with stdout (and stderr) read line by line into lines. stdin is a pipe
// unless tty is given. The namespace is killed at cleanup if still alive.
func startInit(t *testing.T, tty *os.File, sys *syscall.SysProcAttr, args ...string) *initProc {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { outR.Close() })
	cmd := exec.Command(initPath, args...)
	cmd.Stdout, cmd.Stderr = outW, outW
	if sys == nil {
		sys = &syscall.SysProcAttr{}
	}
	sys.Cloneflags |= unix.CLONE_NEWPID
	sys.Pdeathsig = unix.SIGKILL
	cmd.SysProcAttr = sys
	p := &initProc{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	var inR *os.File
	if tty != nil {
		cmd.Stdin = tty
	} else {
		inR, p.stdin, err = os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin = inR
		t.Cleanup(func() { p.stdin.Close() })
	}
	err = cmd.Start()
	outW.Close()
	if inR != nil {
		inR.Close()
	}
	if err != nil {
		t.Fatalf("start berth-init: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			// Killing PID 1 kills the whole namespace.
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// runScript starts berth-init with `/bin/sh -c script`.
func runScript(t *testing.T, script string) *initProc {
	t.Helper()
	return startInit(t, nil, nil, "/bin/sh", "-c", script)
}

// expect fails t unless the next line is want.
func (p *initProc) expect(t *testing.T, want string) {
	t.Helper()
	if got := p.next(t); got != want {
		t.Fatalf("got line %q, want %q", got, want)
	}
}

// next returns the next line of output.
func (p *initProc) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatal("output ended early")
		}
		return l
	case <-time.After(deadline):
		t.Fatalf("no output line within %v", deadline)
	}
	return ""
}

// exitCode waits for berth-init to exit and returns its exit code.
func (p *initProc) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(deadline):
		t.Fatalf("berth-init did not exit within %v", deadline)
	}
	if p.err != nil {
		if _, ok := p.err.(*exec.ExitError); !ok {
			t.Fatalf("wait for berth-init: %v", p.err)
		}
	}
	return p.cmd.ProcessState.ExitCode()
}

func TestExitCode(t *testing.T) {
	p := runScript(t, `echo "parent $PPID"; exit 3`)
	p.expect(t, "parent 1") // berth-init really is PID 1
	if code := p.exitCode(t); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
}

func TestDoubleDashAndArgs(t *testing.T) {
	p := startInit(t, nil, nil, "--", "sh", "-c", `echo "$0 $1"; exit 7`, "a b", "c")
	p.expect(t, "a b c")
	if code := p.exitCode(t); code != 7 {
		t.Fatalf("exit code %d, want 7", code)
	}
}

func TestKilledBySignal(t *testing.T) {
	p := runScript(t, `kill -KILL $$`)
	if code := p.exitCode(t); code != 128+9 {
		t.Fatalf("exit code %d, want 137", code)
	}
}

// TestForwardsSignals sends signals to berth-init and checks that the
// child gets each of them, that a grandchild in the child's process group
// does not (forwarded to the pid, not the group), and that SIGTERM ends
// the child with the status of its trap.
func TestForwardsSignals(t *testing.T) {
	sigs := []syscall.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGUSR2,
		unix.SIGWINCH, unix.SIGALRM, unix.SIGCONT, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGPIPE}
	var traps strings.Builder
	for _, s := range sigs {
		name := strings.TrimPrefix(unix.SignalName(s), "SIG")
		fmt.Fprintf(&traps, "trap 'echo %s' %s\n", name, name)
	}
	script := `
sh -c 'trap "echo gc USR1" USR1; trap "echo gc USR2; exit 0" USR2; echo gc-ready; sleep 1000 & wait' &
gc=$!
` + traps.String() + `
trap 'echo USR1; kill -USR2 $gc' USR1
trap 'echo TERM; exit 42' TERM
sleep 1000 &
echo ready
while :; do wait $!; done
`
	p := runScript(t, script)
	got := []string{p.next(t), p.next(t)}
	slices.Sort(got)
	if !slices.Equal(got, []string{"gc-ready", "ready"}) {
		t.Fatalf("got %q, want the ready lines", got)
	}
	pid := p.cmd.Process.Pid

	// Had berth-init signalled the group, the grandchild would have USR1
	// pending before the child's trap sends it USR2.
	if err := unix.Kill(pid, unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	p.expect(t, "USR1")
	p.expect(t, "gc USR2")

	for _, s := range sigs {
		if err := unix.Kill(pid, s); err != nil {
			t.Fatal(err)
		}
		p.expect(t, strings.TrimPrefix(unix.SignalName(s), "SIG"))
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.expect(t, "TERM")
	// Two sleeps are left behind: berth-init exits all the same.
	if code := p.exitCode(t); code != 42 {
		t.Fatalf("exit code %d, want 42", code)
	}
}

// TestReapsOrphans makes orphans that exit at once (double fork), so that
// they are re-parented to berth-init; only berth-init can reap them. The
// child stays alive meanwhile: the test sees each orphan's /proc entry go
// and no zombie left under berth-init.
func TestReapsOrphans(t *testing.T) {
	const n = 5
	p := runScript(t, `
for i in 1 2 3 4 5; do
	( sh -c 'read pid rest </proc/self/stat; echo "orphan $pid"' & )
done
read line
exit 0
`)
	initPid := p.cmd.Process.Pid
	var orphans []int
	for range n {
		var pid int
		if _, err := fmt.Sscanf(p.next(t), "orphan %d", &pid); err != nil {
			t.Fatal(err)
		}
		orphans = append(orphans, pid)
	}
	for _, pid := range orphans {
		waitGone(t, pid)
	}
	if z := zombiesOf(t, initPid); len(z) > 0 {
		t.Fatalf("zombies left under berth-init: %v", z)
	}
	select {
	case <-p.done:
		t.Fatal("berth-init exited before its child")
	default:
	}
	if _, err := p.stdin.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// waitGone fails t unless /proc/pid disappears (the process was reaped)
// within the deadline.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid))
		if os.IsNotExist(err) {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("process %d not reaped within %v (state %s)", pid, deadline, procState(pid))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// procState returns the state letter of pid from /proc/pid/stat, or "?".
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 1 {
		return "?"
	}
	return f[0]
}

// zombiesOf returns the pids of the zombies whose parent is ppid.
func zombiesOf(t *testing.T, ppid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var zs []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) >= 2 && f[0] == "Z" && f[1] == strconv.Itoa(ppid) {
			zs = append(zs, pid)
		}
	}
	return zs
}

// TestExitsWithGrandchildrenLeft checks that berth-init exits with its
// child's status at once although a grandchild still runs, and that the
// grandchild dies with the namespace.
func TestExitsWithGrandchildrenLeft(t *testing.T) {
	p := runScript(t, `
sh -c 'read pid rest </proc/self/stat; echo "gc $pid"; exec sleep 1000' &
read line
exit 5
`)
	var gc int
	if _, err := fmt.Sscanf(p.next(t), "gc %d", &gc); err != nil {
		t.Fatal(err)
	}
	if _, err := p.stdin.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	if code := p.exitCode(t); code != 5 {
		t.Fatalf("exit code %d, want 5", code)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(gc)); !os.IsNotExist(err) {
		t.Fatalf("grandchild %d outlived the pid namespace (stat: %v)", gc, err)
	}
}

func TestExecErrors(t *testing.T) {
	dir := t.TempDir()
	noExec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, cmd, msg string
		code           int
	}{
		{"not in PATH", "berth-no-such-command", "berth-init: exec berth-no-such-command: executable file not found in $PATH", 127},
		{"missing path", "/no/such/file", "berth-init: exec /no/such/file: no such file or directory", 127},
		{"not executable", noExec, "berth-init: exec " + noExec + ": permission denied", 126},
		{"directory", dir, "berth-init: exec " + dir + ": permission denied", 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startInit(t, nil, nil, tc.cmd)
			p.expect(t, tc.msg)
			if code := p.exitCode(t); code != tc.code {
				t.Fatalf("exit code %d, want %d", code, tc.code)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	for _, tc := range []struct {
		args []string
		out  string // start of the first line of output
		code int
	}{
		{[]string{"--version"}, "berth-init version ", 0},
		{nil, "berth-init: no command given", 2},
		{[]string{"--"}, "berth-init: no command given", 2},
		{[]string{"--bogus", "sh"}, "berth-init: unknown option --bogus", 2},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, err := exec.Command(initPath, tc.args...).CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if first, _, _ := strings.Cut(string(out), "\n"); !strings.HasPrefix(first, tc.out) || code != tc.code {
				t.Fatalf("got %q, exit %d; want a first line starting %q, exit %d", out, code, tc.out, tc.code)
			}
		})
	}
}

// TestTerminalForeground gives berth-init a pty as controlling terminal
// (as `docker run -it` does): the child must run in its own process group,
// own the terminal's foreground, and get Ctrl-C from the terminal itself.
func TestTerminalForeground(t *testing.T) {
	master, slave := openPTY(t)
	p := startInit(t, slave, &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}, "/bin/sh", "-c", `
trap 'echo INT; exit 33' INT
read pid comm state ppid pgrp session tty tpgid rest </proc/self/stat
echo "ids $pid $pgrp $tpgid"
sleep 1000 & wait $!
`)
	var pid, pgrp, tpgid int
	if _, err := fmt.Sscanf(p.next(t), "ids %d %d %d", &pid, &pgrp, &tpgid); err != nil {
		t.Fatal(err)
	}
	if pgrp != pid || pgrp == p.cmd.Process.Pid {
		t.Fatalf("child %d in process group %d, want its own (berth-init is %d)", pid, pgrp, p.cmd.Process.Pid)
	}
	if tpgid != pgrp {
		t.Fatalf("terminal foreground group %d, want the child's %d", tpgid, pgrp)
	}
	if _, err := master.Write([]byte{0x03}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	p.expect(t, "INT")
	if code := p.exitCode(t); code != 33 {
		t.Fatalf("exit code %d, want 33", code)
	}
}

// TestTerminalNotControlling gives berth-init a tty on stdin that is not
// its controlling terminal: it must not try to hand the foreground over.
func TestTerminalNotControlling(t *testing.T) {
	_, slave := openPTY(t)
	p := startInit(t, slave, &syscall.SysProcAttr{Setsid: true}, "/bin/sh", "-c", `
read pid comm state ppid pgrp rest </proc/self/stat
echo "ids $pid $pgrp"
`)
	var pid, pgrp int
	if _, err := fmt.Sscanf(p.next(t), "ids %d %d", &pid, &pgrp); err != nil {
		t.Fatal(err)
	}
	if pgrp != pid {
		t.Fatalf("child %d in process group %d, want its own", pid, pgrp)
	}
	if code := p.exitCode(t); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// openPTY opens a new pty pair, closed at cleanup.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlock pty: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatalf("pty number: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open pty slave: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestStatic checks that the binary needs no dynamic loader: it runs in
// images of any libc, or none.
func TestStatic(t *testing.T) {
	f, err := elf.Open(initPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Fatalf("berth-init is dynamically linked (%v)", prog.Type)
		}
	}
}
