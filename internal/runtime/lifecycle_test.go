//go:build linux

package runtime_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// writable makes the container's root filesystem writable, so that the
// container can leave marker files the test reads from the host.
func writable(s *specs.Spec) { s.Root.Readonly = false }

// sleeper is a process that runs until it is killed.
var sleeper = []string{"sleep", "3600"}

// TestCreateStartStateDelete walks a container through the whole OCI
// lifecycle and checks the state at each step.
func TestCreateStartStateDelete(t *testing.T) {
	r := newRig(t)
	ann := map[string]string{"org.berth.test": "lifecycle"}
	before := time.Now()
	id, bundle := r.create([]string{"sh", "-c", "echo ran > /tmp/x; exec sleep 3600"}, func(s *specs.Spec) {
		writable(s)
		s.Annotations = ann
	})
	after := time.Now()
	marker := filepath.Join(bundle, "rootfs/tmp/x")

	// created: init exists but the user process has not run.
	raw := r.ok("state", id)
	var fields map[string]any
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		t.Fatalf("state is not JSON: %v\n%s", err, raw)
	}
	for _, k := range []string{"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "annotations"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("state has no %q field: %s", k, raw)
		}
	}
	st := r.state(id)
	if st.Status != "created" {
		t.Fatalf("status after create = %q, want created", st.Status)
	}
	if !strings.HasPrefix(st.OCIVersion, "1.") || st.ID != id || st.Bundle != bundle || st.Rootfs != filepath.Join(bundle, "rootfs") {
		t.Errorf("state = %+v, want ociVersion 1.x, id %s, bundle %s, rootfs %s/rootfs", st, id, bundle, bundle)
	}
	if st.Created.Before(before.Add(-time.Second)) || st.Created.After(after.Add(time.Second)) {
		t.Errorf("created = %s, want between %s and %s", st.Created, before, after)
	}
	if len(st.Annotations) != 1 || st.Annotations["org.berth.test"] != "lifecycle" {
		t.Errorf("annotations = %v, want %v", st.Annotations, ann)
	}
	if st.Pid <= 0 || !pidAlive(st.Pid) {
		t.Fatalf("created container's pid %d is not a live process", st.Pid)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the process ran before start: stat %s: %v", marker, err)
	}
	if r.state(id).Status != "created" {
		t.Fatal("a second state changed the status")
	}

	// running: the process has run, with the bundle's rootfs as its root.
	r.ok("start", id)
	if got := readFileEventually(t, marker); got != "ran\n" {
		t.Errorf("marker = %q, want %q", got, "ran\n")
	}
	st2 := r.state(id)
	if st2.Status != "running" || st2.Pid != st.Pid {
		t.Errorf("state after start = %s pid %d, want running pid %d", st2.Status, st2.Pid, st.Pid)
	}
	if !st2.Created.Equal(st.Created) {
		t.Errorf("created changed from %s to %s", st.Created, st2.Created)
	}
	r.fails([]string{"start", id}, "running")

	// stopped: init is gone, pid is reported as 0 like runc does.
	r.ok("kill", id, "KILL")
	st3 := r.waitStatus(id, "stopped")
	if st3.Pid != 0 {
		t.Errorf("stopped container's pid = %d, want 0", st3.Pid)
	}
	if pidAlive(st.Pid) {
		t.Errorf("init %d still runs after the container stopped", st.Pid)
	}
	r.fails([]string{"start", id}, "stopped")

	r.ok("delete", id)
	if ids := r.list(); len(ids) != 0 {
		t.Errorf("list after delete = %v, want empty", ids)
	}
	r.fails([]string{"state", id}, "does not exist")
}

// TestStartShortProcess starts a process that exits by itself: the
// container becomes stopped and can be deleted without --force.
func TestStartShortProcess(t *testing.T) {
	r := newRig(t)
	id, bundle := r.create([]string{"sh", "-c", "echo done > /tmp/x"}, writable)
	r.ok("start", id)
	r.waitStatus(id, "stopped")
	if got := readTrim(t, filepath.Join(bundle, "rootfs/tmp/x")); got != "done" {
		t.Errorf("marker = %q, want done", got)
	}
	r.ok("delete", id)
	if ids := r.list(); len(ids) != 0 {
		t.Errorf("list after delete = %v, want empty", ids)
	}
}

