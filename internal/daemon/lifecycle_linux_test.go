package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	api "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/mountinfo"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/shim"
	"github.com/berth-project/berth/internal/snapshot"
)

func TestRunWaitLogsRemove(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	id := td.create(t, "first", &api.Config{Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, nil)
	v, err := td.Container(ctx, "first", false)
	if err != nil || v.ID != id || v.State.Status != api.StateCreated || v.Path != "sh" {
		t.Fatalf("inspect created: %+v %v", v.State, err)
	}
	if _, err := td.CreateContainer(ctx, CreateContainerOptions{Name: "/first", Config: &api.Config{Image: "busybox"}}); !errdefs.IsConflict(err) ||
		!strings.Contains(err.Error(), `The container name "/first" is already in use`) {
		t.Errorf("second create with the same name: %v", err)
	}
	if r := td.startAndWait(t, id[:12], api.WaitConditionNextExit); r.ExitCode != 3 {
		t.Errorf("exit code %d, want 3", r.ExitCode)
	}
	v, _ = td.Container(ctx, id, false)
	if v.State.Status != api.StateExited || v.State.ExitCode != 3 || v.State.FinishedAt.Before(v.State.StartedAt) || v.State.Pid != 0 {
		t.Errorf("state after exit: %+v", v.State)
	}
	if out, errOut := td.logs(t, id); out != "out\n" || errOut != "err\n" {
		t.Errorf("logs: stdout %q stderr %q", out, errOut)
	}
	if err := td.StopContainer(ctx, id, StopOptions{}); !errdefs.IsNotModified(err) {
		t.Errorf("stop of a stopped container: %v, want not modified", err)
	}
	if err := td.RemoveContainer(ctx, id, RemoveContainerOptions{}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if _, err := td.Container(ctx, id, false); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container") {
		t.Errorf("inspect after remove: %v", err)
	}
	for _, dir := range []string{td.ctrDir(id), td.bundleDir(id), td.shimDir(id)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", dir, err)
		}
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	id := td.create(t, "", &api.Config{Cmd: []string{"sh", "-c", "trap '' TERM; echo ready; while true; do sleep 1; done"}}, nil)
	if err := td.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := td.RemoveContainer(ctx, id, RemoveContainerOptions{}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "container is running") {
		t.Errorf("remove of a running container: %v", err)
	}
	if err := td.StartContainer(ctx, id); !errdefs.IsNotModified(err) {
		t.Errorf("second start: %v, want not modified", err)
	}
	one := 1
	start := time.Now()
	if err := td.StopContainer(ctx, id, StopOptions{Timeout: &one}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if el := time.Since(start); el < time.Second {
		t.Errorf("stop returned after %v, before its 1s grace period", el)
	}
	v, _ := td.Container(ctx, id, false)
	if v.State.ExitCode != 137 || v.State.Status != api.StateExited {
		t.Errorf("after stop: %+v, want exited 137", v.State)
	}
}

func TestRestartPolicyOnFailure(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	_, sub := td.events.Subscribe(time.Time{})
	defer sub.Close()
	id := td.create(t, "", &api.Config{Cmd: []string{"sh", "-c", "exit 1"}},
		&api.HostConfig{RestartPolicy: api.RestartPolicy{Name: api.RestartPolicyOnFailure, MaximumRetryCount: 2}})
	if err := td.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	for starts := 0; starts < 3; {
		select {
		case ev := <-sub.C:
			if ev.Type == "container" && ev.Action == "start" && ev.ID == id {
				starts++
			}
		case <-time.After(testTimeout):
			t.Fatalf("saw %d starts, want 3", starts)
		}
	}
	deadline := time.Now().Add(testTimeout)
	for {
		v, _ := td.Container(ctx, id, false)
		if v.State.Status == api.StateExited && v.RestartCount == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s restarts %d, want exited after 2 restarts", v.State.Status, v.RestartCount)
		}
		ch, _ := td.WaitContainer(ctx, id, api.WaitConditionNotRunning)
		waitFor(t, ch)
	}
}

func TestAutoRemove(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	if _, err := td.CreateContainer(ctx, CreateContainerOptions{Config: &api.Config{Image: "busybox"},
		HostConfig: &api.HostConfig{AutoRemove: true, RestartPolicy: api.RestartPolicy{Name: api.RestartPolicyAlways}}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("--rm with a restart policy: %v", err)
	}
	id := td.create(t, "", &api.Config{Cmd: []string{"sh", "-c", "exit 5"}}, &api.HostConfig{AutoRemove: true})
	if r := td.startAndWait(t, id, api.WaitConditionRemoved); r.ExitCode != 5 {
		t.Errorf("exit code %d, want 5", r.ExitCode)
	}
	if _, err := td.Container(ctx, id, false); !errdefs.IsNotFound(err) {
		t.Errorf("container still there after auto-remove: %v", err)
	}
}

func TestAttachBeforeStart(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	id := td.create(t, "", &api.Config{Cmd: []string{"sh", "-c", "read line; echo got $line; echo bye >&2"}, OpenStdin: true, StdinOnce: true}, nil)
	var out, errOut bytes.Buffer
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	registered := make(chan struct{})
	go func() {
		done <- td.AttachContainer(ctx, id, AttachOptions{Stdin: pr, Stdout: &out, Stderr: &errOut, Stream: true,
			Attached: func() { close(registered) }})
	}()
	// Start only once the attach says it is registered, as a client that
	// waits for the response head does.
	select {
	case <-registered:
	case err := <-done:
		t.Fatalf("attach ended before it registered: %v", err)
	case <-time.After(testTimeout):
		t.Fatal("attach never registered")
	}
	if err := td.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte("hello\n"))
	pw.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("attach: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("attach did not return")
	}
	if out.String() != "got hello\n" || errOut.String() != "bye\n" {
		t.Errorf("attach got stdout %q stderr %q", out.String(), errOut.String())
	}
}

// TestRestoreStartCutShort: the daemon stopped after it launched a
// container's shim but before the start call. The restarted daemon finds
// the shim with no container, removes it and records the start as failed.
func TestRestoreStartCutShort(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	id := td.create(t, "cut", &api.Config{Cmd: []string{"sleep", "1000"}}, nil)
	e, err := td.ctrs.get(id)
	if err != nil {
		t.Fatal(err)
	}
	bundle := td.bundleDir(id)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		t.Fatal(err)
	}
	cl, err := shim.Start(ctx, shim.StartOptions{
		Shim: td.cfg.ShimPath, Runtime: td.cfg.RuntimePath, RuntimeRoot: td.runtimeRoot(),
		ID: id, Bundle: bundle, StateDir: td.shimDir(id),
	})
	if err != nil {
		t.Fatal(err)
	}
	shimPid := cl.ShimPid()
	cl.Close()
	e.mu.Lock()
	e.c.State.Status, e.c.HasBeenStarted = api.StateRunning, true
	if err := td.save(e); err != nil {
		t.Fatal(err)
	}
	e.mu.Unlock()
	td.close(t)
	td.open(t)
	v, err := td.Container(ctx, id, false)
	if err != nil || v.State.Status != api.StateExited || v.State.ExitCode != 128 {
		t.Fatalf("container whose start was cut short: %+v, %v; want exited 128", v.State, err)
	}
	poll(t, "the shim to exit", func() bool { return syscall.Kill(shimPid, 0) != nil })
}

