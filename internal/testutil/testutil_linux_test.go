package testutil

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := CleanupCache(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root (make test runs as root)")
	}
}

// fakeTB records what a helper reports instead of failing the real test.
// Fatal ends the calling goroutine like testing.T's does; use run.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex
	errors   []string
	fatal    bool
	cleanups []func()
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}

func (f *fakeTB) Error(args ...any) { f.Errorf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.Errorf(format, args...)
	f.mu.Lock()
	f.fatal = true
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }

// run calls fn in its own goroutine so that Fatal can end it.
func (f *fakeTB) run(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// runCleanups runs the registered cleanups, last first.
func (f *fakeTB) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.run(f.cleanups[i])
	}
	f.cleanups = nil
}

func TestBusyboxRootfs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rootfs")
	start := time.Now()
	if err := BusyboxRootfs(dir); err != nil {
		t.Fatal(err)
	}
	t.Logf("BusyboxRootfs took %s", time.Since(start))

	fi, err := os.Lstat(filepath.Join(dir, "bin/busybox"))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("bin/busybox is not an executable regular file: %v %v", fi, err)
	}
	for _, applet := range []string{"sh", "true", "hostname", "cat"} {
		target, err := os.Readlink(filepath.Join(dir, "bin", applet))
		if err != nil || target != "busybox" {
			t.Errorf("bin/%s -> %q (%v), want busybox", applet, target, err)
		}
	}
	for d, mode := range map[string]os.FileMode{"proc": 0o555, "sys": 0o555, "dev": 0o755, "etc": 0o755, "root": 0o700,
		"tmp": 0o777 | os.ModeSticky} {
		fi, err := os.Stat(filepath.Join(dir, d))
		if err != nil || !fi.IsDir() || fi.Mode()&(os.ModePerm|os.ModeSticky) != mode {
			t.Errorf("%s: %v %v, want a directory with mode %v", d, fi.Mode(), err, mode)
		}
	}
	passwd, err := os.ReadFile(filepath.Join(dir, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"root:x:0:0:", "berth:x:1000:1000:", "nobody:x:65534:65534:"} {
		if !strings.Contains(string(passwd), "\n"+want) && !strings.HasPrefix(string(passwd), want) {
			t.Errorf("etc/passwd lacks %q:\n%s", want, passwd)
		}
	}
	for _, f := range []string{"etc/group", "etc/hostname"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}

	if os.Geteuid() == 0 {
		out, err := exec.Command("chroot", dir, "/bin/sh", "-c", "echo ok; id -u berth; id -u nobody").CombinedOutput()
		if err != nil || string(out) != "ok\n1000\n65534\n" {
			t.Errorf("chroot sh: %q, %v; want ok, 1000, 65534", out, err)
		}
	}

	// A second build in the same place fails instead of mixing two trees.
	if err := BusyboxRootfs(dir); err == nil {
		t.Error("BusyboxRootfs into a non-empty dir succeeded")
	}
}