// trapper waits for signals: on TERM, USR1 or USR2 it writes the signal's
// name to /tmp/sig and exits. /tmp/ready tells that the traps are set.
var trapper = []string{"sh", "-c", `for s in TERM USR1 USR2; do trap "echo $s > /tmp/sig; exit 0" $s; done; echo ok > /tmp/ready; sleep 3600 & wait`}

func TestKillSignals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string // after the id
		want string
	}{
		{"default", nil, "TERM"},
		{"name", []string{"USR1"}, "USR1"},
		{"sigName", []string{"SIGUSR2"}, "USR2"},
		{"number", []string{strconv.Itoa(int(unix.SIGUSR1))}, "USR1"},
		{"lowercase", []string{"sigterm"}, "TERM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			id, bundle, _ := r.running(trapper, writable)
			readFileEventually(t, filepath.Join(bundle, "rootfs/tmp/ready"))
			r.ok(append([]string{"kill", id}, tc.args...)...)
			if got := strings.TrimSpace(readFileEventually(t, filepath.Join(bundle, "rootfs/tmp/sig"))); got != tc.want {
				t.Errorf("container got %s, want %s", got, tc.want)
			}
			r.waitStatus(id, "stopped")
		})
	}
}

// TestKillAll signals every process: the children die of a SIGTERM that
// init (pid 1 without a handler) ignores, so only --all can reach them.
func TestKillAll(t *testing.T) {
	r := newRig(t)
	id, _, st := r.running([]string{"sh", "-c", "sleep 3600 & sleep 3600 & wait"}, nil)
	var pids []int
	poll(t, "three processes in the container", func() bool {
		if err := json.Unmarshal([]byte(r.ok("ps", "--format", "json", id)), &pids); err != nil {
			t.Fatal(err)
		}
		return len(pids) == 3
	})
	if !slices.Contains(pids, st.Pid) {
		t.Fatalf("ps pids %v do not include init %d", pids, st.Pid)
	}
	r.ok("kill", "--all", id, "TERM")
	for _, p := range pids {
		if p != st.Pid {
			poll(t, "child "+strconv.Itoa(p)+" to die", func() bool { return !pidAlive(p) })
		}
	}
	// With its children gone, init's wait returns and it exits.
	r.waitStatus(id, "stopped")
}

func TestKillStopped(t *testing.T) {
	r := newRig(t)
	id, _ := r.create([]string{"true"}, nil)
	r.ok("start", id)
	r.waitStatus(id, "stopped")
	r.fails([]string{"kill", id, "KILL"}, "not running")
	if got := r.state(id).Status; got != "stopped" {
		t.Errorf("status after failed kill = %s, want stopped", got)
	}
}

func TestDeleteCreated(t *testing.T) {
	r := newRig(t)
	id, bundle := r.create([]string{"sh", "-c", "echo ran > /tmp/x"}, writable)
	pid := r.state(id).Pid
	r.ok("delete", id)
	if pidAlive(pid) {
		t.Errorf("init %d of the deleted created container still runs", pid)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs/tmp/x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the process of a container deleted before start ran: %v", err)
	}
	if ids := r.list(); len(ids) != 0 {
		t.Errorf("list after delete = %v, want empty", ids)
	}
}

func TestDeleteRunning(t *testing.T) {
	r := newRig(t)
	id, _, st := r.running(sleeper, nil)
	r.fails([]string{"delete", id}, "cannot delete container", "not stopped")
	if got := r.state(id); got.Status != "running" || !pidAlive(st.Pid) {
		t.Fatalf("delete without --force changed the container: %+v", got)
	}
	r.ok("delete", "--force", id)
	if pidAlive(st.Pid) {
		t.Errorf("init %d still runs after delete --force", st.Pid)
	}
	r.fails([]string{"state", id}, "does not exist")
}

