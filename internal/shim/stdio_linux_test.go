package shim_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/shim"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestAttach(t *testing.T) {
	r := newRig(t, withArgs("cat"))
	opts := r.opts()
	opts.Stdin = true
	c := r.start(opts)
	ctx := ctxT(t)
	stdin, stdout, stderr, err := c.Attach(ctx, shim.AttachOptions{Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	if stdin == nil || stdout == nil || stderr == nil {
		t.Fatalf("attach returned nil streams: %v %v %v", stdin, stdout, stderr)
	}
	_, out2, _, err := c.Attach(ctx, shim.AttachOptions{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	o1, o2, e1 := collect(stdout), collect(out2), collect(stderr)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "hello\n"); err != nil {
		t.Fatal(err)
	}
	o1.waitFor(t, "hello\n")
	o2.waitFor(t, "hello\n")
	// A third attacher joins late: it sees only what comes after.
	_, out3, _, err := c.Attach(ctx, shim.AttachOptions{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	o3 := collect(out3)
	if _, err := io.WriteString(stdin, "again\n"); err != nil {
		t.Fatal(err)
	}
	o3.waitFor(t, "again\n")
	// Closing an attacher's stdin leaves the container's open.
	stdin.Close()
	if st, err := c.State(ctx); err != nil || st.Status != shim.StatusRunning {
		t.Fatalf("state after detaching stdin = %+v, %v; want running", st, err)
	}
	if err := c.CloseStdin(ctx); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.Wait(ctx); err != nil || exit.Code != 0 {
		t.Fatalf("wait = %+v, %v; want code 0", exit, err)
	}
	for _, o := range []*collector{o1, o2, o3, e1} {
		o.waitEOF(t)
	}
	if got := o1.String(); got != "hello\nagain\n" {
		t.Errorf("first attacher got %q", got)
	}
	if got := o3.String(); got != "again\n" {
		t.Errorf("late attacher got %q", got)
	}
	if got := e1.String(); got != "" {
		t.Errorf("stderr attacher got %q", got)
	}
	if got := logText(readLog(t, r.logPath), "stdout"); got != "hello\nagain\n" {
		t.Errorf("log = %q", got)
	}
	// Attaching to a container that exited returns EOF at once.
	_, late, _, err := c.Attach(ctx, shim.AttachOptions{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	collect(late).waitEOF(t)
}

func TestAttachWithoutStdin(t *testing.T) {
	r := newRig(t, withArgs("sleep", "1000"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	if _, _, _, err := c.Attach(ctx, shim.AttachOptions{Stdin: true}); !errdefs.IsConflict(err) {
		t.Errorf("attach stdin without --stdin = %v, want a conflict", err)
	}
	if err := c.Resize(ctx, 80, 24); !errdefs.IsConflict(err) {
		t.Errorf("resize without a terminal = %v, want a conflict", err)
	}
	if err := c.Kill(ctx, 0, false); !errdefs.IsInvalidArgument(err) {
		t.Errorf("kill with signal 0 = %v, want invalid argument", err)
	}
}

func withTerminal(args ...string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Process.Args = args
		s.Process.Terminal = true
	}
}

func TestTerminal(t *testing.T) {
	r := newRig(t, withTerminal("sh"))
	opts := r.opts()
	opts.Terminal, opts.Stdin = true, true
	c := r.start(opts)
	ctx := ctxT(t)
	stdin, stdout, stderr, err := c.Attach(ctx, shim.AttachOptions{Stdin: true, Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	if stderr != nil {
		t.Fatal("attach returned a stderr stream for a terminal")
	}
	out := collect(stdout)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Resize(ctx, 100, 30); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "stty size\n"); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "30 100")
	if _, err := io.WriteString(stdin, "echo to-stderr >&2; exit 5\n"); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.Wait(ctx); err != nil || exit.Code != 5 {
		t.Fatalf("wait = %+v, %v; want code 5", exit, err)
	}
	out.waitEOF(t)
	entries := readLog(t, r.logPath)
	for _, e := range entries {
		if e.Stream != "stdout" {
			t.Errorf("terminal log entry on %s: %+v", e.Stream, e)
		}
	}
	if text := logText(entries, "stdout"); !strings.Contains(text, "30 100") || !strings.Contains(text, "to-stderr") {
		t.Errorf("log = %q, want the stty output and the stderr line", text)
	}
}

// An attacher that never reads does not hold the container back: it is
// dropped, and the log gets everything.
// TestTerminalInputBeforeStart: what an attacher types before the start
// call (docker run -it sends input as soon as it is attached) waits for
// the pty, which only exists once the container is made, and reaches the
// shell.
func TestTerminalInputBeforeStart(t *testing.T) {
	r := newRig(t, withTerminal("sh"))
	opts := r.opts()
	opts.Terminal, opts.Stdin = true, true
	c := r.start(opts)
	ctx := ctxT(t)
	stdin, stdout, _, err := c.Attach(ctx, shim.AttachOptions{Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	out := collect(stdout)
	if _, err := io.WriteString(stdin, "echo early-$((6*7)); exit 3\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	out.waitFor(t, "early-42")
	if exit, err := c.Wait(ctx); err != nil || exit.Code != 3 {
		t.Fatalf("wait = %+v, %v; want code 3", exit, err)
	}
}

func TestStalledAttacher(t *testing.T) {
	r := newRig(t, withArgs("sh", "-c", "yes 0123456789012345678901234567890123456789 | head -n 100000; echo done"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	_, stalled, _, err := c.Attach(ctx, shim.AttachOptions{Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.Wait(ctx); err != nil || exit.Code != 0 {
		t.Fatalf("wait = %+v, %v", exit, err)
	}
	entries := readLog(t, r.logPath)
	if len(entries) != 100001 || entries[len(entries)-1].Log != "done\n" {
		t.Fatalf("log has %d entries, want 100001 ending with done", len(entries))
	}
	// The stalled attacher got a part, then EOF.
	n, err := io.Copy(io.Discard, stalled)
	if err != nil || n >= 100000*41 {
		t.Errorf("stalled attacher read %d bytes (%v), want less than the whole output", n, err)
	}
}

func TestExec(t *testing.T) {
	r := newRig(t, withArgs("sleep", "1000"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	if err := c.Exec(ctx, "early", process("true"), shim.ExecIO{}); !errdefs.IsConflict(err) {
		t.Fatalf("exec before start = %v, want a conflict", err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	if err := c.Exec(ctx, "out", process("sh", "-c", "echo exec-out; echo exec-err >&2; exit 4"), shim.ExecIO{Stdout: &stdout, Stderr: &stderr}); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.ExecWait(ctx, "out"); err != nil || exit.Code != 4 {
		t.Fatalf("exec wait = %+v, %v; want code 4", exit, err)
	}
	if stdout.String() != "exec-out\n" || stderr.String() != "exec-err\n" {
		t.Errorf("exec output = %q, %q", stdout.String(), stderr.String())
	}
	if st, err := c.ExecState(ctx, "out"); err != nil || st.Status != shim.StatusStopped || st.ExitCode != 4 || st.Pid <= 0 {
		t.Errorf("exec state = %+v, %v; want stopped, code 4", st, err)
	}
	if err := c.Exec(ctx, "out", process("true"), shim.ExecIO{}); !errdefs.IsAlreadyExists(err) {
		t.Errorf("exec with a used id = %v, want already exists", err)
	}
	if err := c.Exec(ctx, "bad/id", process("true"), shim.ExecIO{}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("exec with a bad id = %v, want invalid argument", err)
	}
	if _, err := c.ExecState(ctx, "nope"); !errdefs.IsNotFound(err) {
		t.Errorf("state of an unknown exec = %v, want not found", err)
	}
	// A process the runtime cannot run: its error, and the id is free again.
	if err := c.Exec(ctx, "missing", process("/no/such/binary"), shim.ExecIO{}); err == nil || !strings.Contains(err.Error(), "/no/such/binary") {
		t.Errorf("exec of a missing binary = %v, want the runtime's error naming it", err)
	}
	if _, err := c.ExecState(ctx, "missing"); !errdefs.IsNotFound(err) {
		t.Errorf("a failed exec is still known: %v", err)
	}

	// Stdin piped in; its end closes the process's stdin.
	var catOut bytes.Buffer
	if err := c.Exec(ctx, "cat", process("cat"), shim.ExecIO{Stdin: strings.NewReader("piped\n"), Stdout: &catOut}); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.ExecWait(ctx, "cat"); err != nil || exit.Code != 0 || catOut.String() != "piped\n" {
		t.Errorf("cat exec = %+v, %v, output %q", exit, err, catOut.String())
	}

	// Kill an exec'd process.
	if err := c.Exec(ctx, "sleep", process("sleep", "1000"), shim.ExecIO{}); err != nil {
		t.Fatal(err)
	}
	if st, err := c.ExecState(ctx, "sleep"); err != nil || st.Status != shim.StatusRunning {
		t.Fatalf("exec state = %+v, %v; want running", st, err)
	}
	if err := c.ExecKill(ctx, "sleep", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.ExecWait(ctx, "sleep"); err != nil || exit.Code != 137 {
		t.Errorf("killed exec = %+v, %v; want code 137", exit, err)
	}
	if err := c.ExecDelete(ctx, "sleep"); err != nil {
		t.Errorf("exec delete: %v", err)
	}
	if _, err := c.ExecState(ctx, "sleep"); !errdefs.IsNotFound(err) {
		t.Errorf("deleted exec = %v, want not found", err)
	}

	// With a terminal.
	inR, inW := io.Pipe()
	defer inW.Close()
	outR, outW := io.Pipe()
	tty := collect(outR)
	p := process("sh")
	p.Terminal = true
	if err := c.Exec(ctx, "tty", p, shim.ExecIO{Stdin: inR, Stdout: outW, Stderr: io.Discard}); err != nil {
		t.Fatal(err)
	}
	if err := c.ExecResize(ctx, "tty", 120, 40); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(inW, "stty size; tty; exit 6\n"); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.ExecWait(ctx, "tty"); err != nil || exit.Code != 6 {
		t.Fatalf("tty exec = %+v, %v; want code 6", exit, err)
	}
	outW.Close()
	tty.waitEOF(t)
	if got := tty.String(); !strings.Contains(got, "40 120") || !strings.Contains(got, "/dev/pts/") {
		t.Errorf("tty exec output = %q, want its size and a pts", got)
	}
	if st, err := c.ExecState(ctx, "tty"); err != nil || !st.Terminal {
		t.Errorf("tty exec state = %+v, %v", st, err)
	}
	// Exec output is not the container's.
	if logContains(r.logPath, "exec-out") {
		t.Error("exec output reached the container log")
	}
}

// TestAttachOutputOutlivesDelete starts reading an attacher's streams
// only after the container exited and the shim stopped serving, as a
// daemon's attach may when its client is slow: the shim hands over the
// rest of the output before it exits, and Release leaves the streams to
// end with it.
func TestAttachOutputOutlivesDelete(t *testing.T) {
	const errBytes = 256 << 10 // more than a socket's buffer holds
	r := newRig(t, withArgs("sh", "-c", "echo out; head -c 262144 /dev/zero >&2"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	_, stdout, stderr, err := c.Attach(ctx, shim.AttachOptions{Stdout: true, Stderr: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.Wait(ctx); err != nil || exit.Code != 0 {
		t.Fatalf("wait = %+v, %v; want code 0", exit, err)
	}
	deleted := make(chan error, 1)
	go func() {
		_, err := c.Delete(ctx)
		deleted <- err
	}()
	// The shim removes its socket once it answered the delete and
	// stopped serving; only then does this attacher read.
	eventually(t, "the shim's socket gone", func() bool {
		_, err := os.Stat(filepath.Join(r.stateDir, "shim.sock"))
		return os.IsNotExist(err)
	})
	c.Release()
	o, e := collect(stdout), collect(stderr)
	o.waitEOF(t)
	e.waitEOF(t)
	if got := o.String(); got != "out\n" {
		t.Errorf("stdout = %q, want %q", got, "out\n")
	}
	if got := e.String(); len(got) != errBytes || strings.Trim(got, "\x00") != "" {
		t.Errorf("stderr: %d bytes, want %d zeros", len(got), errBytes)
	}
	if err := <-deleted; err != nil {
		t.Errorf("delete: %v", err)
	}
}

// TestReleaseLeavesCalls: a call in flight when the client is released
// still gets its answer (as a kill racing a container's exit must);
// new calls are refused.
func TestReleaseLeavesCalls(t *testing.T) {
	r := newRig(t, withArgs("sleep", "100"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sockets := func() int {
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", c.ShimPid()))
		n := 0
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", c.ShimPid(), fd.Name())); err == nil && strings.HasPrefix(l, "socket:") {
				n++
			}
		}
		return n
	}
	// The shim's listener alone, once the start call's connection went.
	eventually(t, "the shim idle", func() bool { return sockets() == 1 })
	waited := make(chan error, 1)
	go func() {
		exit, err := c.Wait(ctx)
		if err == nil && exit.Code != 137 {
			err = fmt.Errorf("exit %+v, want 137 (SIGKILL)", exit)
		}
		waited <- err
	}()
	// In flight once the shim accepted its connection.
	eventually(t, "the wait call in flight", func() bool { return sockets() == 2 })
	c.Release()
	if _, err := c.State(ctx); !errdefs.IsUnavailable(err) {
		t.Errorf("a call after Release: %v, want unavailable", err)
	}
	other, err := shim.Connect(ctx, r.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Kill(ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Errorf("the wait in flight at Release: %v", err)
	}
}
