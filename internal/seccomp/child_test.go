//go:build linux && cgo

package seccomp

// The test binary doubles as the process that loads filters: a filter can
// never be removed, so every Load test runs in a child, re-executed from
// TestMain, and looks at what the child reports or how it died.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const childEnv = "BERTH_SECCOMP_TEST_CHILD"

// pidfdThread is PIDFD_THREAD (Linux 6.9): a pidfd for one thread, readable
// when that thread exits.
const pidfdThread = unix.O_EXCL

func init() {
	if os.Getenv(childEnv) != "" {
		// Keep the main goroutine on the thread group leader, so that
		// the worker that loads the filter runs on another thread.
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		childMain()
		return
	}
	os.Exit(m.Run())
}

// childCall is a raw syscall the child makes after Load.
type childCall struct {
	Nr   uintptr
	Args [6]uintptr
	// Path, when set, is passed as a pointer in Args[PathArg].
	Path    string
	PathArg int
}

// childRequest tells the child what to do; it arrives as JSON on stdin.
type childRequest struct {
	Program *Program
	// NoNNP skips no_new_privs and drops CAP_SYS_ADMIN before Load.
	NoNNP bool
	// Agent, when set, is the socket SendListener sends the listener to.
	Agent    string
	Metadata string
	Calls    []childCall
	// WatchThread reports the death of the thread that loaded the filter.
	WatchThread bool
}

// childResult is what the child reports, as JSON on stdout.
type childResult struct {
	Pid      int
	LoadErr  string
	NotifyFd int
	SendErr  string
	// Errnos has the errno of each call, 0 for success.
	Errnos []int
	// Seccomp has the seccomp mode of every thread after the calls.
	Seccomp      []int
	ThreadKilled bool
}

func childFatal(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "child: "+format+"\n", args...)
	os.Exit(3)
}

func childMain() {
	// A filter that kills must not leave core files behind.
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		childFatal("setrlimit: %v", err)
	}
	var req childRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		childFatal("decode request: %v", err)
	}

	tids := make(chan int)
	start := make(chan struct{})
	done := make(chan childResult, 1)
	go childWorker(&req, tids, start, done)
	tid := <-tids

	killed := make(chan struct{})
	if req.WatchThread {
		pidfd, err := unix.PidfdOpen(tid, pidfdThread)
		if err != nil {
			childFatal("pidfd_open(%d, PIDFD_THREAD): %v", tid, err)
		}
		go func() {
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			for {
				_, err := unix.Poll(fds, -1)
				if err == nil {
					break
				}
				if err != unix.EINTR {
					childFatal("poll pidfd: %v", err)
				}
			}
			close(killed)
		}()
	}
	close(start)

	var res childResult
	select {
	case res = <-done:
	case <-killed:
		res.ThreadKilled = true
	}
	res.Pid = os.Getpid()
	res.Seccomp = threadSeccompModes()
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		childFatal("encode result: %v", err)
	}
	os.Exit(0)
}

// childWorker loads the filter on its own locked thread and makes the calls.
// It never returns: the thread keeps its filter until the process exits.
func childWorker(req *childRequest, tid chan<- int, start <-chan struct{}, done chan<- childResult) {
	runtime.LockOSThread()
	tid <- unix.Gettid()
	<-start

	// Allocate everything before the filter is in place.
	var res childResult
	res.Errnos = make([]int, len(req.Calls))
	args := make([][6]uintptr, len(req.Calls))
	paths := make([]*byte, len(req.Calls))
	for i, c := range req.Calls {
		args[i] = c.Args
		if c.Path != "" {
			p, err := unix.BytePtrFromString(c.Path)
			if err != nil {
				childFatal("path %q: %v", c.Path, err)
			}
			paths[i] = p
			args[i][c.PathArg] = uintptr(unsafe.Pointer(p))
		}
	}

	if req.NoNNP {
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			childFatal("capget: %v", err)
		}
		data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			childFatal("capset: %v", err)
		}
	} else if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		childFatal("no_new_privs: %v", err)
	}

	fd, err := req.Program.Load()
	res.NotifyFd = fd
	if err != nil {
		res.LoadErr = err.Error()
		done <- res
		select {}
	}
	if req.Agent != "" {
		st := specs.ContainerProcessState{
			Fds:      []string{"ignored"},
			Pid:      os.Getpid(),
			Metadata: req.Metadata,
			State: specs.State{
				Version: specs.Version,
				ID:      "seccomp-test",
				Status:  specs.StateCreating,
				Pid:     os.Getpid(),
				Bundle:  "/bundle",
			},
		}
		if err := SendListener(req.Agent, st, fd); err != nil {
			res.SendErr = err.Error()
			done <- res
			select {}
		}
	}
	for i, c := range req.Calls {
		a := args[i]
		_, _, errno := unix.Syscall6(c.Nr, a[0], a[1], a[2], a[3], a[4], a[5])
		res.Errnos[i] = int(errno)
	}
	runtime.KeepAlive(paths)
	done <- res
	select {}
}

// threadSeccompModes returns the Seccomp field of /proc/self/task/*/status.
func threadSeccompModes() []int {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		childFatal("read tasks: %v", err)
	}
	var modes []int
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/status")
		if err != nil {
			continue // the thread is gone
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
				mode, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					childFatal("status line %q: %v", line, err)
				}
				modes = append(modes, mode)
			}
		}
	}
	return modes
}

// child is a running child of the test.
type child struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{}
}

// startChild starts a child that runs req; the child is killed and reaped
// when the test ends.
func startChild(t *testing.T, req childRequest) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: exec.Command(exe), done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), childEnv+"=1", "GODEBUG=asyncpreemptoff=1")
	c.cmd.Dir = t.TempDir()
	c.cmd.Stdin = bytes.NewReader(in)
	c.cmd.Stdout = &c.stdout
	c.cmd.Stderr = &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	})
	return c
}

// wait waits for the child to exit and returns its wait status.
func (c *child) wait() syscall.WaitStatus {
	<-c.done
	return c.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// result waits for the child and decodes its report; the child must have
// exited with status 0.
func (c *child) result(t *testing.T) childResult {
	t.Helper()
	ws := c.wait()
	if !ws.Exited() || ws.ExitStatus() != 0 {
		t.Fatalf("child: %v\nstdout: %s\nstderr: %s", c.cmd.ProcessState, c.stdout.String(), c.stderr.String())
	}
	var res childResult
	if err := json.Unmarshal(c.stdout.Bytes(), &res); err != nil {
		t.Fatalf("child result %q: %v", c.stdout.String(), err)
	}
	return res
}

// runChild runs req in a child and returns its report.
func runChild(t *testing.T, req childRequest) childResult {
	t.Helper()
	return startChild(t, req).result(t)
}