func TestDeletePaused(t *testing.T) {
	r := newRig(t)
	id, _, st := r.running(sleeper, nil)
	r.ok("pause", id)
	r.fails([]string{"delete", id}, "paused")
	r.ok("delete", "-f", id)
	if pidAlive(st.Pid) {
		t.Errorf("init %d still runs after delete --force of a paused container", st.Pid)
	}
	if ids := r.list(); len(ids) != 0 {
		t.Errorf("list after delete = %v, want empty", ids)
	}
}

func TestDeleteMissing(t *testing.T) {
	r := newRig(t)
	// Like runc: --force makes a missing container a success.
	r.ok("delete", "--force", "no-such-container")
	r.fails([]string{"delete", "no-such-container"}, "no-such-container", "does not exist")
}

// procState is the state letter in /proc/<pid>/status ("S", "D", ...).
func procState(t testing.TB, pid int) string {
	t.Helper()
	for _, l := range strings.Split(readTrim(t, "/proc/"+strconv.Itoa(pid)+"/status"), "\n") {
		if v, ok := strings.CutPrefix(l, "State:"); ok {
			return strings.Fields(v)[0]
		}
	}
	t.Fatalf("no State in /proc/%d/status", pid)
	return ""
}

// frozen reads the freezer state of pid's cgroup.
func frozen(t testing.TB, pid int) bool {
	t.Helper()
	if isUnified() {
		events := readTrim(t, filepath.Join(cgroupDir(t, pid, ""), "cgroup.events"))
		return strings.Contains(events, "frozen 1")
	}
	return readTrim(t, filepath.Join(cgroupDir(t, pid, "freezer"), "freezer.state")) == "FROZEN"
}

func TestPauseResume(t *testing.T) {
	r := newRig(t)
	// The loop keeps a counter going so that a frozen container can be
	// told from a sleeping one.
	id, bundle, st := r.running([]string{"sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n.new; mv /tmp/n.new /tmp/n; done"}, writable)
	counter := filepath.Join(bundle, "rootfs/tmp/n")
	readFileEventually(t, counter)

	r.ok("pause", id)
	if got := r.state(id).Status; got != "paused" {
		t.Fatalf("status after pause = %s, want paused", got)
	}
	if !frozen(t, st.Pid) {
		t.Error("the container's cgroup is not frozen")
	}
	n1 := readTrim(t, counter)
	// A frozen loop makes no progress; the freezer is checked above, this
	// only confirms that the process itself is stopped.
	if s := procState(t, st.Pid); s == "R" {
		t.Errorf("paused init is in state %s", s)
	}
	if n2 := readTrim(t, counter); n2 != n1 {
		t.Errorf("counter moved from %s to %s while paused", n1, n2)
	}
	if out := r.ok("list"); !strings.Contains(out, "paused") {
		t.Errorf("list does not show the container paused:\n%s", out)
	}
	r.fails([]string{"pause", id}, "paused")
	r.fails([]string{"exec", id, "true"}, "paused")

	r.ok("resume", id)
	if got := r.state(id).Status; got != "running" {
		t.Fatalf("status after resume = %s, want running", got)
	}
	if frozen(t, st.Pid) {
		t.Error("the container's cgroup is still frozen after resume")
	}
	poll(t, "the counter to move after resume", func() bool {
		data, err := os.ReadFile(counter)
		return err == nil && strings.TrimSpace(string(data)) != n1
	})
	r.fails([]string{"resume", id}, "not paused")
}

func TestRunExitCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		mutate func(*specs.Spec)
		want   int
	}{
		{"zero", []string{"true"}, nil, 0},
		{"exit3", []string{"sh", "-c", "exit 3"}, nil, 3},
		// A process killed by a signal gives 128+n, as with runc. Without
		// a pid namespace the shell is no init and can kill itself.
		{"signal", []string{"sh", "-c", "kill -KILL $$"}, withoutNamespace(specs.PIDNamespace), 128 + int(unix.SIGKILL)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			bundle := r.bundle(tc.args, tc.mutate)
			id := testutil.ContainerID(t)
			r.track(id, bundle)
			_, stderr, err := r.rt("run", "--bundle", bundle, id)
			if got := exitStatus(err); got != tc.want {
				t.Errorf("run exit status = %d (%v), want %d; stderr: %s", got, err, tc.want, stderr)
			}
			// run removes the container once its process exits.
			if ids := r.list(); len(ids) != 0 {
				t.Errorf("list after run = %v, want empty", ids)
			}
		})
	}
}

