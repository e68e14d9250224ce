package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
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

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	api "github.com/moby/moby/api/types/container"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/network/bridge"
	"github.com/berth-project/berth/internal/network/firewall"
	"github.com/berth-project/berth/internal/testutil"
)

// pollTimeout bounds every wait for a condition in these tests.
const pollTimeout = 30 * time.Second

// testRig is a daemon on temporary roots with the busybox image loaded
// as busybox:latest, and the events it published.
type testRig struct {
	d   *Daemon
	cfg Config
	dir string
	sub *Subscription
	// ids are the containers the rig made.
	ids []string

	mu     sync.Mutex
	events []Event
}

// shimBinary builds berth-shim into dir.
func shimBinary(t *testing.T, dir string) string {
	t.Helper()
	out := filepath.Join(dir, "berth-shim")
	cmd := exec.Command("go", "build", "-o", out, "github.com/berth-project/berth/cmd/berth-shim")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build berth-shim: %v\n%s", err, msg)
	}
	return out
}

// newRig starts a daemon (liveRestore as asked) with its own roots and
// default bridge; cleanup closes it, removes the bridge and the firewall
// table and checks that nothing stays mounted under the roots.
func newRig(t *testing.T, liveRestore bool) *testRig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests run containers: run them as root")
	}
	dir, err := os.MkdirTemp("", "berthd-x-")
	if err != nil {
		t.Fatal(err)
	}
	var b [4]byte
	rand.Read(b[:])
	cfg := Config{
		DataRoot:      filepath.Join(dir, "data"),
		ExecRoot:      filepath.Join(dir, "exec"),
		StorageDriver: "overlay",
		Bridge:        "bx" + hex.EncodeToString(b[:]),
		ShimPath:      shimBinary(t, dir),
		RuntimePath:   testutil.RuntimeBinary(t),
		LiveRestore:   liveRestore,
	}
	t.Cleanup(func() {
		// The network manager's shared mount for namespaces stays by
		// design (like Docker's /run/docker/netns).
		unix.Unmount(filepath.Join(cfg.ExecRoot, "netns"), unix.MNT_DETACH)
		bridge.Delete(cfg.Bridge)
		if fw, err := firewall.New(firewallTable(cfg.Bridge)); err == nil {
			fw.Cleanup()
		}
		mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
		if err != nil {
			t.Errorf("read mounts: %v", err)
		}
		for _, m := range mounts {
			t.Errorf("left mounted: %s", m.Mountpoint)
		}
		if len(mounts) == 0 {
			os.RemoveAll(dir)
		}
	})
	r := &testRig{cfg: cfg, dir: dir}
	r.open(t)
	t.Cleanup(func() { r.teardown(t) })
	img, err := testutil.BusyboxImage()
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(tag, img, &buf); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.LoadImages(context.Background(), &buf, nil); err != nil {
		t.Fatalf("load busybox: %v", err)
	}
	return r
}

// open starts the daemon on the rig's roots and records its events.
func (r *testRig) open(t *testing.T) {
	t.Helper()
	d, err := New(context.Background(), r.cfg)
	if err != nil {
		t.Fatalf("new daemon: %v", err)
	}
	r.d = d
	_, r.sub = d.Events().Subscribe(time.Time{})
	go func(c <-chan Event) {
		for ev := range c {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
	}(r.sub.C)
}

// close closes the daemon.
func (r *testRig) close(t *testing.T) {
	t.Helper()
	r.sub.Close()
	if err := r.d.Close(); err != nil {
		t.Errorf("close daemon: %v", err)
	}
	r.d = nil
}

// teardown removes the rig's containers, closes the daemon and checks
// that the containers left nothing behind.
func (r *testRig) teardown(t *testing.T) {
	t.Helper()
	if r.d == nil {
		return
	}
	for _, id := range r.ids {
		if err := r.d.RemoveContainer(context.Background(), id, RemoveContainerOptions{Force: true, Volumes: true}); err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("remove container %s: %v", id, err)
		}
	}
	r.close(t)
	for _, id := range r.ids {
		leaks, err := testutil.Leaks(id)
		if err != nil {
			t.Errorf("check leaks of %s: %v", id, err)
		}
		for _, l := range leaks {
			t.Errorf("container %s leaked %s", id, l)
		}
	}
}

