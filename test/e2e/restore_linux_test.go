package e2e

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lineFollower runs a docker command that prints the ticker's numbered
// lines and collects them.
type lineFollower struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	more  chan struct{}
	done  chan error
}

func (c *CLI) follow(ctx context.Context, args ...string) *lineFollower {
	c.t.Helper()
	f := &lineFollower{more: make(chan struct{}, 1), done: make(chan error, 1)}
	f.cmd = exec.CommandContext(ctx, dockerCLI, append([]string{"-H", c.host}, args...)...)
	f.cmd.Env = c.env
	out, err := f.cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := f.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f.mu.Lock()
			f.lines = append(f.lines, sc.Text())
			f.mu.Unlock()
			select {
			case f.more <- struct{}{}:
			default:
			}
		}
		io.Copy(io.Discard, out)
		f.done <- f.cmd.Wait()
	}()
	return f
}

// waitLines waits until the follower has collected n lines.
func (f *lineFollower) waitLines(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.After(pollTimeout)
	for {
		f.mu.Lock()
		got := slices.Clone(f.lines)
		f.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-f.more:
		case <-deadline:
			t.Fatalf("docker %s: %d lines within %v, want %d", strings.Join(f.cmd.Args[3:], " "), len(got), pollTimeout, n)
		}
	}
}

// consecutive fails the test unless lines are the numbers from, from+1, ...
func consecutive(t *testing.T, what string, lines []string, from int) {
	t.Helper()
	for i, l := range lines {
		if n, err := strconv.Atoi(l); err != nil || n != from+i {
			t.Errorf("%s: line %d is %q, want %d (a gap or a repeat)", what, i, l, from+i)
			return
		}
	}
}

// TestLiveRestore kills berthd with SIGKILL while a container writes a
// line every 100 ms, docker logs -f follows it and a docker stop waits
// for a container that ignores SIGTERM; another container exits while the
// daemon is down. A new berthd on the same roots must find everything as
// it is: running containers with the same pid, their logs without a gap,
// the exited one with its exit code and finish time, each container once,
// a stop that completes or can be repeated, and room for new containers.
func TestLiveRestore(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c.ok("run", "-d", "--name", "ticker", "busybox", "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.1; done")
	defer c.ok("rm", "-f", "ticker")
	c.ok("run", "-d", "--name", "stopper", "busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "stopper")
	runReady(t, c, "exiter", nil, `trap "exit 7" TERM`)
	defer c.ok("rm", "-f", "exiter")
	tickerPid := c.inspect("{{.State.Pid}}", "ticker")
	exiterPid, _ := strconv.Atoi(c.inspect("{{.State.Pid}}", "exiter"))
	stopperPid := c.inspect("{{.State.Pid}}", "stopper")

	logs := c.follow(ctx, "logs", "-f", "ticker")
	logs.waitLines(t, 3)

	// A stop in flight: berthd has sent SIGTERM (its kill event is out)
	// and waits out the timeout.
	since := eventTime(time.Now().Add(-time.Second))
	stop := exec.CommandContext(ctx, dockerCLI, "-H", c.host, "stop", "-t", "30", "stopper")
	stop.Env = c.env
	if err := stop.Start(); err != nil {
		t.Fatal(err)
	}
	poll(t, "docker stop sent SIGTERM", func() bool {
		return c.ok("events", "--since", since, "--until", eventTime(time.Now()), "--filter", "container=stopper", "--filter", "event=kill", "--format", "{{.Actor.Attributes.signal}}") == "15\n"
	})

	e.berth.kill(t)
	if err := stop.Wait(); err == nil {
		t.Errorf("docker stop in flight succeeded although berthd was killed")
	}
	select {
	case <-logs.done:
	case <-time.After(pollTimeout):
		t.Errorf("docker logs -f still runs %v after berthd was killed", pollTimeout)
	}
	before := logs.waitLines(t, 0)
	consecutive(t, "docker logs -f before the crash", before, 1)

	// While berthd is down, a container exits (its shim records it).
	killedAt := time.Now()
	if err := syscall.Kill(exiterPid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !waitGone(exiterPid, pollTimeout) {
		t.Fatalf("exiter (pid %d) still runs", exiterPid)
	}

	e.berth = e.berth.restart(t)

	if got := c.inspect("{{.State.Status}} {{.State.Pid}}", "ticker"); got != "running "+tickerPid {
		t.Errorf("ticker after restart: %s, want running %s", got, tickerPid)
	}
	if got := c.inspect("{{.State.Status}} {{.State.ExitCode}} {{.State.Running}} {{.State.Pid}}", "exiter"); got != "exited 7 false 0" {
		t.Errorf("exiter after restart: %s, want exited 7", got)
	}
	fin, err := time.Parse(time.RFC3339Nano, c.inspect("{{.State.FinishedAt}}", "exiter"))
	if err != nil || fin.Before(killedAt.Add(-10*time.Millisecond)) || fin.After(time.Now()) {
		t.Errorf("exiter's FinishedAt %v (%v), want between %v and now", fin, err, killedAt)
	}
	if out := c.ok("ps", "-a", "--format", "{{.Names}} {{.State}}"); out != "exiter exited\nstopper running\nticker running\n" &&
		out != "exiter exited\nstopper exited\nticker running\n" {
		t.Errorf("ps -a after restart:\n%s", out)
	}
	// The interrupted stop completed or can be repeated.
	stopperState := c.inspect("{{.State.Status}} {{.State.Pid}}", "stopper")
	if stopperState != "exited 0" && stopperState != "running "+stopperPid {
		t.Errorf("stopper after restart: %s", stopperState)
	}
	c.ok("stop", "-t", "1", "stopper")
	if got := c.inspect("{{.State.Status}} {{.State.ExitCode}}", "stopper"); got != "exited 137" {
		t.Errorf("stopper after a second stop: %s", got)
	}

	// The log has every line, those written during the outage too.
	all := strings.Fields(c.ok("logs", "ticker"))
	consecutive(t, "docker logs after the restart", all, 1)
	if len(all) <= len(before) {
		t.Errorf("docker logs after the restart: %d lines, %d before the crash", len(all), len(before))
	}
	t.Logf("ticker: %d lines followed before the crash, %d in the log after the restart; stopper was %s", len(before), len(all), stopperState)
	// Following and attaching go on from there.
	after := c.follow(ctx, "logs", "-f", "--tail", "1", "ticker")
	got := after.waitLines(t, 3)
	n, _ := strconv.Atoi(got[0])
	consecutive(t, "docker logs -f --tail 1 after the restart", got, n)
	if n < len(all) {
		t.Errorf("docker logs -f --tail 1 started at %d, the log had %d lines", n, len(all))
	}
	att := c.follow(ctx, "attach", "--no-stdin", "--sig-proxy=false", "ticker")
	got = att.waitLines(t, 2)
	n, _ = strconv.Atoi(got[0])
	consecutive(t, "docker attach after the restart", got, n)
	after.cmd.Process.Kill()
	att.cmd.Process.Kill()

	if out := c.ok("run", "--rm", "busybox", "echo", "new"); out != "new\n" {
		t.Errorf("a new container after the restart: %q", out)
	}
}