func withoutNamespace(typ specs.LinuxNamespaceType) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool { return ns.Type == typ })
	}
}

func TestRunOutput(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle([]string{"sh", "-c", "echo out; echo err >&2"}, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	stdout, stderr, err := r.rt("run", "--bundle", bundle, id)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "out\n" || stderr != "err\n" {
		t.Errorf("run printed stdout %q stderr %q, want %q and %q", stdout, stderr, "out\n", "err\n")
	}
}

func TestRunDetachPidFile(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle(sleeper, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.ok("run", "--detach", "--pid-file", pidFile, "--bundle", bundle, id)
	st := r.state(id)
	if st.Status != "running" {
		t.Fatalf("status after run --detach = %s, want running", st.Status)
	}
	if got := readTrim(t, pidFile); got != strconv.Itoa(st.Pid) {
		t.Errorf("pid file = %q, want %d", got, st.Pid)
	}
	if !pidAlive(st.Pid) {
		t.Errorf("pid %d is not alive", st.Pid)
	}
}

func TestCreatePidFile(t *testing.T) {
	r := newRig(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	id, _ := r.create(sleeper, nil, "--pid-file", pidFile)
	st := r.state(id)
	if got := readTrim(t, pidFile); got != strconv.Itoa(st.Pid) {
		t.Errorf("pid file = %q, want %d", got, st.Pid)
	}
}

// TestTwoContainers runs two containers side by side in one root: each
// has its own state, and acting on one leaves the other alone.
func TestTwoContainers(t *testing.T) {
	r := newRig(t)
	a, _, sa := r.running(sleeper, nil)
	b, _ := r.create(sleeper, nil)
	sb := r.state(b)
	if sa.Pid == sb.Pid || sa.Status != "running" || sb.Status != "created" {
		t.Fatalf("states a=%+v b=%+v, want distinct pids, running and created", sa, sb)
	}
	if sameNamespace(t, sa.Pid, sb.Pid, "pid") || sameNamespace(t, sa.Pid, sb.Pid, "mnt") {
		t.Error("the two containers share a pid or mount namespace")
	}
	ids := r.list()
	want := []string{a, b}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("list = %v, want %v", ids, want)
	}
	r.ok("kill", a, "KILL")
	r.waitStatus(a, "stopped")
	if got := r.state(b); got.Status != "created" || !pidAlive(sb.Pid) {
		t.Errorf("killing %s changed %s: %+v", a, b, got)
	}
	r.ok("delete", a)
	r.ok("start", b)
	if got := r.state(b).Status; got != "running" {
		t.Errorf("status of %s = %s, want running", b, got)
	}
	if ids := r.list(); !slices.Equal(ids, []string{b}) {
		t.Errorf("list = %v, want [%s]", ids, b)
	}
}

// hookKinds are the OCI hook points in the order they run.
var hookKinds = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}

// recordingHook is a host shell hook that saves the state it reads on
// stdin to dir/<kind>.json, what it sees of the container's process to
// dir/<kind>.cmdline, its own mount namespace to dir/<kind>.mntns, and
// appends kind to dir/order.
func recordingHook(dir, kind string) specs.Hook {
	script := `cat > "$1/$2.json"; pid=$(sed 's/.*"pid": *\([0-9]*\).*/\1/' "$1/$2.json"); ` +
		`cat /proc/$pid/cmdline > "$1/$2.cmdline" 2>/dev/null; readlink /proc/self/ns/mnt > "$1/$2.mntns"; echo $2 >> "$1/order"`
	return specs.Hook{
		Path: "/bin/sh",
		Args: []string{"sh", "-c", script, "hook", dir, kind},
		Env:  []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"},
	}
}

func setHook(h *specs.Hooks, kind string, hook specs.Hook) {
	switch kind {
	case "prestart":
		h.Prestart = append(h.Prestart, hook) //nolint:staticcheck // prestart is deprecated but still part of the spec
	case "createRuntime":
		h.CreateRuntime = append(h.CreateRuntime, hook)
	case "createContainer":
		h.CreateContainer = append(h.CreateContainer, hook)
	case "startContainer":
		h.StartContainer = append(h.StartContainer, hook)
	case "poststart":
		h.Poststart = append(h.Poststart, hook)
	case "poststop":
		h.Poststop = append(h.Poststop, hook)
	}
}

// hookState reads the state a recordingHook saved, or reports that the
// hook has not run.
func hookState(t *testing.T, dir, kind string) (specs.State, bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, kind+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return specs.State{}, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var st specs.State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatalf("%s hook got invalid state on stdin: %v\n%s", kind, err, data)
	}
	return st, true
}