func TestLiveRestore(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	keep := td.create(t, "keep", &api.Config{Cmd: []string{"sh", "-c", "echo before; while true; do sleep 1; done"}}, nil)
	gone := td.create(t, "gone", &api.Config{Cmd: []string{"sleep", "1000"}}, nil)
	for _, id := range []string{keep, gone} {
		if err := td.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	v, _ := td.Container(ctx, keep, false)
	keepPid := v.State.Pid
	v, _ = td.Container(ctx, gone, false)
	gonePid := v.State.Pid
	goneExit := td.shimDir(gone) + "/exit.json"
	td.close(t)
	// While the daemon is down: one container keeps running, one is killed.
	if err := syscall.Kill(keepPid, 0); err != nil {
		t.Fatalf("container died with the daemon: %v", err)
	}
	if err := syscall.Kill(gonePid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Its shim records the exit even with no daemon to tell.
	poll(t, "shim records the exit", func() bool { _, err := os.Stat(goneExit); return err == nil })
	td.open(t)
	v, err := td.Container(ctx, keep, false)
	if err != nil || v.State.Status != api.StateRunning || v.State.Pid != keepPid {
		t.Fatalf("restored container: %+v %v", v.State, err)
	}
	v, _ = td.Container(ctx, gone, false)
	if v.State.Status != api.StateExited || v.State.ExitCode != 137 {
		t.Errorf("container killed while the daemon was down: %+v, want exited 137", v.State)
	}
	if out, _ := td.logs(t, keep); !strings.Contains(out, "before") {
		t.Errorf("log after restore: %q", out)
	}
	ch, _ := td.WaitContainer(ctx, keep, api.WaitConditionNextExit)
	if err := td.KillContainer(ctx, keep, "KILL"); err != nil {
		t.Fatalf("kill after restore: %v", err)
	}
	if r := waitFor(t, ch); r.ExitCode != 137 {
		t.Errorf("exit after restore: %d", r.ExitCode)
	}
}

// shimRunning reports whether a berth-shim process for container id is
// alive, from /proc.
func shimRunning(t *testing.T, id string) bool {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		raw, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(string(raw), "\x00")
		if len(args) > 2 && strings.HasSuffix(args[0], "berth-shim") && slices.Contains(args, id) {
			return true
		}
	}
	return false
}

// TestStartFailsWhileShimStarts fails a start after the shim was
// launched in the background but before it is used (its network is a
// container's that is not running): the start reports why, and the
// shim, its state directory and the bundle are gone.
func TestStartFailsWhileShimStarts(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	other := td.create(t, "other", &api.Config{Cmd: []string{"true"}}, nil)
	id := td.create(t, "joiner", &api.Config{Cmd: []string{"true"}}, &api.HostConfig{NetworkMode: api.NetworkMode("container:" + other)})
	err := td.StartContainer(ctx, id)
	if err == nil {
		t.Fatal("a start joining a stopped container's network succeeded")
	}
	if !strings.Contains(err.Error(), "not running") {
		t.Errorf("the start's error does not say the other container is not running: %v", err)
	}
	if shimRunning(t, id) {
		t.Error("a berth-shim for the container is still running")
	}
	for _, dir := range []string{td.bundleDir(id), td.shimDir(id)} {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left behind (%v)", dir, err)
		}
	}
	v, err := td.Container(ctx, id, false)
	if err != nil || v.State.Status != api.StateCreated || v.State.Error == "" {
		t.Errorf("state after the failed start: %+v %v", v.State, err)
	}
}