func TestBusyboxRootfsAreIndependent(t *testing.T) {
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	for _, dir := range []string{a, b} {
		if err := BusyboxRootfs(dir); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"etc/passwd", "bin/busybox", "bin/sh"} {
		if err := os.WriteFile(filepath.Join(a, f), []byte("changed"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"etc/passwd", "bin/busybox"} {
		data, err := os.ReadFile(filepath.Join(b, f))
		if err != nil || string(data) == "changed" {
			t.Errorf("writing %s in one rootfs changed it in another (%v)", f, err)
		}
	}
}

func TestBusyboxRootfsOtherFilesystem(t *testing.T) {
	var tmp, shm unix.Stat_t
	if unix.Stat(os.TempDir(), &tmp) != nil || unix.Stat("/dev/shm", &shm) != nil || tmp.Dev == shm.Dev {
		t.Skip("needs /dev/shm on another filesystem than the temp dir")
	}
	dir, err := os.MkdirTemp("/dev/shm", "berth-rootfs-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := BusyboxRootfs(dir); err != nil {
		t.Fatal(err)
	}
	if target, err := os.Readlink(filepath.Join(dir, "bin/sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
}

func TestCleanupCache(t *testing.T) {
	if err := BusyboxRootfs(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cacheBase(), strconv.Itoa(os.Getpid()))
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("cache directory: %v", err)
	}
	if err := CleanupCache(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cache directory survives CleanupCache: %v", err)
	}
	// The cache is rebuilt on demand.
	root := filepath.Join(t.TempDir(), "rootfs")
	if err := BusyboxRootfs(root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin/true")); err != nil {
		t.Error(err)
	}
}

func TestRemoveStaleCaches(t *testing.T) {
	base := t.TempDir()
	// A finished child's pid is free; this process' pid is alive.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := strconv.Itoa(cmd.Process.Pid)
	live := strconv.Itoa(os.Getppid())
	for _, d := range []string{dead, live, "not-a-pid"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	removeStaleCaches(base)
	for d, want := range map[string]bool{dead: false, live: true, "not-a-pid": true} {
		_, err := os.Stat(filepath.Join(base, d))
		if got := err == nil; got != want && !(d == dead && unix.Kill(cmd.Process.Pid, 0) == nil) {
			t.Errorf("%s kept = %v, want %v", d, got, want)
		}
	}
}

func BenchmarkBusyboxRootfs(b *testing.B) {
	base := b.TempDir()
	for i := 0; b.Loop(); i++ {
		if err := BusyboxRootfs(filepath.Join(base, strconv.Itoa(i))); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBundle(t *testing.T) {
	dir := Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "exit 0"} })
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Process.Terminal || !slices.Equal(s.Process.Args, []string{"sh", "-c", "exit 0"}) || s.Root.Path != "rootfs" || s.Hostname != "berth" {
		t.Errorf("config.json: terminal %v, args %q, root %q, hostname %q", s.Process.Terminal, s.Process.Args, s.Root.Path, s.Hostname)
	}
	if _, err := os.Stat(filepath.Join(dir, "rootfs/bin/sh")); err != nil {
		t.Error(err)
	}

	def := Bundle(t, nil)
	data, err = os.ReadFile(filepath.Join(def, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	if s.Process.Terminal || !slices.Equal(s.Process.Args, []string{"true"}) {
		t.Errorf("default bundle: terminal %v, args %q; want false, [true]", s.Process.Terminal, s.Process.Args)
	}
}

func TestBundleDetachesLeakedMounts(t *testing.T) {
	requireRoot(t)
	f := &fakeTB{TB: t}
	var dir string
	f.run(func() { dir = Bundle(f, nil) })
	if dir == "" {
		t.Fatalf("Bundle failed: %v", f.errors)
	}
	target := filepath.Join(dir, "rootfs/tmp")
	if err := unix.Mount("tmpfs", target, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(target, unix.MNT_DETACH) })

	f.runCleanups()
	if len(f.errors) == 0 || !strings.Contains(f.errors[0], "leaked mount under bundle") || !strings.Contains(f.errors[0], target) {
		t.Errorf("Bundle's cleanup reported %q, want the leaked mount %s", f.errors, target)
	}
	if m, err := mountsUnder(dir); err != nil || len(m) != 0 {
		t.Errorf("mounts under the bundle after cleanup: %v %v", m, err)
	}
}

// useRunc makes RuntimeBinary return runc, so that the helpers can be tested
// with a working runtime.
func useRunc(t *testing.T) {
	t.Helper()
	requireRoot(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc not found (install scripts/debian-packages.txt): %v", err)
	}
	dir := t.TempDir()
	if err := os.Symlink(runc, filepath.Join(dir, "berth-runtime")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinDirEnv, dir)
}

func TestRuntimeRunsBundle(t *testing.T) {
	useRunc(t)
	bundle := Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "hostname; cat /etc/hostname; id -u"} })
	root := RootDir(t)
	id := ContainerID(t)
	CheckNoLeaks(t, id, bundle)

	stdout, stderr, err := Runtime(t, root, "run", "--bundle", bundle, id)
	if err != nil {
		t.Fatalf("run: %v (stderr %q)", err, stderr)
	}
	if stdout != "berth\nberth\n0\n" {
		t.Errorf("stdout = %q, want the hostname twice and uid 0", stdout)
	}
	leaks, err := Leaks(id, bundle)
	if err != nil || len(leaks) != 0 {
		t.Errorf("after run: leaks %q, %v", leaks, err)
	}
}

func TestRuntimeFailure(t *testing.T) {
	useRunc(t)
	bundle := Bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", "echo out; echo err >&2; exit 3"} })
	root := RootDir(t)
	id := ContainerID(t)
	CheckNoLeaks(t, id, bundle)

	stdout, stderr, err := Runtime(t, root, "run", "--bundle", bundle, id)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	if stdout != "out\n" || stderr != "err\n" || !strings.Contains(err.Error(), "err") {
		t.Errorf("stdout %q, stderr %q, err %q", stdout, stderr, err)
	}
	if _, _, err := Runtime(t, root, "delete", "--force", id); err != nil {
		t.Errorf("delete: %v", err)
	}
}

func TestRunWithTimeoutKillsProcessGroup(t *testing.T) {
	// The shell prints the pid of a background child, then both hang.
	const timeout = 2 * time.Second
	start := time.Now()
	stdout, _, err := runWithTimeout(t, "/bin/sh", timeout, "-c", "sleep 600 & echo $!; wait")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if d := time.Since(start); d > timeout+10*time.Second {
		t.Errorf("returned after %s, timeout was %s", d, timeout)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatalf("background pid: %q: %v", stdout, err)
	}
	// The background child must die too: wait for its exit on a pidfd.
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return // already gone
	}
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 10_000)
	if err != nil || n != 1 {
		unix.Kill(pid, unix.SIGKILL)
		t.Errorf("background child %d still runs after the timeout (poll %d, %v)", pid, n, err)
	}
}

