package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// runReady runs a detached container whose shell installs traps and then
// creates /tmp/ready, and waits for that file, so that signals sent after
// it meet the traps.
func runReady(t *testing.T, c *CLI, name string, runArgs []string, traps string) {
	t.Helper()
	args := append(append([]string{"run", "-d", "--name", name}, runArgs...), "busybox", "sh", "-c",
		traps+"; touch /tmp/ready; while :; do sleep 0.05; done")
	c.ok(args...)
	poll(t, name+" is ready", func() bool { return c.run("", "exec", name, "test", "-e", "/tmp/ready").ExitCode == 0 })
}

// TestStopKillWait checks stop, kill, wait, restart and start with the
// exit codes and times inspect shows.
func TestStopKillWait(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)

	t.Run("stop escalates to SIGKILL", func(t *testing.T) {
		c := e.cli(t)
		c.ok("run", "-d", "--name", "ignores", "busybox", "sleep", "1000")
		defer c.ok("rm", "ignores")
		started := c.inspect("{{.State.StartedAt}}", "ignores")
		// sleep as pid 1 has no handler: SIGTERM is ignored.
		if out := c.ok("stop", "-t", "1", "ignores"); out != "ignores\n" {
			t.Errorf("docker stop: %q", out)
		}
		got := c.inspect("{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.State.Pid}} {{.State.OOMKilled}}", "ignores")
		if got != "exited false 137 0 false" {
			t.Errorf("after stop: %s", got)
		}
		st, err1 := time.Parse(time.RFC3339Nano, started)
		fin, err2 := time.Parse(time.RFC3339Nano, c.inspect("{{.State.FinishedAt}}", "ignores"))
		if err1 != nil || err2 != nil || fin.Sub(st) < time.Second {
			t.Errorf("StartedAt %s, FinishedAt %v: want at least the 1 s stop timeout apart (%v %v)", started, fin, err1, err2)
		}
		// Stopping a stopped container is no error.
		if out := c.ok("stop", "ignores"); out != "ignores\n" {
			t.Errorf("second docker stop: %q", out)
		}
		if !regexp.MustCompile(`^Exited \(137\) .* ago\n$`).MatchString(c.ok("ps", "-a", "--filter", "name=ignores", "--format", "{{.Status}}")) {
			t.Errorf("ps status after stop")
		}
	})

	t.Run("stop signal and wait", func(t *testing.T) {
		c := e.cli(t)
		runReady(t, c, "traps", []string{"--stop-signal", "USR1"}, `trap "exit 44" USR1; trap "exit 45" TERM`)
		defer c.ok("rm", "traps")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		wait := exec.CommandContext(ctx, dockerCLI, "-H", c.host, "wait", "traps")
		wait.Env = c.env
		var out strings.Builder
		wait.Stdout = &out
		if err := wait.Start(); err != nil {
			t.Fatal(err)
		}
		c.ok("stop", "traps")
		if err := wait.Wait(); err != nil || out.String() != "44\n" {
			t.Errorf("docker wait: %q (%v)", out.String(), err)
		}
		if out := c.ok("wait", "traps"); out != "44\n" {
			t.Errorf("docker wait on an exited container: %q", out)
		}
		runReady(t, c, "traps2", nil, `trap "exit 45" TERM`)
		defer c.ok("rm", "traps2")
		c.ok("stop", "-s", "TERM", "traps2")
		if got := c.inspect("{{.State.ExitCode}}", "traps2"); got != "45" {
			t.Errorf("exit code after stop -s TERM: %s", got)
		}
	})

	t.Run("kill", func(t *testing.T) {
		c := e.cli(t)
		runReady(t, c, "killme", nil, `trap "exit 43" HUP`)
		defer c.ok("rm", "-f", "killme")
		if out := c.ok("kill", "-s", "HUP", "killme"); out != "killme\n" {
			t.Errorf("docker kill -s HUP: %q", out)
		}
		if out := c.ok("wait", "killme"); out != "43\n" {
			t.Errorf("exit code after SIGHUP: %q", out)
		}
		c.ok("start", "killme")
		c.ok("kill", "killme")
		if out := c.ok("wait", "killme"); out != "137\n" {
			t.Errorf("exit code after docker kill: %q", out)
		}
		id := c.id("killme")
		c.failWith(e, 1, "cannot kill container: killme: container "+id+" is not running", "kill", "killme")
		c.failWith(e, 1, "invalid signal: NOPE", "kill", "-s", "NOPE", "killme")
	})

	t.Run("restart and start", func(t *testing.T) {
		c := e.cli(t)
		c.ok("run", "-d", "--name", "again", "busybox", "sleep", "1000")
		defer c.ok("rm", "-f", "again")
		pid := c.inspect("{{.State.Pid}}", "again")
		if out := c.ok("restart", "-t", "0", "again"); out != "again\n" {
			t.Errorf("docker restart: %q", out)
		}
		got := c.inspect("{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", "again")
		if got != "running 0 0" || c.inspect("{{.State.Pid}}", "again") == pid {
			t.Errorf("after docker restart: %s, pid %s (was %s)", got, c.inspect("{{.State.Pid}}", "again"), pid)
		}
		// Starting a running container is no error.
		if out := c.ok("start", "again"); out != "again\n" {
			t.Errorf("docker start of a running container: %q", out)
		}
		c.ok("run", "--name", "once", "busybox", "sh", "-c", "echo hi")
		defer c.ok("rm", "once")
		if out := c.ok("start", "-a", "once"); out != "hi\n" {
			t.Errorf("docker start -a: %q", out)
		}
		if out := c.ok("logs", "once"); out != "hi\nhi\n" {
			t.Errorf("logs after two runs: %q", out)
		}
	})

	t.Run("wrong state", func(t *testing.T) {
		c := e.cli(t)
		c.ok("create", "--name", "fresh", "busybox", "sleep", "1000")
		defer c.ok("rm", "-f", "fresh")
		id := c.id("fresh")
		c.failWith(e, 1, "container "+id+" is not running", "pause", "fresh")
		// Docker checks the paused flag alone for unpause.
		c.failWith(e, 1, "container "+id+" is not paused", "unpause", "fresh")
		c.failWith(e, 1, "container "+id+" is not running", "top", "fresh")
		if out := c.ok("stop", "fresh"); out != "fresh\n" {
			t.Errorf("docker stop of a created container: %q", out)
		}
		c.ok("start", "fresh")
		c.failWith(e, 1, "container "+id+" is not paused", "unpause", "fresh")
		c.ok("pause", "fresh")
		c.failWith(e, 1, "container "+id+" is already paused", "pause", "fresh")
		c.ok("unpause", "fresh")
		c.failWith(e, 1, e.pick(`cannot remove container "/fresh": container is running: stop the container before removing or force remove`,
			"You cannot remove a running container "+id+". Stop the container before attempting removal or force remove"), "rm", "fresh")
		for _, verb := range []string{"start", "stop", "kill", "pause", "unpause", "restart", "wait", "rm", "inspect", "logs", "top", "port", "update"} {
			args := []string{verb, "nosuch"}
			if verb == "update" {
				args = []string{verb, "--cpus", "1", "nosuch"}
			}
			stderr := c.fail(1, args...)
			if !strings.Contains(stderr, "No such container: nosuch") && !(verb == "inspect" && strings.Contains(stderr, "No such object: nosuch")) {
				t.Errorf("docker %s nosuch: %q", verb, stderr)
			}
		}
	})
	if out := c.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("containers left: %q", out)
	}
}