// TestExitReleasesRoot: once a container ends, its root is unmounted and
// its bundle removed (and with --rm its layer); with the host's pid
// namespace, after the runtime's delete has killed what outlived init.
func TestExitReleasesRoot(t *testing.T) {
	td := newTestDaemon(t)
	ctx := ctxT(t)
	mounted := func(dir string) bool {
		m, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			t.Fatal(err)
		}
		return len(m) > 0
	}
	gone := func(p string) bool {
		_, err := os.Stat(p)
		return errors.Is(err, os.ErrNotExist)
	}

	id := td.create(t, "", &api.Config{Cmd: []string{"true"}}, &api.HostConfig{AutoRemove: true})
	e, err := td.ctrs.get(id)
	if err != nil {
		t.Fatal(err)
	}
	mounts, err := td.snap.Mounts(ctx, e.c.SnapshotKey)
	if err != nil {
		t.Fatal(err)
	}
	upper, _, err := snapshot.UpperDir(mounts)
	if err != nil || upper == "" {
		t.Fatalf("no upper dir in %v: %v", mounts, err)
	}
	bundle := td.bundleDir(id)
	td.startAndWait(t, id, api.WaitConditionRemoved)
	if mounted(bundle) || !gone(bundle) || !gone(filepath.Dir(upper)) {
		t.Errorf("after --rm: root mounted %v, bundle gone %v, layer %s gone %v", mounted(bundle), gone(bundle), filepath.Dir(upper), gone(filepath.Dir(upper)))
	}

	// With the host's pid namespace a child of init outlives it until
	// the runtime's delete; the root is released only after that.
	marker := fmt.Sprintf("berth-outlive-%d", time.Now().UnixNano())
	id = td.create(t, "", &api.Config{Cmd: []string{"sh", "-c", "sleep 1000 " + marker + " & exit 0"}}, &api.HostConfig{PidMode: "host"})
	bundle = td.bundleDir(id)
	td.startAndWait(t, id, api.WaitConditionNotRunning)
	if mounted(bundle) || !gone(bundle) {
		t.Errorf("after exit with the host's pids: root mounted %v, bundle gone %v", mounted(bundle), gone(bundle))
	}
	poll(t, "the process that outlived init ends", func() bool {
		out, _ := exec.Command("pgrep", "-f", marker).Output()
		return len(out) == 0
	})
}
