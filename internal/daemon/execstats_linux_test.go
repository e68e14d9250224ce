package daemon

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	api "github.com/moby/moby/api/types/container"

	"github.com/berth-project/berth/internal/errdefs"
)

func TestExecInContainer(t *testing.T) {
	td := newTestDaemon(t, noLiveRestore)
	ctx := context.Background()
	id := td.run(t, &api.Config{Env: []string{"FOO=orig", "KEEP=1"}, WorkingDir: "/home"}, nil)

	t.Run("output and exit code", func(t *testing.T) {
		out, errOut, code := td.exec(t, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, nil)
		if out != "out\n" || errOut != "err\n" || code != 3 {
			t.Errorf("stdout %q stderr %q code %d", out, errOut, code)
		}
		die := td.waitEvent(t, id, func(ev Event) bool { return ev.Action == "exec_die" && ev.Attributes["exitCode"] == "3" })
		eid := die.Attributes["execID"]
		if len(eid) != 64 || die.Attributes["image"] != "busybox:latest" {
			t.Errorf("exec_die attributes %v", die.Attributes)
		}
		for _, verb := range []string{"exec_create", "exec_start"} {
			td.waitEvent(t, id, func(ev Event) bool {
				return ev.Action == verb+": sh -c echo out; echo err >&2; exit 3" && ev.Attributes["execID"] == eid
			})
		}
	})

	t.Run("environment and working directory", func(t *testing.T) {
		out, _, code := td.exec(t, id, ExecCreateOptions{
			Cmd: []string{"sh", "-c", `echo "$FOO $KEEP $NEW ${TERM:-noterm}"; pwd`},
			Env: []string{"FOO=exec", "NEW=2"},
		}, nil)
		if out != "exec 1 2 noterm\n/home\n" || code != 0 {
			t.Errorf("output %q code %d", out, code)
		}
		out, _, _ = td.exec(t, id, ExecCreateOptions{Cmd: []string{"pwd"}, WorkingDir: "/tmp"}, nil)
		if out != "/tmp\n" {
			t.Errorf("working dir %q", out)
		}
	})

	t.Run("user", func(t *testing.T) {
		for user, want := range map[string]string{"": "0 0", "berth": "1000 1000", "nobody:nogroup": "65534 65534", "1234:5": "1234 5"} {
			out, _, _ := td.exec(t, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "echo $(id -u) $(id -g)"}, User: user}, nil)
			if strings.TrimSpace(out) != want {
				t.Errorf("user %q: id %q, want %q", user, out, want)
			}
		}
		eid, err := td.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"true"}, User: "nosuchuser"})
		if err != nil {
			t.Fatal(err)
		}
		err = td.StartExec(ctx, eid, ExecStartOptions{})
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "unable to find user nosuchuser") {
			t.Errorf("unknown user: %v", err)
		}
		if info, _ := td.InspectExec(ctx, eid); info.ExitCode == nil || *info.ExitCode != 126 || info.Running {
			t.Errorf("exec that failed to start: %+v", info)
		}
	})

	t.Run("privileged", func(t *testing.T) {
		capEff := func(priv bool) string {
			out, _, _ := td.exec(t, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "grep CapEff /proc/self/status"}, Privileged: priv}, nil)
			return strings.TrimSpace(strings.TrimPrefix(out, "CapEff:"))
		}
		plain, priv := capEff(false), capEff(true)
		// Only the privileged exec has CAP_SYS_ADMIN.
		if hasSysAdmin(plain) || !hasSysAdmin(priv) {
			t.Errorf("CapEff plain %s privileged %s", plain, priv)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		out, _, code := td.exec(t, id, ExecCreateOptions{Cmd: []string{"cat"}}, strings.NewReader("hello\nworld\n"))
		if out != "hello\nworld\n" || code != 0 {
			t.Errorf("cat: %q %d", out, code)
		}
	})

	t.Run("tty", func(t *testing.T) {
		out, errOut, code := td.exec(t, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "tty; echo $TERM; echo oops >&2"}, Tty: true, ConsoleSize: &[2]uint{33, 111}}, nil)
		if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "xterm\r\n") || !strings.Contains(out, "oops") || errOut != "" || code != 0 {
			t.Errorf("tty exec: stdout %q stderr %q code %d", out, errOut, code)
		}
		out, _, _ = td.exec(t, id, ExecCreateOptions{Cmd: []string{"stty", "size"}, Tty: true, ConsoleSize: &[2]uint{33, 111}}, nil)
		if strings.TrimSpace(out) != "33 111" {
			t.Errorf("console size %q", out)
		}
	})

	t.Run("resize", func(t *testing.T) {
		eid, pw, out, done := td.startPiped(t, id, ExecCreateOptions{Cmd: []string{"sh"}, Tty: true})
		if err := td.ResizeExec(ctx, eid, 50, 120); err != nil {
			t.Fatalf("resize: %v", err)
		}
		io.WriteString(pw, "stty size; exit\n")
		if err := <-done; err != nil {
			t.Fatalf("start: %v", err)
		}
		if !strings.Contains(out.String(), "50 120") {
			t.Errorf("output %q has no 50 120", out.String())
		}
		if err := td.ResizeExec(ctx, eid, 1, 1); !errdefs.IsConflict(err) {
			t.Errorf("resize of an ended exec: %v", err)
		}
	})

	t.Run("detach keys", func(t *testing.T) {
		eid, pw, out, done := td.startPiped(t, id, ExecCreateOptions{Cmd: []string{"cat"}, DetachKeys: "ctrl-x,x"})
		io.WriteString(pw, "abc\n")
		poll(t, "cat echoes", func() bool { return out.String() == "abc\n" })
		io.WriteString(pw, "\x18x")
		if err := <-done; !errors.Is(err, ErrDetached) {
			t.Fatalf("start after detach keys: %v", err)
		}
		info, err := td.InspectExec(ctx, eid)
		if err != nil || !info.Running || info.ExitCode != nil || info.DetachKeys != "ctrl-x,x" || info.Entrypoint != "cat" {
			code := -1000
			if info.ExitCode != nil {
				code = *info.ExitCode
			}
			t.Fatalf("detached exec: %+v (exit code %d) %v", info, code, err)
		}
		v, err := td.Container(ctx, id, false)
		if err != nil || !slices.Contains(v.ExecIDs, eid) {
			t.Errorf("container's exec IDs %v miss the running %s (%v)", v.ExecIDs, eid, err)
		}
		if err := td.StartExec(ctx, eid, ExecStartOptions{}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is already running") {
			t.Errorf("second start: %v", err)
		}
	})

	t.Run("detached start", func(t *testing.T) {
		eid, err := td.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "echo lost; exit 7"}, AttachStdout: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := td.StartExec(ctx, eid, ExecStartOptions{Detach: true, Stdout: io.Discard}); err != nil {
			t.Fatal(err)
		}
		poll(t, "detached exec exits", func() bool {
			info, err := td.InspectExec(ctx, eid)
			return err == nil && info.ExitCode != nil && *info.ExitCode == 7 && !info.Running
		})
		v, _ := td.Container(ctx, id, false)
		if slices.Contains(v.ExecIDs, eid) {
			t.Errorf("ended exec %s still listed in %v", eid, v.ExecIDs)
		}
		if err := td.StartExec(ctx, eid, ExecStartOptions{}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "has already run") {
			t.Errorf("start of an ended exec: %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if _, err := td.CreateExec(ctx, id, ExecCreateOptions{}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("no command: %v", err)
		}
		if _, err := td.CreateExec(ctx, "nosuchcontainer", ExecCreateOptions{Cmd: []string{"ls"}}); !errdefs.IsNotFound(err) {
			t.Errorf("no container: %v", err)
		}
		for _, f := range []func() error{
			func() error { return td.StartExec(ctx, "nosuchexec", ExecStartOptions{}) },
			func() error { _, err := td.InspectExec(ctx, "nosuchexec"); return err },
			func() error { return td.ResizeExec(ctx, "nosuchexec", 1, 1) },
		} {
			if err := f(); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such exec instance: nosuchexec") {
				t.Errorf("unknown exec: %v", err)
			}
		}
		eid, err := td.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"nosuchcommand"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := td.StartExec(ctx, eid, ExecStartOptions{}); err == nil || !strings.Contains(err.Error(), "nosuchcommand") {
			t.Errorf("missing command: %v", err)
		}
		if err := td.PauseContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err = td.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"ls"}})
		if err := td.UnpauseContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is paused, unpause the container before exec") {
			t.Errorf("paused container: %v", err)
		}
	})

	t.Run("container stop ends execs", func(t *testing.T) {
		id2 := td.run(t, nil, nil)
		eid, err := td.CreateExec(ctx, id2, ExecCreateOptions{Cmd: []string{"sleep", "1000"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := td.StartExec(ctx, eid, ExecStartOptions{Detach: true}); err != nil {
			t.Fatal(err)
		}
		never, err := td.CreateExec(ctx, id2, ExecCreateOptions{Cmd: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := td.KillContainer(ctx, id2, "KILL"); err != nil {
			t.Fatal(err)
		}
		poll(t, "container stops", func() bool { v, _ := td.Container(ctx, id2, false); return !v.State.Running() })
		poll(t, "exec ends with its container", func() bool {
			info, err := td.InspectExec(ctx, eid)
			return err == nil && info.ExitCode != nil && !info.Running
		})
		if _, err := td.InspectExec(ctx, never); !errdefs.IsNotFound(err) {
			t.Errorf("exec never started outlived its container's run: %v", err)
		}
		if _, err := td.CreateExec(ctx, id2, ExecCreateOptions{Cmd: []string{"ls"}}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is not running") {
			t.Errorf("stopped container: %v", err)
		}
		if err := td.RemoveContainer(ctx, id2, RemoveContainerOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := td.InspectExec(ctx, eid); !errdefs.IsNotFound(err) {
			t.Errorf("exec of a removed container: %v", err)
		}
	})
}

func TestHealthCheck(t *testing.T) {
	td := newTestDaemon(t, noLiveRestore)
	ctx := context.Background()
	health := func(id string) *api.Health {
		v, err := td.Container(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.ExecIDs) != 0 {
			t.Errorf("health probes listed as execs: %v", v.ExecIDs)
		}
		return v.State.Health
	}

	t.Run("unhealthy then healthy", func(t *testing.T) {
		id := td.run(t, &api.Config{Healthcheck: &api.HealthConfig{
			Test: []string{"CMD-SHELL", "echo probing; test -f /tmp/ok"}, Interval: 100 * time.Millisecond, Retries: 2,
		}}, nil)
		if h := health(id); h == nil || h.Status != api.Starting && h.Status != api.Unhealthy {
			t.Fatalf("health at start: %+v", h)
		}
		var h *api.Health
		poll(t, "unhealthy", func() bool { h = health(id); return h.Status == api.Unhealthy })
		if h.FailingStreak < 2 || len(h.Log) < 2 || len(h.Log) > 5 {
			t.Fatalf("unhealthy: %+v", h)
		}
		last := h.Log[len(h.Log)-1]
		if last.ExitCode != 1 || last.Output != "probing\n" || last.End.Before(last.Start) {
			t.Errorf("failed probe %+v", last)
		}
		td.waitEvent(t, id, func(ev Event) bool { return ev.Action == "health_status: unhealthy" })
		td.exec(t, id, ExecCreateOptions{Cmd: []string{"touch", "/tmp/ok"}}, nil)
		poll(t, "healthy", func() bool { h = health(id); return h.Status == api.Healthy })
		if h.FailingStreak != 0 || h.Log[len(h.Log)-1].ExitCode != 0 {
			t.Errorf("healthy: %+v", h)
		}
		td.waitEvent(t, id, func(ev Event) bool { return ev.Action == "health_status: healthy" })
		td.waitEvent(t, id, func(ev Event) bool { return ev.Action == "exec_start: /bin/sh -c echo probing; test -f /tmp/ok" })
		poll(t, "more than five probes", func() bool { h = health(id); return h.Log[0].ExitCode == 0 })
		if len(h.Log) != 5 {
			t.Errorf("log keeps %d results", len(h.Log))
		}
		if err := td.StopContainer(ctx, id, StopOptions{Timeout: new(int)}); err != nil {
			t.Fatal(err)
		}
		if h := health(id); h.Status != api.Unhealthy {
			t.Errorf("stopped container's health %s", h.Status)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		id := td.run(t, &api.Config{Healthcheck: &api.HealthConfig{
			Test: []string{"CMD", "sleep", "100"}, Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond, Retries: 1,
		}}, nil)
		var h *api.Health
		poll(t, "unhealthy", func() bool { h = health(id); return h.Status == api.Unhealthy })
		last := h.Log[len(h.Log)-1]
		if last.ExitCode != -1 || last.Output != "Health check exceeded timeout (200ms)" {
			t.Errorf("timed out probe %+v", last)
		}
		top, err := td.TopContainer(ctx, id, "-o pid,args")
		if err != nil {
			t.Fatal(err)
		}
		if n := countRows(top, "sleep 100"); n > 1 {
			t.Errorf("%d timed out probes still run: %q", n, top.Processes)
		}
	})

	t.Run("start period", func(t *testing.T) {
		id := td.run(t, &api.Config{Healthcheck: &api.HealthConfig{
			Test: []string{"CMD", "false"}, Interval: time.Hour, StartPeriod: time.Hour, StartInterval: 50 * time.Millisecond, Retries: 1,
		}}, nil)
		var h *api.Health
		poll(t, "three probes", func() bool { h = health(id); return len(h.Log) >= 3 })
		if h.Status != api.Starting || h.FailingStreak != 0 {
			t.Errorf("failures in the start period counted: %+v", h)
		}
	})

	t.Run("none", func(t *testing.T) {
		// Docker ignores a test of an unknown kind: no health either.
		for _, test := range [][]string{{"NONE"}, {"NOSUCHKIND", "true"}} {
			id := td.run(t, &api.Config{Healthcheck: &api.HealthConfig{Test: test, Interval: 50 * time.Millisecond}}, nil)
			if h := health(id); h != nil {
				t.Errorf("health of a container with test %q: %+v", test, h)
			}
		}
	})

	t.Run("no command", func(t *testing.T) {
		// Each probe of such a check fails, as with Docker: the status
		// does not stay "starting".
		for _, tc := range []struct {
			test   []string
			code   int
			output string
		}{
			{[]string{"CMD"}, -1, noProbeCommand},
			{[]string{"CMD-SHELL"}, 2, "-c requires an argument"},
		} {
			id := td.run(t, &api.Config{Healthcheck: &api.HealthConfig{Test: tc.test, Interval: 50 * time.Millisecond, Retries: 1}}, nil)
			var h *api.Health
			poll(t, "unhealthy", func() bool { h = health(id); return h != nil && h.Status == api.Unhealthy })
			if last := h.Log[len(h.Log)-1]; last.ExitCode != tc.code || !strings.Contains(last.Output, tc.output) {
				t.Errorf("test %q: last probe %+v, want exit code %d and %q", tc.test, last, tc.code, tc.output)
			}
		}
	})
}

// TestPrivilegedContainer runs a --privileged container: it gets every
// capability of the daemon's bounding set (on a host whose bounding set
// lacks one, as this one lacks CAP_SYS_RESOURCE, asking for every
// capability the kernel knows made the start fail) and may mount.
func TestPrivilegedContainer(t *testing.T) {
	td := newTestDaemon(t)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	bounding := statusField(string(status), "CapBnd")
	id := td.create(t, "", &api.Config{Cmd: []string{"sh", "-c", "cat /proc/self/status; mount -t tmpfs x /tmp && echo mounted"}},
		&api.HostConfig{Privileged: true})
	r := td.startAndWait(t, id, api.WaitConditionNextExit)
	out, errOut := td.logs(t, id)
	if r.ExitCode != 0 || r.Error != "" {
		t.Fatalf("privileged container: %+v, stdout %q stderr %q", r, out, errOut)
	}
	eff := statusField(out, "CapEff")
	if eff != bounding || statusField(out, "CapBnd") != bounding || !hasSysAdmin(eff) {
		t.Errorf("privileged container's CapEff %q CapBnd %q, want the daemon's bounding set %q with CAP_SYS_ADMIN", eff, statusField(out, "CapBnd"), bounding)
	}
	if !strings.Contains(out, "mounted\n") || errOut != "" {
		t.Errorf("mount in a privileged container: stdout %q stderr %q", out, errOut)
	}
}

// statusField returns the value of field in the text of a
// /proc/<pid>/status ("" if it is missing).
func statusField(status, field string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// hasSysAdmin reports whether the capability mask (16 hex digits) holds
// CAP_SYS_ADMIN, bit 21.
func hasSysAdmin(mask string) bool {
	b, err := hex.DecodeString(mask)
	return err == nil && len(b) == 8 && b[5]&0x20 != 0
}

// TestHealthCheckSurvivesRestart restarts a live-restore daemon under a
// healthy container: the record keeps its health and the checker goes on.
func TestHealthCheckSurvivesRestart(t *testing.T) {
	td := newTestDaemon(t)
	ctx := context.Background()
	id := td.run(t, &api.Config{Healthcheck: &api.HealthConfig{Test: []string{"CMD", "true"}, Interval: 100 * time.Millisecond}}, nil)
	poll(t, "healthy", func() bool {
		v, err := td.Container(ctx, id, false)
		return err == nil && v.State.Health.Status == api.Healthy
	})
	td.close(t)
	td.open(t)
	v, err := td.Container(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if !v.State.Running() || v.State.Health == nil || v.State.Health.Status != api.Healthy {
		t.Fatalf("restored container: %+v health %+v", v.State, v.State.Health)
	}
	seen := v.State.Health.Log[len(v.State.Health.Log)-1].End
	poll(t, "a probe after the restart", func() bool {
		v, err := td.Container(ctx, id, false)
		return err == nil && v.State.Health.Log[len(v.State.Health.Log)-1].End.After(seen)
	})
}

func TestStatsAndTop(t *testing.T) {
	td := newTestDaemon(t, noLiveRestore)
	ctx := context.Background()
	id := td.run(t, &api.Config{Cmd: []string{"sh", "-c", "sleep 1000 & sleep 2000"}}, &api.HostConfig{Resources: api.Resources{Memory: 64 << 20}})

	// The shell's background child may not have exec'd sleep yet when
	// the container has started: wait for both sleeps, not for a time,
	// before sampling stats or listing processes.
	var top api.TopResponse
	poll(t, "both sleeps running", func() bool {
		var err error
		top, err = td.TopContainer(ctx, id, "")
		return err == nil && countRows(top, "sleep 1000") == 1 && countRows(top, "sleep 2000") == 1
	})

	s, err := td.ContainerStats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := td.Container(ctx, id, false)
	if s.ID != id || s.Name != "/"+v.Name || s.Read.IsZero() || s.OSType != "linux" {
		t.Errorf("sample header %q %q %v %q", s.ID, s.Name, s.Read, s.OSType)
	}
	if s.MemoryStats.Usage == 0 || s.MemoryStats.Limit != 64<<20 || len(s.MemoryStats.Stats) == 0 {
		t.Errorf("memory %+v", s.MemoryStats)
	}
	if s.PidsStats.Current < 2 {
		t.Errorf("pids %+v, want two sleeps at least", s.PidsStats)
	}
	if s.CPUStats.CPUUsage.TotalUsage == 0 || s.CPUStats.SystemUsage == 0 || s.CPUStats.OnlineCPUs == 0 {
		t.Errorf("cpu %+v", s.CPUStats)
	}
	if _, ok := s.Networks["eth0"]; !ok || len(s.Networks) != 1 {
		t.Errorf("networks %+v, want eth0 only", s.Networks)
	}

	if !slices.Contains(top.Titles, "PID") || !slices.Contains(top.Titles, "CMD") ||
		countRows(top, "sleep 1000") != 1 || countRows(top, "sleep 2000") != 1 ||
		len(top.Processes) != countRows(top, "sleep 1000")+countRows(top, "sleep 2000")+countRows(top, "sh -c sleep 1000 & sleep 2000") {
		t.Errorf("top -ef: %q %q", top.Titles, top.Processes)
	}
	td.waitEvent(t, id, func(ev Event) bool { return ev.Action == "top" })
	top, err = td.TopContainer(ctx, id, "-o pid,comm")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(top.Titles, []string{"PID", "COMMAND"}) || countRows(top, "sleep") != 2 {
		t.Errorf("top -o pid,comm: %q %q", top.Titles, top.Processes)
	}
	_, err = td.TopContainer(ctx, id, "--no-such-option")
	if err == nil || !strings.HasPrefix(err.Error(), "ps: ") || errdefs.IsInvalidArgument(err) || errdefs.IsConflict(err) {
		t.Errorf("bad ps option: %v", err)
	}
	if _, err := td.TopContainer(ctx, id, "-o user=PID"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("renamed PID column: %v", err)
	}

	if err := td.KillContainer(ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	poll(t, "container stops", func() bool { v, _ := td.Container(ctx, id, false); return !v.State.Running() })
	s, err = td.ContainerStats(ctx, id)
	if err != nil || s.ID != id || !s.Read.IsZero() || s.MemoryStats.Usage != 0 || s.PidsStats.Current != 0 {
		t.Errorf("stopped container's sample %+v %v", s, err)
	}
	if _, err := td.TopContainer(ctx, id, ""); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is not running") {
		t.Errorf("top of a stopped container: %v", err)
	}
}

// startPiped creates an exec of opts in container id with its stdin on a
// pipe and its stdout in a buffer, and starts it; done gets StartExec's
// result. The pipe is closed when the test ends.
func (td *testDaemon) startPiped(t *testing.T, id string, opts ExecCreateOptions) (eid string, stdin io.Writer, out *syncBuffer, done <-chan error) {
	t.Helper()
	ctx := ctxT(t)
	opts.AttachStdin, opts.AttachStdout = true, true
	eid, err := td.CreateExec(ctx, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	out = &syncBuffer{}
	ch := make(chan error, 1)
	go func() { ch <- td.StartExec(ctx, eid, ExecStartOptions{Stdin: pr, Stdout: out}) }()
	return eid, pw, out, ch
}

// countRows counts the processes whose last column is cmd.
func countRows(top api.TopResponse, cmd string) int {
	n := 0
	for _, p := range top.Processes {
		if p[len(p)-1] == cmd {
			n++
		}
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// reexecSource is a static program that starts busy threads and execs
// itself again, forever: a multi-threaded process that keeps entering
// execve, as berth-runtime's init does when an exec starts.
const reexecSource = `package main

import (
	"os"
	"runtime"
	"syscall"
)

func main() {
	for i := 0; i < 3; i++ {
		go func() {
			runtime.LockOSThread()
			for x := 0; ; x++ {
			}
		}()
	}
	runtime.Gosched()
	syscall.Exec("/proc/self/exe", os.Args, os.Environ())
}
`

// reexecBinary builds reexecSource into a directory of its own.
func reexecBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{"main.go": reexecSource, "go.mod": "module reexec\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("go", "build", "-o", "bin/reexec", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the reexec program: %v\n%s", err, out)
	}
	return filepath.Join(dir, "bin")
}

// TestForceRemoveDuringExecve force-removes containers whose process
// keeps entering execve from a multi-threaded program. The runtime
// freezes a container to kill all its processes, and a thread in execve
// cannot be frozen while it waits for its already frozen siblings: the v1
// freezer stayed FREEZING, and about one removal in ten stalled 10 s,
// then failed.
func TestForceRemoveDuringExecve(t *testing.T) {
	td := newTestDaemon(t, noLiveRestore)
	ctx := ctxT(t)
	bin := reexecBinary(t)
	var slowest time.Duration
	for round := 0; round < 20; round++ {
		id := td.run(t, &api.Config{Cmd: []string{"/reexec/reexec"}}, &api.HostConfig{Binds: []string{bin + ":/reexec:ro"}})
		start := time.Now()
		err := td.RemoveContainer(ctx, id, RemoveContainerOptions{Force: true})
		took := time.Since(start)
		slowest = max(slowest, took)
		if err != nil {
			t.Fatalf("round %d: force remove after %v: %v", round, took, err)
		}
		if took > 5*time.Second {
			t.Errorf("round %d: force remove took %v", round, took)
		}
	}
	t.Logf("slowest force remove: %v", slowest)
}