// run creates and starts a busybox container running cmd (a sleep by
// default); the rig's teardown removes it.
func (r *testRig) run(t *testing.T, cfg *api.Config, hc *api.HostConfig) string {
	t.Helper()
	if cfg == nil {
		cfg = &api.Config{}
	}
	cfg.Image = "busybox:latest"
	if len(cfg.Cmd) == 0 {
		cfg.Cmd = []string{"sleep", "1000"}
	}
	ctx := context.Background()
	res, err := r.d.CreateContainer(ctx, CreateContainerOptions{Config: cfg, HostConfig: hc})
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	id := res.ID
	r.ids = append(r.ids, id)
	if err := r.d.StartContainer(ctx, id); err != nil {
		t.Fatalf("start container: %v", err)
	}
	return id
}

// exec runs cmd in container id with opts and returns its output and
// exit code.
func (r *testRig) exec(t *testing.T, id string, opts ExecCreateOptions, stdin io.Reader) (stdout, stderr string, code int) {
	t.Helper()
	ctx := context.Background()
	opts.AttachStdout, opts.AttachStderr = true, true
	opts.AttachStdin = stdin != nil
	eid, err := r.d.CreateExec(ctx, id, opts)
	if err != nil {
		t.Fatalf("create exec %q: %v", opts.Cmd, err)
	}
	var out, errOut bytes.Buffer
	if err := r.d.StartExec(ctx, eid, ExecStartOptions{Stdin: stdin, Stdout: &out, Stderr: &errOut}); err != nil {
		t.Fatalf("start exec %q: %v", opts.Cmd, err)
	}
	info, err := r.d.InspectExec(ctx, eid)
	if err != nil {
		t.Fatalf("inspect exec: %v", err)
	}
	if info.Running || info.ExitCode == nil || !info.CanRemove || info.Pid <= 0 {
		t.Fatalf("exec %q after its end: %+v", opts.Cmd, info)
	}
	return out.String(), errOut.String(), *info.ExitCode
}