// TestHooks checks that each hook runs at its point of the lifecycle, once,
// with the container's state (id, bundle, pid, status, annotations) on
// stdin.
func TestHooks(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	id, bundle := r.create(sleeper, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{}
		for _, k := range hookKinds {
			setHook(s.Hooks, k, recordingHook(dir, k))
		}
		s.Annotations = map[string]string{"hook.test": "yes"}
		// startContainer hooks run in the container: they see dir
		// through this bind mount, at the same path.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dir, Type: "bind", Source: dir, Options: []string{"bind"}})
	})
	pid := r.state(id).Pid

	ran := func() []string {
		data, err := os.ReadFile(filepath.Join(dir, "order"))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return strings.Fields(string(data))
	}
	check := func(kind, status string) {
		t.Helper()
		st, ok := hookState(t, dir, kind)
		if !ok {
			t.Errorf("%s hook did not run", kind)
			return
		}
		if st.ID != id || st.Bundle != bundle || string(st.Status) != status || st.Annotations["hook.test"] != "yes" || !strings.HasPrefix(st.Version, "1.") {
			t.Errorf("%s hook state = %+v, want id %s, bundle %s, status %s, the annotations and ociVersion 1.x", kind, st, id, bundle, status)
		}
		// The pid is init's as the host sees it (runc gives the pid in
		// the container's namespace to startContainer hooks).
		if kind != "poststop" && kind != "startContainer" && st.Pid != pid {
			t.Errorf("%s hook state pid = %d, want %d", kind, st.Pid, pid)
		}
	}

	if got, want := ran(), hookKinds[:3]; !slices.Equal(got, want) {
		t.Errorf("hooks run by create = %v, want %v", got, want)
	}
	check("prestart", "creating")
	check("createRuntime", "creating")
	check("createContainer", "creating")

	r.ok("start", id)
	if got, want := ran(), hookKinds[:5]; !slices.Equal(got, want) {
		t.Errorf("hooks run by create and start = %v, want %v", got, want)
	}
	check("startContainer", "created")
	check("poststart", "running")
	// poststart runs after the user process is executed.
	if got, err := os.ReadFile(filepath.Join(dir, "poststart.cmdline")); err != nil || string(got) != "sleep\x003600\x00" {
		t.Errorf("poststart hook saw the container process as %q (%v), want sleep 3600", got, err)
	}

	// exec runs no hook.
	r.ok("exec", id, "true")
	if got, want := ran(), hookKinds[:5]; !slices.Equal(got, want) {
		t.Errorf("hooks run by create, start and exec = %v, want %v", got, want)
	}

	r.ok("delete", "--force", id)
	if got := ran(); !slices.Equal(got, hookKinds) {
		t.Errorf("hooks run by create, start and delete = %v, want %v", got, hookKinds)
	}
	check("poststop", "stopped")

	// createContainer and startContainer hooks run in the container's
	// mount namespace, the others in the runtime's.
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range hookKinds {
		ns := readTrim(t, filepath.Join(dir, k+".mntns"))
		inContainer := k == "createContainer" || k == "startContainer"
		if (ns == self) == inContainer {
			t.Errorf("%s hook ran in mount namespace %s (the runtime's is %s)", k, ns, self)
		}
	}
}

