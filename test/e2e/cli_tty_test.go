package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// cliTerm is berth running on a pseudo-terminal, as a user types it.
type cliTerm struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	seen int
	more chan struct{}
	exit chan error
}

// startTerm runs berth args on a new 24x80 terminal; cleanup kills it if
// it still runs.
func (c *berthCLI) startTerm(args ...string) *cliTerm {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"-H", c.host}, args...)...)
	cmd.Env = append(c.env, "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		c.t.Fatal(err)
	}
	tm := &cliTerm{t: c.t, cmd: cmd, pty: f, more: make(chan struct{}, 1), exit: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				tm.mu.Lock()
				tm.out.Write(buf[:n])
				tm.mu.Unlock()
				select {
				case tm.more <- struct{}{}:
				default:
				}
			}
			if err != nil {
				return
			}
		}
	}()
	go func() { tm.exit <- cmd.Wait() }()
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
	})
	return tm
}

// expect waits until the terminal shows s after what was matched before.
func (tm *cliTerm) expect(s string) {
	tm.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		tm.mu.Lock()
		out := tm.out.String()
		i := strings.Index(out[tm.seen:], s)
		if i >= 0 {
			tm.seen += i + len(s)
		}
		tm.mu.Unlock()
		if i >= 0 {
			return
		}
		select {
		case <-tm.more:
		case <-deadline:
			tm.t.Fatalf("terminal never showed %q; screen:\n%s", s, out)
		}
	}
}

func (tm *cliTerm) send(s string) {
	tm.t.Helper()
	if _, err := io.WriteString(tm.pty, s); err != nil {
		tm.t.Fatal(err)
	}
}

// wait returns the exit status of berth.
func (tm *cliTerm) wait() int {
	tm.t.Helper()
	select {
	case err := <-tm.exit:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			tm.t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		tm.mu.Lock()
		defer tm.mu.Unlock()
		tm.t.Fatalf("berth did not exit; screen:\n%s", tm.out.String())
		return -1
	}
}

// TestCLIRunInteractiveTTY types into berth run -it busybox sh through a
// real pty: the shell sees a terminal of our size, follows a resize,
// answers, and its exit status is berth's. Then ctrl-p ctrl-q detaches
// from a second shell, which keeps running, and attach takes it back.
func TestCLIRunInteractiveTTY(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()

	tm := c.startTerm("run", "-it", "--rm", "busybox", "sh")
	tm.expect("# ") // the prompt: the terminal is raw from here on
	tm.send("stty size; tty\r")
	tm.expect("24 80")
	tm.expect("/dev/")
	if err := pty.Setsize(tm.pty, &pty.Winsize{Rows: 40, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	// SIGWINCH reaches berth (the terminal's foreground process); it
	// resizes the container's terminal. Poll until the shell sees it.
	cliPoll(t, "the resize to reach the container", func() bool {
		tm.send("stty size\r")
		select {
		case <-tm.more:
		case <-time.After(time.Second):
		}
		tm.mu.Lock()
		defer tm.mu.Unlock()
		return strings.Contains(tm.out.String()[tm.seen:], "40 100")
	})
	tm.send("echo $((6*7))\r")
	tm.expect("42")
	tm.send("exit 3\r")
	if code := tm.wait(); code != 3 {
		t.Errorf("run -it exit status %d, want 3", code)
	}

	tm = c.startTerm("run", "-it", "--name", "bg", "busybox", "sh")
	// Wait for the shell's answer, not the terminal's echo: only then is
	// the terminal raw, so ctrl-q is not taken as XON.
	tm.send("echo $((40+2))\r")
	tm.expect("42")
	tm.send("\x10\x11") // ctrl-p ctrl-q
	if code := tm.wait(); code != 0 {
		t.Errorf("detach: exit status %d", code)
	}
	if out := c.ok("inspect", "--format", "{{.State.Running}}", "bg"); out != "true\n" {
		t.Errorf("container after detach: running=%q", out)
	}
	tm = c.startTerm("attach", "bg")
	tm.send("echo back $((1+1))\r")
	tm.expect("back 2")
	tm.send("exit 4\r")
	if code := tm.wait(); code != 4 {
		t.Errorf("attach exit status %d, want 4", code)
	}

	// exec -it in a running container.
	c.ok("run", "-d", "--name", "svc", "busybox", "sleep", "1000")
	tm = c.startTerm("exec", "-it", "svc", "sh")
	tm.expect("# ")
	tm.send("stty size\r")
	tm.expect("24 80")
	tm.send("exit 6\r")
	if code := tm.wait(); code != 6 {
		t.Errorf("exec -it exit status %d, want 6", code)
	}
	c.ok("rm", "-f", "svc", "bg")

	// -t without a terminal on stdin: docker's refusal.
	if r := c.run("x", "run", "-it", "busybox", "sh"); r.ExitCode != 125 || !strings.Contains(r.Stderr, "the input device is not a TTY") {
		t.Errorf("run -it without a tty: %s", r)
	}
}

// TestCLISignalProxy sends SIGTERM to berth run (no TTY): berth passes it
// to the container, whose trap runs, and berth exits with its status.
func TestCLISignalProxy(t *testing.T) {
	d := startDaemon(t)
	c := d.berthCLI(t)
	c.importBusybox()
	cmd := exec.Command(c.bin, "-H", c.host, "run", "--rm", "busybox", "sh", "-c",
		`trap 'echo got TERM; exit 9' TERM; echo ready; while true; do sleep 1; done`)
	cmd.Env = c.env
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	cliPoll(t, "the container to start", func() bool { return strings.Contains(out.String(), "ready") })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 9 || !strings.Contains(out.String(), "got TERM") {
			t.Errorf("berth run after SIGTERM: %v\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("berth run did not end after SIGTERM:\n%s", out.String())
	}
}