func TestRuntimeBinaryFromEnv(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth-runtime")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinDirEnv, dir)
	if got := RuntimeBinary(t); got != bin {
		t.Errorf("RuntimeBinary = %q, want %q", got, bin)
	}

	t.Setenv(BinDirEnv, t.TempDir())
	f := &fakeTB{TB: t}
	f.run(func() { RuntimeBinary(f) })
	if !f.fatal || !strings.Contains(strings.Join(f.errors, ""), BinDirEnv) {
		t.Errorf("RuntimeBinary with an empty %s: fatal %v, errors %q", BinDirEnv, f.fatal, f.errors)
	}
}

func TestGoBuild(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Fatal("go not in PATH: the test suite needs the Go toolchain")
	}
	mod := t.TempDir()
	files := map[string]string{
		"go.mod":  "module example.com/tiny\n\ngo 1.22\n",
		"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"tiny\") }\n",
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "tiny")
	if err := goBuild(mod, ".", out); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(out).Output()
	if err != nil || string(got) != "tiny\n" {
		t.Errorf("built binary printed %q, %v", got, err)
	}
	if err := goBuild(mod, "./missing", out); err == nil {
		t.Error("building a missing package succeeded")
	}

	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "berth-runtime")); err != nil {
		t.Errorf("module root %s has no cmd/berth-runtime: %v", root, err)
	}
}

func TestContainerID(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := ContainerID(t)
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
		if len(id) > 64 || strings.TrimLeft(strings.ToLower(id), "abcdefghijklmnopqrstuvwxyz0123456789-_.") != "" {
			t.Fatalf("invalid id %q", id)
		}
	}
	t.Run("sub/test with spaces", func(t *testing.T) {
		if id := ContainerID(t); !strings.HasPrefix(id, "testcontainerid-sub-test_with_spaces-") {
			t.Errorf("id = %q", id)
		}
	})
}

func TestRootDir(t *testing.T) {
	var dir string
	t.Run("use", func(t *testing.T) {
		dir = RootDir(t)
		if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
			t.Fatalf("state root %s: %v %v, want an empty directory", dir, entries, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "state.json"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state root %s survives its test: %v", dir, err)
	}
}

func TestLeaks(t *testing.T) {
	requireRoot(t)
	id := ContainerID(t)
	dir := t.TempDir()

	// A mount whose mount point names the container.
	mnt := filepath.Join(dir, id)
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })

	// A process whose command line names it; it exits when stdin closes.
	proc := exec.Command("/bin/sh", "-c", "read x", id)
	stdin, err := proc.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); proc.Wait() })

	// A cgroup named after it, in the first hierarchy that lets us.
	var cg string
	entries, _ := os.ReadDir(cgroupRoot)
	for _, e := range entries {
		p := filepath.Join(cgroupRoot, e.Name(), id)
		if e.IsDir() && os.Mkdir(p, 0o755) == nil {
			cg = p
			break
		}
	}
	if cg == "" {
		if err := os.Mkdir(filepath.Join(cgroupRoot, id), 0o755); err == nil {
			cg = filepath.Join(cgroupRoot, id)
		}
	}
	if cg != "" {
		t.Cleanup(func() { os.Remove(cg) })
	}

	f := &fakeTB{TB: t}
	CheckNoLeaks(f, id)
	f.runCleanups()
	report := strings.Join(f.errors, "\n")
	for _, want := range []string{"container " + id + " leaked", "mount ", mnt, fmt.Sprintf("process %d: /bin/sh -c read x %s", proc.Process.Pid, id)} {
		if !strings.Contains(report, want) {
			t.Errorf("leak report lacks %q:\n%s", want, report)
		}
	}
	if cg != "" && !strings.Contains(report, "cgroup "+cg) {
		t.Errorf("leak report lacks cgroup %s:\n%s", cg, report)
	}

	// Paths catch what is mounted under them whatever its name.
	other := filepath.Join(dir, "other")
	leaks, err := Leaks("no-such-container-"+id[len(id)-12:]+"x", other)
	if err != nil || len(leaks) != 0 {
		t.Errorf("unrelated id and path: leaks %q, %v", leaks, err)
	}
	leaks, err = Leaks("no-such-container-x", dir)
	if err != nil || len(leaks) != 1 || !strings.Contains(leaks[0], mnt) {
		t.Errorf("Leaks(path %s) = %q, %v; want the mount only", dir, leaks, err)
	}

	// Once everything is gone, nothing is reported.
	stdin.Close()
	proc.Wait()
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	if cg != "" {
		if err := os.Remove(cg); err != nil {
			t.Fatal(err)
		}
	}
	f = &fakeTB{TB: t}
	CheckNoLeaks(f, id, dir)
	f.runCleanups()
	if len(f.errors) != 0 {
		t.Errorf("leaks reported after cleanup: %q", f.errors)
	}
}

// TestReadMountinfoUnescapes: a mount point with a space (escaped as \040
// in mountinfo) comes back as the real path.
func TestReadMountinfoUnescapes(t *testing.T) {
	requireRoot(t)
	dir := filepath.Join(t.TempDir(), "a b")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	mounts, err := readMountinfo()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mounts {
		if m.mountPoint == dir {
			return
		}
	}
	t.Errorf("readMountinfo has no entry for %q", dir)
}
