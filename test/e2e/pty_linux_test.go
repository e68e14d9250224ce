package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptyTimeout bounds each wait for a terminal session's output or exit.
const ptyTimeout = 30 * time.Second

// ptySession is a docker command running on a pseudo-terminal, as a user
// types it: docker run -it, docker exec -it, docker attach.
type ptySession struct {
	t    *testing.T
	args []string
	cmd  *exec.Cmd
	pty  *os.File

	mu   sync.Mutex
	out  bytes.Buffer
	seen int // output before this offset was matched by expect
	read chan struct{}
	done chan struct{} // closed once the terminal reached EOF
	exit chan error
}

// startPTY runs docker args with a new terminal (80x24) as its
// controlling terminal and stdio. Cleanup kills it if it still runs.
func (c *CLI) startPTY(args ...string) *ptySession {
	c.t.Helper()
	cmd := exec.Command(dockerCLI, append([]string{"-H", c.host}, args...)...)
	cmd.Env = append(c.env, "TERM=xterm")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 24, Cols: 80})
	if err != nil {
		c.t.Fatalf("start docker %s on a terminal: %v", strings.Join(args, " "), err)
	}
	s := &ptySession{t: c.t, args: args, cmd: cmd, pty: f, read: make(chan struct{}, 1), done: make(chan struct{}), exit: make(chan error, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			select {
			case s.read <- struct{}{}:
			default:
			}
			if err != nil {
				close(s.done)
				return
			}
		}
	}()
	go func() { s.exit <- cmd.Wait() }()
	c.t.Cleanup(func() {
		cmd.Process.Kill()
		f.Close()
	})
	return s
}

// output is everything the terminal showed so far.
func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// expect waits until the terminal shows want after what earlier expects
// matched.
func (s *ptySession) expect(want string) {
	s.t.Helper()
	deadline := time.After(ptyTimeout)
	for {
		s.mu.Lock()
		rest := s.out.String()[s.seen:]
		if i := strings.Index(rest, want); i >= 0 {
			s.seen += i + len(want)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		select {
		case <-s.read:
		case <-s.done:
			// Read what raced with EOF once more, then give up.
			if strings.Contains(s.output()[s.seen:], want) {
				continue
			}
			s.t.Fatalf("docker %s: terminal closed without showing %q; it showed:\n%q", strings.Join(s.args, " "), want, s.output())
		case <-deadline:
			s.t.Fatalf("docker %s: terminal did not show %q within %v; it showed:\n%q", strings.Join(s.args, " "), want, ptyTimeout, s.output())
		}
	}
}

// send types text on the terminal.
func (s *ptySession) send(text string) {
	s.t.Helper()
	if _, err := io.WriteString(s.pty, text); err != nil {
		s.t.Fatalf("type on docker %s's terminal: %v", strings.Join(s.args, " "), err)
	}
}

// wait waits for the docker command to exit and returns its exit code.
func (s *ptySession) wait() int {
	s.t.Helper()
	select {
	case err := <-s.exit:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			s.t.Fatalf("docker %s: %v", strings.Join(s.args, " "), err)
		}
		return 0
	case <-time.After(ptyTimeout):
		s.t.Fatalf("docker %s did not exit within %v; terminal:\n%q", strings.Join(s.args, " "), ptyTimeout, s.output())
		return -1
	}
}