// TestHookFailure: a failing prestart, createRuntime or createContainer
// hook fails create with the hook's message, and leaves no container
// behind.
func TestHookFailure(t *testing.T) {
	for _, kind := range []string{"prestart", "createRuntime", "createContainer"} {
		t.Run(kind, func(t *testing.T) {
			r := newRig(t)
			bundle := r.bundle([]string{"sh", "-c", "echo ran > /tmp/x"}, func(s *specs.Spec) {
				writable(s)
				s.Hooks = &specs.Hooks{}
				setHook(s.Hooks, kind, specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo hook-says-no >&2; exit 4"}})
			})
			id := testutil.ContainerID(t)
			r.track(id, bundle)
			r.fails([]string{"create", "--bundle", bundle, id}, kind, "hook-says-no")
			if ids := r.list(); len(ids) != 0 {
				t.Errorf("list after failed create = %v, want empty", ids)
			}
			r.fails([]string{"state", id}, "does not exist")
			if _, err := os.Stat(filepath.Join(bundle, "rootfs/tmp/x")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the process ran although create failed: %v", err)
			}
			if leaks, err := testutil.Leaks(id, bundle); len(leaks) > 0 || err != nil {
				t.Errorf("failed create left %v (%v)", leaks, err)
			}
		})
	}
}

// TestHookPoststartFailure: a failing poststart hook is only a warning:
// the container runs.
func TestHookPoststartFailure(t *testing.T) {
	r := newRig(t)
	id, _ := r.create(sleeper, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/false"}}}
	})
	_, stderr, err := r.rt("start", id)
	if err != nil {
		t.Logf("start with a failing poststart hook: %v", err)
	}
	if !strings.Contains(stderr, "poststart") {
		t.Errorf("start does not report the failed poststart hook: %q", stderr)
	}
	if got := r.state(id).Status; got != "running" {
		t.Errorf("status = %s, want running", got)
	}
}

// TestHookTimeout: a hook that outlives its timeout is killed, with the
// processes it started, and fails create soon after the timeout.
func TestHookTimeout(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	one := 1
	bundle := r.bundle(sleeper, func(s *specs.Spec) {
		// The shell forks sleep, which inherits the hook's output.
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh",
			Args: []string{"sh", "-c", `sleep 60 & echo $! > "$0/child"; wait; echo never`, dir}, Timeout: &one}}}
	})
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	start := time.Now()
	r.fails([]string{"create", "--bundle", bundle, id}, "createRuntime", "timed out")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("create with a 1s hook timeout took %s", d)
	}
	child, err := strconv.Atoi(readTrim(t, filepath.Join(dir, "child")))
	if err != nil {
		t.Fatal(err)
	}
	if pidAlive(child) {
		unix.Kill(child, unix.SIGKILL)
		t.Errorf("the timed out hook's child %d still runs", child)
	}
	if ids := r.list(); len(ids) != 0 {
		t.Errorf("list after failed create = %v, want empty", ids)
	}
}

// TestHookBackgroundProcess: a hook may leave a process running (one that
// holds the hook's output open); the runtime does not wait for it.
func TestHookBackgroundProcess(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	start := time.Now()
	id, _ := r.create(sleeper, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Prestart: []specs.Hook{{Path: "/bin/sh", //nolint:staticcheck // prestart is deprecated but still part of the spec
			Args: []string{"sh", "-c", `sleep 60 & echo $! > "$0/child"`, dir}}}}
	})
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("create with a hook that leaves a process took %s", d)
	}
	child, err := strconv.Atoi(readTrim(t, filepath.Join(dir, "child")))
	if err != nil {
		t.Fatal(err)
	}
	// The hook's process is the test's to end, by its pid.
	unix.Kill(child, unix.SIGKILL)
	if got := r.state(id).Status; got != "created" {
		t.Errorf("status = %s, want created", got)
	}
}