// waitEvent waits for an event of container id whose action satisfies ok.
func (r *testRig) waitEvent(t *testing.T, id string, ok func(Event) bool) Event {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, ev := range r.events {
			if ev.ID == id && ok(ev) {
				r.mu.Unlock()
				return ev
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no such event for %s within %v", id, pollTimeout)
	return Event{}
}

// poll calls cond until it holds or the deadline passes.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(pollTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, pollTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecInContainer(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()
	id := r.run(t, &api.Config{Env: []string{"FOO=orig", "KEEP=1"}, WorkingDir: "/home"}, nil)

	t.Run("output and exit code", func(t *testing.T) {
		out, errOut, code := r.exec(t, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, nil)
		if out != "out\n" || errOut != "err\n" || code != 3 {
			t.Errorf("stdout %q stderr %q code %d", out, errOut, code)
		}
		die := r.waitEvent(t, id, func(ev Event) bool { return ev.Action == "exec_die" && ev.Attributes["exitCode"] == "3" })
		eid := die.Attributes["execID"]
		if len(eid) != 64 || die.Attributes["image"] != "busybox:latest" {
			t.Errorf("exec_die attributes %v", die.Attributes)
		}
		for _, verb := range []string{"exec_create", "exec_start"} {
			r.waitEvent(t, id, func(ev Event) bool {
				return ev.Action == verb+": sh -c echo out; echo err >&2; exit 3" && ev.Attributes["execID"] == eid
			})
		}
	})

	t.Run("environment and working directory", func(t *testing.T) {
		out, _, code := r.exec(t, id, ExecCreateOptions{
			Cmd: []string{"sh", "-c", `echo "$FOO $KEEP $NEW ${TERM:-noterm}"; pwd`},
			Env: []string{"FOO=exec", "NEW=2"},
		}, nil)
		if out != "exec 1 2 noterm\n/home\n" || code != 0 {
			t.Errorf("output %q code %d", out, code)
		}
		out, _, _ = r.exec(t, id, ExecCreateOptions{Cmd: []string{"pwd"}, WorkingDir: "/tmp"}, nil)
		if out != "/tmp\n" {
			t.Errorf("working dir %q", out)
		}
	})

	t.Run("user", func(t *testing.T) {
		for user, want := range map[string]string{"": "0 0", "berth": "1000 1000", "nobody:nogroup": "65534 65534", "1234:5": "1234 5"} {
			out, _, _ := r.exec(t, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "echo $(id -u) $(id -g)"}, User: user}, nil)
			if strings.TrimSpace(out) != want {
				t.Errorf("user %q: id %q, want %q", user, out, want)
			}
		}
		eid, err := r.d.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"true"}, User: "nosuchuser"})
		if err != nil {
			t.Fatal(err)
		}
		err = r.d.StartExec(ctx, eid, ExecStartOptions{})
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "unable to find user nosuchuser") {
			t.Errorf("unknown user: %v", err)
		}
		if info, _ := r.d.InspectExec(ctx, eid); info.ExitCode == nil || *info.ExitCode != 126 || info.Running {
			t.Errorf("exec that failed to start: %+v", info)
		}
	})

	t.Run("privileged", func(t *testing.T) {
		capEff := func(priv bool) string {
			out, _, _ := r.exec(t, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "grep CapEff /proc/self/status"}, Privileged: priv}, nil)
			return strings.TrimSpace(strings.TrimPrefix(out, "CapEff:"))
		}
		plain, priv := capEff(false), capEff(true)
		// CAP_SYS_ADMIN is bit 21: only the privileged exec has it.
		hasSysAdmin := func(mask string) bool {
			b, err := hex.DecodeString(mask)
			return err == nil && len(b) == 8 && b[5]&0x20 != 0
		}
		if hasSysAdmin(plain) || !hasSysAdmin(priv) {
			t.Errorf("CapEff plain %s privileged %s", plain, priv)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		out, _, code := r.exec(t, id, ExecCreateOptions{Cmd: []string{"cat"}}, strings.NewReader("hello\nworld\n"))
		if out != "hello\nworld\n" || code != 0 {
			t.Errorf("cat: %q %d", out, code)
		}
	})

	t.Run("tty", func(t *testing.T) {
		out, errOut, code := r.exec(t, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "tty; echo $TERM; echo oops >&2"}, Tty: true, ConsoleSize: &[2]uint{33, 111}}, nil)
		if !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "xterm\r\n") || !strings.Contains(out, "oops") || errOut != "" || code != 0 {
			t.Errorf("tty exec: stdout %q stderr %q code %d", out, errOut, code)
		}
		out, _, _ = r.exec(t, id, ExecCreateOptions{Cmd: []string{"stty", "size"}, Tty: true, ConsoleSize: &[2]uint{33, 111}}, nil)
		if strings.TrimSpace(out) != "33 111" {
			t.Errorf("console size %q", out)
		}
	})

	t.Run("resize", func(t *testing.T) {
		eid, err := r.d.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"sh"}, Tty: true, AttachStdin: true, AttachStdout: true})
		if err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		defer pw.Close()
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- r.d.StartExec(ctx, eid, ExecStartOptions{Stdin: pr, Stdout: &out}) }()
		if err := r.d.ResizeExec(ctx, eid, 50, 120); err != nil {
			t.Fatalf("resize: %v", err)
		}
		io.WriteString(pw, "stty size; exit\n")
		if err := <-done; err != nil {
			t.Fatalf("start: %v", err)
		}
		if !strings.Contains(out.String(), "50 120") {
			t.Errorf("output %q has no 50 120", out.String())
		}
		if err := r.d.ResizeExec(ctx, eid, 1, 1); !errdefs.IsConflict(err) {
			t.Errorf("resize of an ended exec: %v", err)
		}
	})

	t.Run("detach keys", func(t *testing.T) {
		eid, err := r.d.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"cat"}, AttachStdin: true, AttachStdout: true, DetachKeys: "ctrl-x,x"})
		if err != nil {
			t.Fatal(err)
		}
		pr, pw := io.Pipe()
		defer pw.Close()
		var out syncBuffer
		done := make(chan error, 1)
		go func() { done <- r.d.StartExec(ctx, eid, ExecStartOptions{Stdin: pr, Stdout: &out}) }()
		io.WriteString(pw, "abc\n")
		poll(t, "cat echoes", func() bool { return out.String() == "abc\n" })
		io.WriteString(pw, "\x18x")
		if err := <-done; !errors.Is(err, ErrDetached) {
			t.Fatalf("start after detach keys: %v", err)
		}
		info, err := r.d.InspectExec(ctx, eid)
		if err != nil || !info.Running || info.ExitCode != nil || info.DetachKeys != "ctrl-x,x" || info.Entrypoint != "cat" {
			code := -1000
			if info.ExitCode != nil {
				code = *info.ExitCode
			}
			t.Fatalf("detached exec: %+v (exit code %d) %v", info, code, err)
		}
		v, err := r.d.Container(ctx, id, false)
		if err != nil || !slices.Contains(v.ExecIDs, eid) {
			t.Errorf("container's exec IDs %v miss the running %s (%v)", v.ExecIDs, eid, err)
		}
		if err := r.d.StartExec(ctx, eid, ExecStartOptions{}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is already running") {
			t.Errorf("second start: %v", err)
		}
	})

	t.Run("detached start", func(t *testing.T) {
		eid, err := r.d.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"sh", "-c", "echo lost; exit 7"}, AttachStdout: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.d.StartExec(ctx, eid, ExecStartOptions{Detach: true, Stdout: io.Discard}); err != nil {
			t.Fatal(err)
		}
		poll(t, "detached exec exits", func() bool {
			info, err := r.d.InspectExec(ctx, eid)
			return err == nil && info.ExitCode != nil && *info.ExitCode == 7 && !info.Running
		})
		v, _ := r.d.Container(ctx, id, false)
		if slices.Contains(v.ExecIDs, eid) {
			t.Errorf("ended exec %s still listed in %v", eid, v.ExecIDs)
		}
		if err := r.d.StartExec(ctx, eid, ExecStartOptions{}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "has already run") {
			t.Errorf("start of an ended exec: %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		if _, err := r.d.CreateExec(ctx, id, ExecCreateOptions{}); !errdefs.IsInvalidArgument(err) {
			t.Errorf("no command: %v", err)
		}
		if _, err := r.d.CreateExec(ctx, "nosuchcontainer", ExecCreateOptions{Cmd: []string{"ls"}}); !errdefs.IsNotFound(err) {
			t.Errorf("no container: %v", err)
		}
		for _, f := range []func() error{
			func() error { return r.d.StartExec(ctx, "nosuchexec", ExecStartOptions{}) },
			func() error { _, err := r.d.InspectExec(ctx, "nosuchexec"); return err },
			func() error { return r.d.ResizeExec(ctx, "nosuchexec", 1, 1) },
		} {
			if err := f(); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such exec instance: nosuchexec") {
				t.Errorf("unknown exec: %v", err)
			}
		}
		eid, err := r.d.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"nosuchcommand"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.d.StartExec(ctx, eid, ExecStartOptions{}); err == nil || !strings.Contains(err.Error(), "nosuchcommand") {
			t.Errorf("missing command: %v", err)
		}
		if err := r.d.PauseContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		_, err = r.d.CreateExec(ctx, id, ExecCreateOptions{Cmd: []string{"ls"}})
		if err := r.d.UnpauseContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is paused, unpause the container before exec") {
			t.Errorf("paused container: %v", err)
		}
	})

	t.Run("container stop ends execs", func(t *testing.T) {
		id2 := r.run(t, nil, nil)
		eid, err := r.d.CreateExec(ctx, id2, ExecCreateOptions{Cmd: []string{"sleep", "1000"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.d.StartExec(ctx, eid, ExecStartOptions{Detach: true}); err != nil {
			t.Fatal(err)
		}
		never, err := r.d.CreateExec(ctx, id2, ExecCreateOptions{Cmd: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.d.KillContainer(ctx, id2, "KILL"); err != nil {
			t.Fatal(err)
		}
		poll(t, "container stops", func() bool { v, _ := r.d.Container(ctx, id2, false); return !v.State.Running() })
		poll(t, "exec ends with its container", func() bool {
			info, err := r.d.InspectExec(ctx, eid)
			return err == nil && info.ExitCode != nil && !info.Running
		})
		if _, err := r.d.InspectExec(ctx, never); !errdefs.IsNotFound(err) {
			t.Errorf("exec never started outlived its container's run: %v", err)
		}
		if _, err := r.d.CreateExec(ctx, id2, ExecCreateOptions{Cmd: []string{"ls"}}); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is not running") {
			t.Errorf("stopped container: %v", err)
		}
		if err := r.d.RemoveContainer(ctx, id2, RemoveContainerOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.d.InspectExec(ctx, eid); !errdefs.IsNotFound(err) {
			t.Errorf("exec of a removed container: %v", err)
		}
	})
}

func TestHealthCheck(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()
	health := func(id string) *api.Health {
		v, err := r.d.Container(ctx, id, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(v.ExecIDs) != 0 {
			t.Errorf("health probes listed as execs: %v", v.ExecIDs)
		}
		return v.State.Health
	}

	t.Run("unhealthy then healthy", func(t *testing.T) {
		id := r.run(t, &api.Config{Healthcheck: &api.HealthConfig{
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
		r.waitEvent(t, id, func(ev Event) bool { return ev.Action == "health_status: unhealthy" })
		r.exec(t, id, ExecCreateOptions{Cmd: []string{"touch", "/tmp/ok"}}, nil)
		poll(t, "healthy", func() bool { h = health(id); return h.Status == api.Healthy })
		if h.FailingStreak != 0 || h.Log[len(h.Log)-1].ExitCode != 0 {
			t.Errorf("healthy: %+v", h)
		}
		r.waitEvent(t, id, func(ev Event) bool { return ev.Action == "health_status: healthy" })
		r.waitEvent(t, id, func(ev Event) bool { return ev.Action == "exec_start: /bin/sh -c echo probing; test -f /tmp/ok" })
		poll(t, "more than five probes", func() bool { h = health(id); return h.Log[0].ExitCode == 0 })
		if len(h.Log) != 5 {
			t.Errorf("log keeps %d results", len(h.Log))
		}
		if err := r.d.StopContainer(ctx, id, StopOptions{Timeout: new(int)}); err != nil {
			t.Fatal(err)
		}
		if h := health(id); h.Status != api.Unhealthy {
			t.Errorf("stopped container's health %s", h.Status)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		id := r.run(t, &api.Config{Healthcheck: &api.HealthConfig{
			Test: []string{"CMD", "sleep", "100"}, Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond, Retries: 1,
		}}, nil)
		var h *api.Health
		poll(t, "unhealthy", func() bool { h = health(id); return h.Status == api.Unhealthy })
		last := h.Log[len(h.Log)-1]
		if last.ExitCode != -1 || last.Output != "Health check exceeded timeout (200ms)" {
			t.Errorf("timed out probe %+v", last)
		}
		top, err := r.d.TopContainer(ctx, id, "-o pid,args")
		if err != nil {
			t.Fatal(err)
		}
		if n := countRows(top, "sleep 100"); n > 1 {
			t.Errorf("%d timed out probes still run: %q", n, top.Processes)
		}
	})

	t.Run("start period", func(t *testing.T) {
		id := r.run(t, &api.Config{Healthcheck: &api.HealthConfig{
			Test: []string{"CMD", "false"}, Interval: time.Hour, StartPeriod: time.Hour, StartInterval: 50 * time.Millisecond, Retries: 1,
		}}, nil)
		var h *api.Health
		poll(t, "three probes", func() bool { h = health(id); return len(h.Log) >= 3 })
		if h.Status != api.Starting || h.FailingStreak != 0 {
			t.Errorf("failures in the start period counted: %+v", h)
		}
	})

	t.Run("none", func(t *testing.T) {
		id := r.run(t, &api.Config{Healthcheck: &api.HealthConfig{Test: []string{"NONE"}}}, nil)
		if h := health(id); h != nil {
			t.Errorf("health of a container without a check: %+v", h)
		}
	})
}

// TestHealthCheckSurvivesRestart restarts a live-restore daemon under a
// healthy container: the record keeps its health and the checker goes on.
func TestHealthCheckSurvivesRestart(t *testing.T) {
	r := newRig(t, true)
	ctx := context.Background()
	id := r.run(t, &api.Config{Healthcheck: &api.HealthConfig{Test: []string{"CMD", "true"}, Interval: 100 * time.Millisecond}}, nil)
	poll(t, "healthy", func() bool {
		v, err := r.d.Container(ctx, id, false)
		return err == nil && v.State.Health.Status == api.Healthy
	})
	r.close(t)
	r.open(t)
	v, err := r.d.Container(ctx, id, false)
	if err != nil {
		t.Fatal(err)
	}
	if !v.State.Running() || v.State.Health == nil || v.State.Health.Status != api.Healthy {
		t.Fatalf("restored container: %+v health %+v", v.State, v.State.Health)
	}
	seen := v.State.Health.Log[len(v.State.Health.Log)-1].End
	poll(t, "a probe after the restart", func() bool {
		v, err := r.d.Container(ctx, id, false)
		return err == nil && v.State.Health.Log[len(v.State.Health.Log)-1].End.After(seen)
	})
}

func TestStatsAndTop(t *testing.T) {
	r := newRig(t, false)
	ctx := context.Background()
	id := r.run(t, &api.Config{Cmd: []string{"sh", "-c", "sleep 1000 & sleep 2000"}}, &api.HostConfig{Resources: api.Resources{Memory: 64 << 20}})

	s, err := r.d.ContainerStats(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := r.d.Container(ctx, id, false)
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

	top, err := r.d.TopContainer(ctx, id, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(top.Titles, "PID") || !slices.Contains(top.Titles, "CMD") ||
		countRows(top, "sleep 1000") != 1 || countRows(top, "sleep 2000") != 1 ||
		len(top.Processes) != countRows(top, "sleep 1000")+countRows(top, "sleep 2000")+countRows(top, "sh -c sleep 1000 & sleep 2000") {
		t.Errorf("top -ef: %q %q", top.Titles, top.Processes)
	}
	r.waitEvent(t, id, func(ev Event) bool { return ev.Action == "top" })
	top, err = r.d.TopContainer(ctx, id, "-o pid,comm")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(top.Titles, []string{"PID", "COMMAND"}) || countRows(top, "sleep") != 2 {
		t.Errorf("top -o pid,comm: %q %q", top.Titles, top.Processes)
	}
	_, err = r.d.TopContainer(ctx, id, "--no-such-option")
	if err == nil || !strings.HasPrefix(err.Error(), "ps: ") || errdefs.IsInvalidArgument(err) || errdefs.IsConflict(err) {
		t.Errorf("bad ps option: %v", err)
	}
	if _, err := r.d.TopContainer(ctx, id, "-o user=PID"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("renamed PID column: %v", err)
	}

	if err := r.d.KillContainer(ctx, id, "KILL"); err != nil {
		t.Fatal(err)
	}
	poll(t, "container stops", func() bool { v, _ := r.d.Container(ctx, id, false); return !v.State.Running() })
	s, err = r.d.ContainerStats(ctx, id)
	if err != nil || s.ID != id || !s.Read.IsZero() || s.MemoryStats.Usage != 0 || s.PidsStats.Current != 0 {
		t.Errorf("stopped container's sample %+v %v", s, err)
	}
	if _, err := r.d.TopContainer(ctx, id, ""); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "is not running") {
		t.Errorf("top of a stopped container: %v", err)
	}
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
