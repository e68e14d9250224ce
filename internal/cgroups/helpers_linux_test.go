package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the child processes the tests put in cgroups:
// with helperEnv set, TestMain runs a helper instead of the tests.
const helperEnv = "BERTH_CGROUPS_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

// hoard keeps the "alloc" command's memory reachable.
var hoard [][]byte

// runHelper is the child side. Modes:
//
//	serve: read command bytes from stdin until EOF. 'e' echoes; 'w' does
//	       some work (touches 8 MiB, burns ~20ms of CPU, reads args[0]
//	       with O_DIRECT if given) then echoes; 'a' allocates until killed.
//	devices: wait for one byte, then try each check in args
//	       ("r:path", "w:path", "m:c:1:3:path") and print the results.
//	reexec: start busy threads, then execve itself again with args[0]
//	       (a count of execs, visible in /proc/<pid>/cmdline) plus one,
//	       forever: a multi-threaded process that keeps entering execve.
func runHelper(mode string, args []string) int {
	in := bufio.NewReader(os.Stdin)
	switch mode {
	case "serve":
		for {
			b, err := in.ReadByte()
			if err != nil {
				return 0
			}
			switch b {
			case 'w':
				work(args)
			case 'a':
				for {
					chunk := make([]byte, 1<<20)
					for i := 0; i < len(chunk); i += 4096 {
						chunk[i] = 1
					}
					hoard = append(hoard, chunk)
				}
			}
			if _, err := os.Stdout.Write([]byte{b}); err != nil {
				return 1
			}
		}
	case "devices":
		if _, err := in.ReadByte(); err != nil {
			return 1
		}
		var results []string
		for _, c := range args {
			results = append(results, deviceCheck(c))
		}
		fmt.Println(strings.Join(results, " "))
		return 0
	case "reexec":
		return reexec(args)
	}
	fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
	return 2
}

// reexec is the "reexec" helper: execve de-threads the process, which
// waits for the sibling threads to die; those must be running Go threads.
func reexec(args []string) int {
	if os.Getppid() == 1 {
		return 1 // the test is gone
	}
	n := 0
	if len(args) > 0 {
		n, _ = strconv.Atoi(args[0])
	}
	started := make(chan struct{})
	for i := 0; i < 4; i++ {
		go func() {
			runtime.LockOSThread()
			started <- struct{}{}
			for spin := 0; ; spin++ {
			}
		}()
	}
	for i := 0; i < 4; i++ {
		<-started
	}
	err := unix.Exec("/proc/self/exe", []string{os.Args[0], strconv.Itoa(n + 1)}, os.Environ())
	fmt.Fprintf(os.Stderr, "reexec: %v\n", err)
	return 1
}

func work(args []string) {
	chunk := make([]byte, 8<<20)
	for i := 0; i < len(chunk); i += 4096 {
		chunk[i] = 1
	}
	hoard = append(hoard, chunk)
	x := 0
	for start := time.Now(); time.Since(start) < 20*time.Millisecond; {
		for i := 0; i < 1000; i++ {
			x += i * x
		}
	}
	_ = x
	if len(args) > 0 && args[0] != "" {
		fd, err := unix.Open(args[0], unix.O_RDONLY|unix.O_DIRECT|unix.O_CLOEXEC, 0)
		if err == nil {
			buf, err := unix.Mmap(-1, 0, 1<<20, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err == nil {
				_, _ = unix.Read(fd, buf)
				_ = unix.Munmap(buf)
			}
			unix.Close(fd)
		}
	}
}

// deviceCheck performs one access and names the outcome: "ok" or the
// errno name ("EPERM").
func deviceCheck(c string) string {
	op, rest, _ := strings.Cut(c, ":")
	var err error
	switch op {
	case "r", "w":
		flag := unix.O_RDONLY
		if op == "w" {
			flag = unix.O_WRONLY
		}
		var fd int
		if fd, err = unix.Open(rest, flag|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
		}
	case "m":
		f := strings.SplitN(rest, ":", 4)
		if len(f) != 4 {
			return "EINVAL"
		}
		major, _ := strconv.Atoi(f[1])
		minor, _ := strconv.Atoi(f[2])
		mode := uint32(unix.S_IFCHR)
		if f[0] == "b" {
			mode = unix.S_IFBLK
		}
		if err = unix.Mknod(f[3], mode|0o600, int(unix.Mkdev(uint32(major), uint32(minor)))); err == nil {
			_ = unix.Unlink(f[3])
		}
	default:
		return "EINVAL"
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	if err != nil {
		return err.Error()
	}
	return "ok"
}

// helper is a running child process.
type helper struct {
	cmd      *exec.Cmd
	in       *os.File // the child's stdin
	out      *os.File // the child's stdout; pollable, so deadlines work
	waitOnce sync.Once
	waitErr  error
}

// startHelper starts the test binary in mode and arranges for it to be
// killed and reaped when the test ends.
func startHelper(t *testing.T, mode string, args ...string) *helper {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	h := &helper{cmd: cmd, in: inW, out: outR}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = h.wait()
		inW.Close()
		outR.Close()
	})
	return h
}