// TestPauseUnpause pauses a container and checks ps, inspect, the
// freezer cgroup and that a paused container can still be stopped.
func TestPauseUnpause(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	c.ok("run", "-d", "--name", "frozen", "busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "frozen")
	pid := c.inspect("{{.State.Pid}}", "frozen")
	if out := c.ok("pause", "frozen"); out != "frozen\n" {
		t.Errorf("docker pause: %q", out)
	}
	if got := c.inspect("{{.State.Status}} {{.State.Running}} {{.State.Paused}}", "frozen"); got != "paused true true" {
		t.Errorf("inspect of a paused container: %s", got)
	}
	if out := c.ok("ps", "--format", "{{.State}}|{{.Status}}"); !regexp.MustCompile(`^paused\|Up .* \(Paused\)\n$`).MatchString(out) {
		t.Errorf("ps of a paused container: %q", out)
	}
	if out := c.ok("ps", "--filter", "status=paused", "--format", "{{.Names}}"); out != "frozen\n" {
		t.Errorf("ps --filter status=paused: %q", out)
	}
	if st := hostCgroupFile(t, pid, "freezer", "freezer.state"); st != "FROZEN" {
		t.Errorf("freezer.state %s", st)
	}
	if out := c.ok("unpause", "frozen"); out != "frozen\n" {
		t.Errorf("docker unpause: %q", out)
	}
	if st := hostCgroupFile(t, pid, "freezer", "freezer.state"); st != "THAWED" {
		t.Errorf("freezer.state after unpause %s", st)
	}
	c.ok("pause", "frozen")
	c.ok("stop", "-t", "1", "frozen")
	if got := c.inspect("{{.State.Status}} {{.State.Paused}} {{.State.ExitCode}}", "frozen"); got != "exited false 137" {
		t.Errorf("after stopping a paused container: %s", got)
	}
}

// TestUpdateStatsTop changes a running container's resources and reads
// them back through inspect, the cgroup and stats; docker top lists its
// processes.
func TestUpdateStatsTop(t *testing.T) {
	t.Parallel()
	e := startEngine(t)
	c := e.cli(t)
	c.ok("run", "-d", "--name", "upd", "--memory", "64m", "busybox", "sleep", "1000")
	defer c.ok("rm", "-f", "upd")
	pid := c.inspect("{{.State.Pid}}", "upd")
	if out := c.ok("update", "--memory", "128m", "--memory-swap", "256m", "--cpus", "0.5", "--pids-limit", "20", "--restart", "on-failure:2", "upd"); out != "upd\n" {
		t.Errorf("docker update: %q", out)
	}
	got := c.inspect("{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{json .HostConfig.RestartPolicy}}", "upd")
	if got != `134217728 268435456 500000000 20 {"MaximumRetryCount":2,"Name":"on-failure"}` {
		t.Errorf("inspect after update: %s", got)
	}
	for _, f := range []struct{ ctl, file, want string }{
		{"memory", "memory.limit_in_bytes", "134217728"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"pids", "pids.max", "20"},
	} {
		if got := hostCgroupFile(t, pid, f.ctl, f.file); got != f.want {
			t.Errorf("host %s/%s after update: %s, want %s", f.ctl, f.file, got, f.want)
		}
	}
	if e.isBerth() {
		// berth's cgroups are /berth/<id> in each hierarchy.
		p := filepath.Join("/sys/fs/cgroup/memory/berth", c.id("upd"), "memory.limit_in_bytes")
		if b, err := os.ReadFile(p); err != nil || string(b) != "134217728\n" {
			t.Errorf("%s after update: %q (%v)", p, b, err)
		}
	}
	if out := c.ok("exec", "upd", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"); out != "134217728\n" {
		t.Errorf("memory limit inside after update: %q", out)
	}
	c.failWith(e, 1, "Minimum memory limit allowed is 6MB", "update", "--memory", "1k", "upd")
	c.failWith(e, 1, "No such container: nosuch", "update", "--memory", "64m", "nosuch")

	out := c.ok("stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}|{{.MemPerc}}", "upd")
	if !regexp.MustCompile(`^upd\|[0-9.]+[KM]iB / 128MiB\|1\|[0-9.]+%\|[0-9.]+%\n$`).MatchString(out) {
		t.Errorf("docker stats --no-stream: %q", out)
	}
	out = c.ok("stats", "--no-stream")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT") {
		t.Errorf("docker stats --no-stream (all running): %q", out)
	}

	c.ok("exec", "-d", "upd", "sleep", "999")
	poll(t, "top lists the exec'd process", func() bool { return strings.Contains(c.ok("top", "upd"), "sleep 999") })
	// ps lists by pid, and pids wrap: the exec'd process may come first.
	out = c.ok("top", "upd")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	mainRow := regexp.MustCompile(`^root +` + pid + ` +\d+ +\d+ +\S+ +\? +\S+ +sleep 1000$`)
	if len(lines) != 3 || !regexp.MustCompile(`^UID +PID +PPID +C +STIME +TTY +TIME +CMD$`).MatchString(lines[0]) ||
		!slices.ContainsFunc(lines[1:], mainRow.MatchString) {
		t.Errorf("docker top:\n%s", out)
	}
	out = c.ok("top", "upd", "-o", "pid,args")
	if !regexp.MustCompile(`^PID +COMMAND\n(` + pid + ` +sleep 1000\n\d+ +sleep 999\n|\d+ +sleep 999\n` + pid + ` +sleep 1000\n)$`).MatchString(out) {
		t.Errorf("docker top -o pid,args:\n%s", out)
	}
	// runc makes the container's init a session and process group
	// leader: /proc/1/stat reads "1 (sleep) S 0 1 1 ...".
	if f := strings.Fields(c.ok("exec", "upd", "cat", "/proc/1/stat")); len(f) < 6 || f[4] != "1" || f[5] != "1" {
		t.Errorf("pid 1's process group and session: %v, want 1 and 1", f[:min(len(f), 6)])
	}
}