// TestKillCreated: a created container can be killed (its init waits for
// start), and is stopped then.
func TestKillCreated(t *testing.T) {
	r := newRig(t)
	id, bundle := r.create([]string{"sh", "-c", "echo ran > /tmp/x"}, writable)
	pid := r.state(id).Pid
	r.ok("kill", id, "KILL")
	st := r.waitStatus(id, "stopped")
	if st.Pid != 0 || pidAlive(pid) {
		t.Errorf("killed created container: state %+v, init alive %v", st, pidAlive(pid))
	}
	r.fails([]string{"start", id}, "stopped")
	if _, err := os.Stat(filepath.Join(bundle, "rootfs/tmp/x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the process of a container killed before start ran: %v", err)
	}
	r.ok("delete", id)
}

// TestPauseCreated: like runc, a created container can be paused and
// resumed, and is created again afterwards.
func TestPauseCreated(t *testing.T) {
	r := newRig(t)
	id, _ := r.create(sleeper, nil)
	r.ok("pause", id)
	if got := r.state(id).Status; got != "paused" {
		t.Fatalf("status after pause = %s, want paused", got)
	}
	r.fails([]string{"start", id}, "paused")
	r.fails([]string{"delete", id}, "paused")
	r.ok("resume", id)
	if got := r.state(id).Status; got != "created" {
		t.Fatalf("status after resume = %s, want created", got)
	}
	r.ok("start", id)
	if got := r.state(id).Status; got != "running" {
		t.Errorf("status after start = %s, want running", got)
	}

	// delete --force of a paused created container kills it at once.
	id2, _ := r.create(sleeper, nil)
	pid := r.state(id2).Pid
	r.ok("pause", id2)
	start := time.Now()
	r.ok("delete", "--force", id2)
	if d := time.Since(start); d > 5*time.Second || pidAlive(pid) {
		t.Errorf("delete --force of a paused created container took %s, init alive %v", d, pidAlive(pid))
	}
}

// TestDeleteWithoutBundle: delete needs nothing from the bundle, and
// still runs the poststop hooks when the bundle is gone.
func TestDeleteWithoutBundle(t *testing.T) {
	r := newRig(t)
	dir := t.TempDir()
	id, bundle, _ := r.running(sleeper, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{Poststop: []specs.Hook{recordingHook(dir, "poststop")}}
	})
	if err := os.Remove(filepath.Join(bundle, "config.json")); err != nil {
		t.Fatal(err)
	}
	r.ok("delete", "--force", id)
	if _, ok := hookState(t, dir, "poststop"); !ok {
		t.Error("poststop hook did not run")
	}
	if ids := r.list(); len(ids) != 0 {
		t.Errorf("list after delete = %v", ids)
	}
}