func (h *helper) pid() int { return h.cmd.Process.Pid }

// wait reaps the child once, whoever asks first.
func (h *helper) wait() error {
	h.waitOnce.Do(func() { h.waitErr = h.cmd.Wait() })
	return h.waitErr
}

// send writes one command byte.
func (h *helper) send(t *testing.T, b byte) {
	t.Helper()
	if _, err := h.in.Write([]byte{b}); err != nil {
		t.Fatalf("write to helper: %v", err)
	}
}

// reply reads one byte, failing the test if none comes by the deadline.
func (h *helper) reply(t *testing.T, within time.Duration) byte {
	t.Helper()
	b, err := h.tryReply(within)
	if err != nil {
		t.Fatalf("read from helper: %v", err)
	}
	return b
}

func (h *helper) tryReply(within time.Duration) (byte, error) {
	if err := h.out.SetReadDeadline(time.Now().Add(within)); err != nil {
		return 0, err
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(h.out, buf); err != nil {
		return 0, err
	}
	return buf[0], nil
}

// call sends a command and waits for its echo.
func (h *helper) call(t *testing.T, b byte) {
	t.Helper()
	h.send(t, b)
	if got := h.reply(t, 30*time.Second); got != b {
		t.Fatalf("helper replied %q to %q", got, b)
	}
}

// killedBySIGKILL reports whether the helper died of SIGKILL.
func (h *helper) killedBySIGKILL() bool {
	var ee *exec.ExitError
	if !errors.As(h.wait(), &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root to create cgroups (make test runs as root)")
	}
}

var nonName = regexp.MustCompile(`[^A-Za-z0-9]+`)

// testCgroupPath is a cgroup path unique to this test and process.
func testCgroupPath(t *testing.T) string {
	return fmt.Sprintf("/berth-test-%s-%d", strings.ToLower(nonName.ReplaceAllString(t.Name(), "-")), os.Getpid())
}

// newTestManager returns New(testCgroupPath(t)) and registers its removal.
// It must be called before the helpers that go into it, so that they are
// killed (cleanups run last-in first-out) before the cgroup is removed.
func newTestManager(t *testing.T) Manager {
	t.Helper()
	requireRoot(t)
	m, err := New(testCgroupPath(t), "")
	if err != nil {
		t.Fatal(err)
	}
	cleanupManager(t, m)
	return m
}

// cleanupManager removes m's directories when the test ends, killing any
// process left in them, and fails the test if something stays behind.
func cleanupManager(t *testing.T, m Manager) {
	t.Cleanup(func() {
		if pids, err := m.Pids(); err == nil && len(pids) > 0 {
			t.Errorf("processes %v left in the cgroup at cleanup", pids)
			_ = m.Kill()
		}
		if err := m.Destroy(); err != nil {
			t.Errorf("destroy at cleanup: %v", err)
		}
		for _, d := range m.Paths() {
			if _, err := os.Stat(d); !os.IsNotExist(err) {
				t.Errorf("cgroup %s left behind (stat: %v)", d, err)
			}
		}
	})
}

// procCgroups parses /proc/<pid>/cgroup into controllers -> path, keyed
// like ownCgroups.
func procCgroups(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := make(map[string]string)
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			t.Fatalf("bad /proc/%d/cgroup line %q", pid, line)
		}
		if f[1] == "" {
			m[""] = f[2]
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			m[c] = f[2]
		}
	}
	return m
}

// procState returns the State line of /proc/<pid>/status ("S (sleeping)").
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no State in /proc/%d/status", pid)
	return ""
}

// mustRead reads a cgroup file, failing the test on error.
func mustRead(t *testing.T, dir, name string) string {
	t.Helper()
	s, err := readFile(dir, name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// expectFile checks a cgroup file's content.
func expectFile(t *testing.T, dir, name, want string) {
	t.Helper()
	if got := mustRead(t, dir, name); got != want {
		t.Errorf("%s = %q, want %q", filepath.Join(dir, name), got, want)
	}
}

// unifiedMount returns the host's cgroup2 mount, skipping the test if
// there is none.
func unifiedMount(t *testing.T) Hierarchy {
	t.Helper()
	hs, err := HostMounts()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if h.FSType == "cgroup2" {
			return h
		}
	}
	t.Skip("no cgroup2 hierarchy mounted")
	return Hierarchy{}
}

// newTestV2Manager returns a v2 manager for a fresh cgroup in the host's
// cgroup2 hierarchy (the unified one on a hybrid host) and registers its
// removal.
func newTestV2Manager(t *testing.T) (*v2Manager, Hierarchy) {
	t.Helper()
	requireRoot(t)
	h := unifiedMount(t)
	m, err := Load(map[string]string{"": filepath.Join(h.Mountpoint, testCgroupPath(t))})
	if err != nil {
		t.Fatal(err)
	}
	v2, ok := m.(*v2Manager)
	if !ok {
		t.Fatalf("Load of a cgroup2 path returned %T", m)
	}
	cleanupManager(t, v2)
	return v2, h
}
