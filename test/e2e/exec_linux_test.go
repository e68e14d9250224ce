package e2e

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestExec runs docker exec with and without a terminal and checks exit
// codes, options and errors.
func TestExec(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	c.ok("run", "-d", "--name", "ex", "-e", "FROM_RUN=1", "busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "ex")

	t.Run("tty", func(t *testing.T) {
		s := e.cli(t).startPTY("exec", "-it", "ex", "sh")
		s.expect("/ # ")
		s.send("echo $((6*7)) $FROM_RUN; tty; stty size\r")
		s.expect("42 1")
		s.expect("/dev/pts/0")
		s.expect("24 80")
		s.send("exit 5\r")
		if code := s.wait(); code != 5 {
			t.Errorf("docker exec -it ... exit 5: exit %d\n%q", code, s.output())
		}
	})

	t.Run("options and exit codes", func(t *testing.T) {
		c := e.cli(t)
		if out := c.ok("exec", "-u", "berth", "-w", "/tmp", "-e", "A=1", "ex", "sh", "-c", `id -un; pwd; echo "$A$FROM_RUN"`); out != "berth\n/tmp\n11\n" {
			t.Errorf("exec -u -w -e: %q", out)
		}
		r := c.run("", "exec", "ex", "sh", "-c", "echo o; echo e >&2; exit 4")
		if r.ExitCode != 4 || r.Stdout != "o\n" || r.Stderr != "e\n" {
			t.Errorf("exec ... exit 4: %s", r)
		}
		if out := c.ok("exec", "-i", "ex", "cat"); out != "" {
			t.Errorf("exec -i cat with no input: %q", out)
		}
		if r := c.run("line one\nline two\n", "exec", "-i", "ex", "wc", "-l"); r.ExitCode != 0 || strings.TrimSpace(r.Stdout) != "2" {
			t.Errorf("exec -i wc -l: %s", r)
		}
		c.ok("exec", "-d", "ex", "sh", "-c", "echo detached > /tmp/flag")
		poll(t, "exec -d runs its command", func() bool {
			return c.run("", "exec", "ex", "cat", "/tmp/flag").Stdout == "detached\n"
		})
		// The CLI prints the start error of an exec where its output goes.
		r = c.run("", "exec", "ex", "nope")
		if r.ExitCode != 126 || !strings.Contains(r.Stdout+r.Stderr, `exec: "nope": executable file not found in $PATH`) {
			t.Errorf("exec of a missing program: %s", r)
		}
	})

	t.Run("errors", func(t *testing.T) {
		c := e.cli(t)
		c.failWith(e, 1, "No such container: nosuch", "exec", "nosuch", "true")
		c.ok("create", "--name", "idle", "busybox", "true")
		defer c.ok("rm", "idle")
		id := c.id("idle")
		c.failWith(e, 1, "container "+id+" is not running", "exec", "idle", "true")
		c.ok("pause", "ex")
		// Docker names the container as the request did.
		c.failWith(e, 1, "container ex is paused, unpause the container before exec", "exec", "ex", "true")
		c.ok("unpause", "ex")
	})
}

// TestAttachAndLogs checks docker run -it, docker attach (with a terminal
// and the detach keys, and without one) and docker logs, following a
// container until it exits.
func TestAttachAndLogs(t *testing.T) {
	t.Parallel()
	e := startEngine(t)

	t.Run("run -it", func(t *testing.T) {
		c := e.cli(t)
		s := c.startPTY("run", "-it", "--name", "it", "busybox", "sh")
		defer c.ok("rm", "-f", "it")
		s.expect("/ # ")
		if e.isBerth() {
			// The CLI sends the terminal's size with the create (API
			// 1.42 and later): right from the start.
			s.send("tty; stty size; echo $HOSTNAME-$TERM\r")
			s.expect("/dev/pts/0")
			s.expect("24 80")
		} else {
			// dockerd 20.10 (API 1.41) gets the size by a resize
			// after the start, which races with the shell.
			s.send(`tty; until [ "$(stty size 2>&1)" = "24 80" ]; do sleep 0.05; done; echo size-$((24*80)); echo $HOSTNAME-$TERM` + "\r")
			s.expect("/dev/pts/0")
			s.expect("size-1920")
		}
		s.expect("-xterm")
		s.send("exit 3\r")
		if code := s.wait(); code != 3 {
			t.Errorf("docker run -it ... exit 3: exit %d\n%q", code, s.output())
		}
		if got := c.inspect("{{.State.Status}} {{.State.ExitCode}} {{.Config.Tty}} {{.Config.OpenStdin}}", "it"); got != "exited 3 true true" {
			t.Errorf("inspect after run -it: %s", got)
		}
	})

	t.Run("attach tty and detach", func(t *testing.T) {
		c := e.cli(t)
		c.ok("run", "-dit", "--name", "att", "busybox", "sh")
		defer c.ok("rm", "-f", "att")
		s := c.startPTY("attach", "att")
		s.send("echo one-$((1+1))\r")
		s.expect("one-2")
		s.send("\x10\x11") // ctrl-p ctrl-q
		s.expect("read escape sequence")
		// CLI 28 exits 1 after a detach, against dockerd as against berthd.
		if code := s.wait(); code != 1 {
			t.Errorf("docker attach detached with exit %d", code)
		}
		if st := c.inspect("{{.State.Status}}", "att"); st != "running" {
			t.Fatalf("after detaching: %s", st)
		}
		s = c.startPTY("attach", "--detach-keys", "ctrl-x", "att")
		s.send("echo two-$((2+1))\r")
		s.expect("two-3")
		s.send("exit 2\r")
		if code := s.wait(); code != 2 {
			t.Errorf("docker attach when the shell exits 2: exit %d", code)
		}
		if got := c.inspect("{{.State.Status}} {{.State.ExitCode}}", "att"); got != "exited 2" {
			t.Errorf("inspect: %s", got)
		}
	})

	t.Run("attach without tty", func(t *testing.T) {
		c := e.cli(t)
		// The container writes only once it reads a line, which comes
		// through the attach: no output can go before attach is in place.
		// Stdin stays open until the container exits, since Docker ends
		// the attach of a container whose stdin is not StdinOnce when the
		// client closes its input.
		c.ok("run", "-di", "--name", "plain", "busybox", "sh", "-c", `read x; echo "got $x"; echo err >&2; exit 6`)
		defer c.ok("rm", "-f", "plain")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, dockerCLI, "-H", c.host, "attach", "plain")
		cmd.Env = c.env
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		io.WriteString(stdin, "go\n")
		err = cmd.Wait()
		stdin.Close()
		if code := exitCode(err); code != 6 || stdout.String() != "got go\n" || stderr.String() != "err\n" {
			t.Errorf("docker attach: exit %d (%v), stdout %q, stderr %q", code, err, stdout.String(), stderr.String())
		}
		c.failWith(e, 1, "You cannot attach to a stopped container, start it first", "attach", "plain")
	})

	t.Run("logs", func(t *testing.T) {
		c := e.cli(t)
		c.ok("run", "-d", "--name", "lg", "busybox", "sh", "-c",
			"echo one; echo two >&2; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo three; exit 3")
		defer c.ok("rm", "-f", "lg")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		follow := exec.CommandContext(ctx, dockerCLI, "-H", c.host, "logs", "-f", "lg")
		follow.Env = c.env
		pipe, err := follow.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := follow.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewReader(pipe)
		if l, err := lines.ReadString('\n'); l != "one\n" {
			t.Fatalf("docker logs -f: first line %q (%v)", l, err)
		}
		c.ok("exec", "lg", "touch", "/tmp/go")
		rest, _ := io.ReadAll(lines)
		if string(rest) != "three\n" {
			t.Errorf("docker logs -f after the container went on: %q", rest)
		}
		// Following ends when the container exits.
		if err := follow.Wait(); err != nil {
			t.Errorf("docker logs -f: %v", err)
		}
		if st := c.inspect("{{.State.Status}} {{.State.ExitCode}}", "lg"); st != "exited 3" {
			t.Errorf("state: %s", st)
		}
		r := c.run("", "logs", "lg")
		if r.Stdout != "one\nthree\n" || r.Stderr != "two\n" {
			t.Errorf("docker logs: %s", r)
		}
		if out := c.ok("logs", "--tail", "1", "lg"); out != "three\n" {
			t.Errorf("docker logs --tail 1: %q", out)
		}
		out := c.ok("logs", "-t", "lg")
		if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z one\n\S+ three\n$`).MatchString(out) {
			t.Errorf("docker logs -t: %q", out)
		}
		if out := c.ok("logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "lg"); out != "" {
			t.Errorf("docker logs --since the future: %q", out)
		}
		c.failWith(e, 1, "No such container: nosuch", "logs", "nosuch")
	})
}

// exitCode is the exit status in err from exec.Cmd.Wait, 0 for nil, -1
// for another error.
func exitCode(err error) int {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	return -1
}
