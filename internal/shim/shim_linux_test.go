package shim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/shim"
	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestLogsAndExitCode(t *testing.T) {
	r := newRig(t, withArgs("sh", "-c", "echo out-line; echo err-line >&2; exit 3"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	st, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != shim.StatusCreated || st.Pid != 0 || st.ShimPid != c.ShimPid() {
		t.Fatalf("state before start = %+v, want created, no init yet, the shim's pid", st)
	}
	pid, err := c.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st, err = c.State(ctx); err != nil || st.Pid <= 0 || st.Pid != pid {
		t.Fatalf("state after start = %+v, %v; want init's pid, %d as Start said", st, err, pid)
	}
	exit, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if exit.Code != 3 || exit.ExitedAt.IsZero() || exit.OOMKilled {
		t.Fatalf("exit = %+v, want code 3", exit)
	}
	if st, err = c.State(ctx); err != nil || st.Status != shim.StatusStopped || st.ExitCode != 3 {
		t.Fatalf("state after exit = %+v, %v; want stopped, code 3", st, err)
	}
	entries := readLog(t, r.logPath)
	if got := logText(entries, "stdout"); got != "out-line\n" {
		t.Errorf("stdout in log = %q", got)
	}
	if got := logText(entries, "stderr"); got != "err-line\n" {
		t.Errorf("stderr in log = %q", got)
	}
	if len(entries) != 2 {
		t.Errorf("log has %d entries, want 2: %+v", len(entries), entries)
	}
	exit, err = c.Delete(ctx)
	if err != nil || exit.Code != 3 {
		t.Fatalf("delete = %+v, %v; want code 3", exit, err)
	}
	if alive(c.ShimPid()) {
		t.Errorf("shim %d still runs after delete", c.ShimPid())
	}
	if _, err := os.Stat(filepath.Join(r.stateDir, "shim.sock")); !os.IsNotExist(err) {
		t.Errorf("socket left after delete: %v", err)
	}
	saved, err := shim.ReadExitStatus(r.stateDir)
	if err != nil || saved.Code != 3 || !saved.ExitedAt.Equal(exit.ExitedAt) {
		t.Errorf("exit status file = %+v, %v; want %+v", saved, err, exit)
	}
	if _, err := shim.Connect(ctx, r.stateDir); err == nil {
		t.Error("connect after delete succeeded")
	}
}

// TestExitRemovesContainer: once init exits, the shim deletes the
// container with the runtime by itself, before any Delete call; Delete
// then still reports the exit and ends the shim.
func TestExitRemovesContainer(t *testing.T) {
	r := newRig(t, withArgs("true"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	stateDir := filepath.Join(r.root, r.id)
	eventually(t, "the runtime's state dir to go", func() bool {
		_, err := os.Stat(stateDir)
		return os.IsNotExist(err)
	})
	if st, err := c.State(ctx); err != nil || st.Status != shim.StatusStopped || st.ExitCode != 0 {
		t.Errorf("state after exit = %+v, %v; want stopped, code 0", st, err)
	}
	exit, err := c.Delete(ctx)
	if err != nil || exit.Code != 0 {
		t.Fatalf("delete = %+v, %v", exit, err)
	}
	if alive(c.ShimPid()) {
		t.Errorf("shim %d still runs after delete", c.ShimPid())
	}
}

func TestKill(t *testing.T) {
	t.Run("term", func(t *testing.T) {
		r := newRig(t, withArgs("sh", "-c", `trap "exit 7" TERM; echo ready; while true; do sleep 0.05; done`))
		c := r.start(r.opts())
		ctx := ctxT(t)
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, "ready in the log", func() bool { return logContains(r.logPath, "ready") })
		if err := c.Kill(ctx, syscall.SIGTERM, false); err != nil {
			t.Fatal(err)
		}
		if exit, err := c.Wait(ctx); err != nil || exit.Code != 7 {
			t.Fatalf("wait = %+v, %v; want code 7 from the trap", exit, err)
		}
	})
	t.Run("kill", func(t *testing.T) {
		r := newRig(t, withArgs("sleep", "1000"))
		c := r.start(r.opts())
		ctx := ctxT(t)
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if st, err := c.State(ctx); err != nil || st.Status != shim.StatusRunning {
			t.Fatalf("state = %+v, %v; want running", st, err)
		}
		if _, err := c.Delete(ctx); !errdefs.IsConflict(err) {
			t.Fatalf("delete of a running container = %v, want a conflict", err)
		}
		if err := c.Kill(ctx, syscall.SIGKILL, false); err != nil {
			t.Fatal(err)
		}
		if exit, err := c.Wait(ctx); err != nil || exit.Code != 128+9 {
			t.Fatalf("wait = %+v, %v; want code 137", exit, err)
		}
		if err := c.Kill(ctx, syscall.SIGKILL, false); !errdefs.IsConflict(err) {
			t.Errorf("kill after exit = %v, want a conflict", err)
		}
		if _, err := c.Start(ctx); !errdefs.IsConflict(err) {
			t.Errorf("start after exit = %v, want a conflict", err)
		}
	})
	t.Run("created", func(t *testing.T) {
		// Before its start the container is not in the runtime: there is
		// nothing to signal, and delete just ends the shim.
		r := newRig(t, withArgs("sleep", "1000"))
		c := r.start(r.opts())
		ctx := ctxT(t)
		if err := c.Kill(ctx, syscall.SIGKILL, false); !errdefs.IsConflict(err) {
			t.Errorf("kill before start = %v, want a conflict", err)
		}
		if _, err := c.Delete(ctx); err != nil {
			t.Fatalf("delete before start: %v", err)
		}
		if alive(c.ShimPid()) {
			t.Errorf("shim %d still runs after delete", c.ShimPid())
		}
	})
}

func TestDaemonRestart(t *testing.T) {
	r := newRig(t, withArgs("sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.02; done"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := c.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A wait given up by its caller leaves the shim serving.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, err = c.Wait(short)
	cancel()
	if err != context.DeadlineExceeded {
		t.Fatalf("wait with an expiring context = %v, want deadline exceeded", err)
	}
	eventually(t, "tick 1", func() bool { return logContains(r.logPath, "tick 1\\n") })
	// The daemon dies.
	c.Close()
	if _, err := c.State(ctx); !errdefs.IsUnavailable(err) {
		t.Errorf("call on a closed client = %v, want unavailable", err)
	}
	n := ticks(t, r.logPath)
	eventually(t, "logging without the daemon", func() bool { return ticks(t, r.logPath) > n+5 })
	c2, err := shim.Connect(ctx, r.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	st, err := c2.State(ctx)
	if err != nil || st.Status != shim.StatusRunning || st.Pid != before.Pid || st.ShimPid != before.ShimPid {
		t.Fatalf("state after reconnect = %+v, %v; want running as %+v", st, err, before)
	}
	if err := c2.Kill(ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if exit, err := c2.Wait(ctx); err != nil || exit.Code != 137 {
		t.Fatalf("wait = %+v, %v; want code 137", exit, err)
	}
	if _, err := c2.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(before.ShimPid) {
		t.Errorf("shim %d still runs after delete", before.ShimPid)
	}
}

// ticks returns the number of "tick" lines in the log.
func ticks(t *testing.T, path string) int {
	return strings.Count(logText(readLog(t, path), "stdout"), "tick ")
}

func TestStarterKilled(t *testing.T) {
	r := newRig(t, withArgs("sleep", "1000"))
	data, err := json.Marshal(r.opts())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	starter := exec.Command(os.Args[0], "-test.run=^$")
	starter.Env = append(os.Environ(), starterEnv+"="+string(data))
	starter.Stdout, starter.Stderr = pw, &out
	if err := starter.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	defer pr.Close()
	t.Cleanup(func() {
		starter.Process.Kill()
		starter.Wait()
	})
	line, err := readLine(pr)
	var shimPid int
	if _, serr := fmt.Sscanf(line, "started %d", &shimPid); err != nil || serr != nil {
		t.Fatalf("starter said %q (%v), stderr %s", line, err, out.String())
	}
	r.cleanup(shimPid)
	// The daemon is killed: the shim is reparented (to us, a subreaper).
	starter.Process.Kill()
	starter.Wait()

	ctx := ctxT(t)
	c, err := shim.Connect(ctx, r.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctx); err != nil || st.Status != shim.StatusRunning || st.ShimPid != shimPid {
		t.Fatalf("state = %+v, %v; want running under shim %d", st, err, shimPid)
	}
	if err := c.Kill(ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(shimPid, &ws, 0, nil); err != nil {
		t.Fatalf("reap the orphaned shim: %v", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Errorf("shim ended with %v, want exit 0", ws)
	}
	if exit, err := shim.ReadExitStatus(r.stateDir); err != nil || exit.Code != 137 {
		t.Errorf("exit status file = %+v, %v; want 137", exit, err)
	}
}

func readLine(f *os.File) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for {
		n, err := f.Read(one)
		if n == 1 {
			if one[0] == '\n' {
				return string(b), nil
			}
			b = append(b, one[0])
		}
		if err != nil {
			return string(b), err
		}
	}
}

func TestBadInput(t *testing.T) {
	t.Run("missing bundle", func(t *testing.T) {
		r := newRig(t, nil)
		opts := r.opts()
		opts.Bundle = filepath.Join(r.bundle, "nonexistent")
		err := r.startFails(opts)
		if err == nil || !strings.Contains(err.Error(), "berth-runtime run") || !strings.Contains(err.Error(), "nonexistent") {
			t.Fatalf("start = %v, want the runtime's error about the bundle", err)
		}
	})
	t.Run("bad runtime", func(t *testing.T) {
		r := newRig(t, nil)
		opts := r.opts()
		opts.Runtime = "/nonexistent/berth-runtime"
		err := r.startFails(opts)
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), opts.Runtime) {
			t.Fatalf("start = %v, want invalid argument naming the runtime", err)
		}
	})
	t.Run("bad shim", func(t *testing.T) {
		r := newRig(t, nil)
		opts := r.opts()
		opts.Shim = "/nonexistent/berth-shim"
		if _, err := shim.Start(ctxT(t), opts); !errdefs.IsInvalidArgument(err) {
			t.Fatalf("start = %v, want invalid argument", err)
		}
	})
	t.Run("terminal mismatch", func(t *testing.T) {
		r := newRig(t, withTerminal("sh"))
		err := r.startFails(r.opts())
		if err == nil || !strings.Contains(err.Error(), "console socket") {
			t.Fatalf("start = %v, want the runtime's console socket error", err)
		}
	})
	t.Run("bad config", func(t *testing.T) {
		r := newRig(t, nil)
		if err := os.WriteFile(filepath.Join(r.bundle, "config.json"), []byte("{not json"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := r.startFails(r.opts()); err == nil || !strings.Contains(err.Error(), "berth-runtime run") {
			t.Fatalf("start = %v, want the runtime's error", err)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		r := newRig(t, withArgs("/no/such/binary"))
		err := r.startFails(r.opts())
		if err == nil || !strings.Contains(err.Error(), "/no/such/binary") {
			t.Fatalf("start = %v, want the runtime's error naming the binary", err)
		}
	})
	t.Run("missing options", func(t *testing.T) {
		if _, err := shim.Start(ctxT(t), shim.StartOptions{}); !errdefs.IsInvalidArgument(err) {
			t.Fatalf("start = %v, want invalid argument", err)
		}
	})
	t.Run("second shim", func(t *testing.T) {
		r := newRig(t, withArgs("sleep", "1000"))
		r.start(r.opts())
		_, err := shim.Start(ctxT(t), r.opts())
		if !errdefs.IsAlreadyExists(err) {
			t.Fatalf("second shim on the same state dir = %v, want already exists", err)
		}
	})
	t.Run("connect to nothing", func(t *testing.T) {
		if _, err := shim.Connect(ctxT(t), t.TempDir()); !errdefs.IsUnavailable(err) {
			t.Fatalf("connect = %v, want unavailable", err)
		}
		if _, err := shim.ReadExitStatus(t.TempDir()); !errdefs.IsNotFound(err) {
			t.Fatalf("read exit status = %v, want not found", err)
		}
	})
}

// TestFootprint measures the time from starting the shim to a running
// container, and the shim's resident memory.
func TestFootprint(t *testing.T) {
	r := newRig(t, withArgs("sleep", "1000"))
	opts := r.opts() // builds the binaries if needed
	t0 := time.Now()
	c := r.start(opts)
	created := time.Since(t0)
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	running := time.Since(t0)
	t.Logf("shim start to created %v, to running %v; shim VmRSS %d KiB", created, running, statusField(t, c.ShimPid(), "VmRSS"))
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", c.ShimPid())); err != nil || !slices.Contains(strings.Split(string(env), "\x00"), "GOMAXPROCS=1") {
		t.Errorf("the shim does not run with GOMAXPROCS=1 (%v)", err)
	}
	// Idle a second after its last call, the shim trims its resident
	// pages: issue 4 allows at most 3 MB.
	const limit = 3_000_000 / 1024 // KiB
	var rss int
	eventually(t, "the idle shim's VmRSS to go under 3 MB", func() bool {
		rss = statusField(t, c.ShimPid(), "VmRSS")
		return rss <= limit
	})
	t.Logf("idle shim VmRSS %d KiB", rss)
}

// statusField returns a "kB" field of /proc/<pid>/status.
func statusField(t *testing.T, pid int, name string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", name, pid)
	return 0
}

// A line longer than 16 KiB is logged in pieces, like Docker does; the
// log rotates at its max size.
func TestLogLongLineAndRotation(t *testing.T) {
	r := newRig(t, withArgs("sh", "-c", "head -c 40000 /dev/zero | tr '\\0' a; echo; i=0; while [ $i -lt 500 ]; do echo line $i; i=$((i+1)); done"))
	opts := r.opts()
	opts.LogMaxSize, opts.LogMaxFile = 32<<10, 3
	c := r.start(opts)
	ctx := ctxT(t)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if exit, err := c.Wait(ctx); err != nil || exit.Code != 0 {
		t.Fatalf("wait = %+v, %v", exit, err)
	}
	if _, err := os.Stat(r.logPath + ".3"); !os.IsNotExist(err) {
		t.Errorf("more than max-file logs kept: %v", err)
	}
	var all []logEntry
	for _, name := range []string{r.logPath + ".2", r.logPath + ".1", r.logPath} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if name != r.logPath && fi.Size() < opts.LogMaxSize {
			t.Errorf("%s rotated at %d bytes, before max-size", name, fi.Size())
		}
		all = append(all, readLog(t, name)...)
	}
	if len(all) < 3 || len(all[0].Log) != 16<<10 || len(all[1].Log) != 16<<10 || all[2].Log != strings.Repeat("a", 40000-32<<10)+"\n" {
		t.Fatalf("the long line was not split at 16 KiB: %d entries, first lengths %v", len(all), entryLens(all))
	}
	if !strings.HasSuffix(logText(all, "stdout"), "line 499\n") {
		t.Errorf("the last line is not at the end of the newest log")
	}
}

func entryLens(entries []logEntry) []int {
	var n []int
	for i, e := range entries {
		if i == 4 {
			break
		}
		n = append(n, len(e.Log))
	}
	return n
}

// BenchmarkStart measures a container's life through the shim: shim start
// to running, then kill, wait and delete.
func BenchmarkStart(b *testing.B) {
	bundle := b.TempDir() + "/bundle"
	if err := testutil.WriteBundle(bundle, withArgs("sleep", "1000")); err != nil {
		b.Fatal(err)
	}
	root := testutil.RootDir(b)
	dir, err := os.MkdirTemp("", "berth-shim-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	var toRunning time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-%d-%d", os.Getpid(), i)
		t0 := time.Now()
		c, err := shim.Start(ctx, shim.StartOptions{
			Shim: shimBinary(b), Runtime: testutil.RuntimeBinary(b), RuntimeRoot: root,
			ID: id, Bundle: bundle, StateDir: filepath.Join(dir, strconv.Itoa(i)),
		})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Start(ctx); err != nil {
			b.Fatal(err)
		}
		toRunning += time.Since(t0)
		c.Kill(ctx, syscall.SIGKILL, false)
		c.Wait(ctx)
		if _, err := c.Delete(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(toRunning.Microseconds())/float64(b.N)/1000, "ms-to-running")
}

// BenchmarkRuntimeOnly is BenchmarkStart's baseline: the same container
// created and started by berth-runtime directly, without a shim.
func BenchmarkRuntimeOnly(b *testing.B) {
	bundle := b.TempDir() + "/bundle"
	if err := testutil.WriteBundle(bundle, withArgs("sleep", "1000")); err != nil {
		b.Fatal(err)
	}
	root := testutil.RootDir(b)
	var toRunning time.Duration
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("bench-rt-%d-%d", os.Getpid(), i)
		t0 := time.Now()
		if _, _, err := testutil.Runtime(b, root, "create", "--bundle", bundle, id); err != nil {
			b.Fatal(err)
		}
		if _, _, err := testutil.Runtime(b, root, "start", id); err != nil {
			b.Fatal(err)
		}
		toRunning += time.Since(t0)
		if _, _, err := testutil.Runtime(b, root, "delete", "--force", id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(toRunning.Microseconds())/float64(b.N)/1000, "ms-to-running")
}

// A Start cancelled at any point leaves nothing behind: before the shim
// runs, while the runtime creates the container, or just after.
func TestStartCancelled(t *testing.T) {
	for _, ms := range []int{1, 5, 10, 15, 20, 30, 40, 60} {
		d := time.Duration(ms) * time.Millisecond
		t.Run(d.String(), func(t *testing.T) {
			r := newRig(t, withArgs("sleep", "1000"))
			opts := r.opts()
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			c, err := shim.Start(ctx, opts)
			if err == nil {
				r.cleanup(c.ShimPid())
				t.Logf("start finished within %v", d)
				return
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("start = %v, want the context's error", err)
			}
			if _, err := os.Stat(r.stateDir); !os.IsNotExist(err) {
				t.Errorf("state dir left behind: %v", err)
			}
			if out, _, err := testutil.Runtime(t, r.root, "list", "-q"); err != nil || strings.TrimSpace(out) != "" {
				t.Errorf("runtime still knows containers: %q, %v", out, err)
			}
		})
	}
}

func TestPause(t *testing.T) {
	r := newRig(t, withArgs("sleep", "1000"))
	c := r.start(r.opts())
	ctx := ctxT(t)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctx); err != nil || st.Status != shim.StatusPaused {
		t.Fatalf("state after pause = %+v, %v", st, err)
	}
	if err := c.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctx); err != nil || st.Status != shim.StatusRunning {
		t.Fatalf("state after resume = %+v, %v", st, err)
	}
}

func TestOOMKilled(t *testing.T) {
	limit := int64(32 << 20)
	r := newRig(t, func(s *specs.Spec) {
		// The shell holds the whole output in a variable: far over the limit.
		s.Process.Args = []string{"sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"}
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	})
	c := r.start(r.opts())
	ctx := ctxT(t)
	if _, err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	exit, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !exit.OOMKilled || exit.Code != 137 {
		t.Errorf("exit = %+v, want OOM killed with code 137", exit)
	}
	if st, err := c.State(ctx); err != nil || !st.OOMKilled {
		t.Errorf("state = %+v, %v; want OOMKilled", st, err)
	}
}

// A descriptor the daemon leaks (no close-on-exec) stops at the shim: the
// runtime and the container's init never get it (a pipe held by them
// would never see EOF).
func TestLeakedDescriptor(t *testing.T) {
	r := newRig(t, withArgs("sleep", "1000"))
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	defer pw.Close()
	if _, err := unix.FcntlInt(pw.Fd(), unix.F_SETFD, 0); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(pw.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	leaked := fmt.Sprintf("pipe:[%d]", st.Ino)
	c := r.start(r.opts())
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	state, err := c.State(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", state.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", state.Pid, fd.Name())); target == leaked {
			t.Errorf("container init holds the daemon's leaked descriptor as fd %s", fd.Name())
		}
	}
}

// TestPrestartRuntime: with the runtime's run started at setup, waiting
// for the start call, the container runs as without; a delete before any
// start ends the waiting runtime, which created nothing.
func TestPrestartRuntime(t *testing.T) {
	waitingRuntime := func(t *testing.T, shimPid int) int {
		t.Helper()
		// Each thread lists the children it forked.
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", shimPid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("shim's threads: %v %v", tasks, err)
		}
		var kids []string
		for _, f := range tasks {
			data, _ := os.ReadFile(f)
			kids = append(kids, strings.Fields(string(data))...)
		}
		if len(kids) != 1 {
			t.Fatalf("shim's children before the start: %q, want the waiting runtime", kids)
		}
		pid, _ := strconv.Atoi(kids[0])
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); !strings.Contains(string(cmdline), "--wait-fd") {
			t.Fatalf("shim's child %d is %q, want the runtime's run --wait-fd", pid, cmdline)
		}
		return pid
	}
	t.Run("start", func(t *testing.T) {
		r := newRig(t, withArgs("sh", "-c", "echo hello; exit 4"))
		opts := r.opts()
		opts.PrestartRuntime = true
		c := r.start(opts)
		ctx := ctxT(t)
		waitingRuntime(t, c.ShimPid())
		if _, err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if exit, err := c.Wait(ctx); err != nil || exit.Code != 4 {
			t.Fatalf("wait = %+v, %v; want code 4", exit, err)
		}
		eventually(t, "hello in the log", func() bool { return logContains(r.logPath, "hello") })
		if _, err := c.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("delete before start", func(t *testing.T) {
		r := newRig(t, withArgs("sleep", "1000"))
		opts := r.opts()
		opts.PrestartRuntime = true
		c := r.start(opts)
		ctx := ctxT(t)
		rt := waitingRuntime(t, c.ShimPid())
		if _, err := c.Delete(ctx); err != nil {
			t.Fatalf("delete before start: %v", err)
		}
		if alive(rt) || alive(c.ShimPid()) {
			t.Errorf("after delete: runtime %d alive %v, shim %d alive %v", rt, alive(rt), c.ShimPid(), alive(c.ShimPid()))
		}
		if _, err := os.Stat(filepath.Join(opts.RuntimeRoot, opts.ID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the runtime has state for the container that never started: %v", err)
		}
	})
}