// TestRunKeep: run --keep leaves the stopped container for delete.
func TestRunKeep(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle([]string{"sh", "-c", "exit 2"}, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	_, _, err := r.rt("run", "--keep", "--bundle", bundle, id)
	if got := exitStatus(err); got != 2 {
		t.Errorf("run --keep exit status = %d (%v), want 2", got, err)
	}
	if st := r.state(id); st.Status != "stopped" {
		t.Errorf("status after run --keep = %s, want stopped", st.Status)
	}
	r.ok("delete", id)
}

// TestRunStdin: run connects the container's stdin to its own.
func TestRunStdin(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle([]string{"sh", "-c", "read line; echo got=$line; cat"}, nil)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	cmd, out := r.startRun(bundle, id, "hello\nrest\n")
	if code := waitCmd(t, cmd); code != 0 {
		t.Fatalf("run exited %d: %s", code, out())
	}
	if out() != "got=hello\nrest\n" {
		t.Errorf("run printed %q", out())
	}
}

// TestRunForwardsSignals: a signal sent to "berth-runtime run" reaches
// the container's process; the exit status of a killed one is 128+n.
func TestRunForwardsSignals(t *testing.T) {
	r := newRig(t)
	bundle := r.bundle(trapper, writable)
	id := testutil.ContainerID(t)
	r.track(id, bundle)
	cmd, out := r.startRun(bundle, id, "")
	readFileEventually(t, filepath.Join(bundle, "rootfs/tmp/ready"))
	if err := cmd.Process.Signal(unix.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(readFileEventually(t, filepath.Join(bundle, "rootfs/tmp/sig"))); got != "USR2" {
		t.Errorf("container got %s, want USR2", got)
	}
	if code := waitCmd(t, cmd); code != 0 {
		t.Errorf("run exited %d, want 0: %s", code, out())
	}

	// A process killed from outside: 128+SIGKILL.
	id2 := testutil.ContainerID(t)
	bundle2 := r.bundle(sleeper, nil)
	r.track(id2, bundle2)
	cmd, out = r.startRun(bundle2, id2, "")
	var st ociState
	poll(t, "the container to run", func() bool {
		_, _, err := r.rt("state", id2)
		if err == nil {
			st = r.state(id2)
		}
		return err == nil && st.Status == "running"
	})
	r.ok("kill", id2, "KILL")
	if code := waitCmd(t, cmd); code != 128+int(unix.SIGKILL) {
		t.Errorf("run of a killed container exited %d, want %d: %s", code, 128+int(unix.SIGKILL), out())
	}
	if ids := r.list(); len(ids) != 0 {
		t.Errorf("list after run = %v, want empty", ids)
	}
}

// TestDeleteLeftoverProcesses: without a pid namespace, processes can
// outlive init; delete of the stopped container kills them and removes
// the cgroup (CheckNoLeaks), as runc does.
func TestDeleteLeftoverProcesses(t *testing.T) {
	r := newRig(t)
	id, bundle := r.create([]string{"sh", "-c", "sleep 3600 & echo $! > /tmp/child"}, func(s *specs.Spec) {
		writable(s)
		withoutNamespace(specs.PIDNamespace)(s)
	})
	r.ok("start", id)
	r.waitStatus(id, "stopped")
	child, err := strconv.Atoi(strings.TrimSpace(readFileEventually(t, filepath.Join(bundle, "rootfs/tmp/child"))))
	if err != nil || !pidAlive(child) {
		t.Fatalf("leftover child %d (%v) is not alive", child, err)
	}
	var pids []int
	if err := json.Unmarshal([]byte(r.ok("ps", "-f", "json", id)), &pids); err != nil || !slices.Equal(pids, []int{child}) {
		t.Errorf("ps of the stopped container = %v (%v), want [%d]", pids, err, child)
	}
	r.ok("delete", id)
	if pidAlive(child) {
		t.Errorf("leftover process %d survived delete", child)
	}
}

// TestKillAllStopped: kill --all reaches processes left in a stopped
// container (no pid namespace).
func TestKillAllStopped(t *testing.T) {
	r := newRig(t)
	id, bundle := r.create([]string{"sh", "-c", "sleep 3600 & echo $! > /tmp/child"}, func(s *specs.Spec) {
		writable(s)
		withoutNamespace(specs.PIDNamespace)(s)
	})
	r.ok("start", id)
	r.waitStatus(id, "stopped")
	child, err := strconv.Atoi(strings.TrimSpace(readFileEventually(t, filepath.Join(bundle, "rootfs/tmp/child"))))
	if err != nil {
		t.Fatal(err)
	}
	r.ok("kill", "--all", id, "KILL")
	poll(t, "the leftover process to die", func() bool { return !pidAlive(child) })
}

// TestKillPaused: SIGKILL reaches a paused container (a frozen process
// only dies once thawed), which becomes stopped and deletable.
func TestKillPaused(t *testing.T) {
	r := newRig(t)
	id, _, st := r.running(sleeper, nil)
	r.ok("pause", id)
	r.ok("kill", id, "KILL")
	r.waitStatus(id, "stopped")
	if pidAlive(st.Pid) {
		t.Errorf("init %d still alive", st.Pid)
	}
	r.ok("delete", id)
}
