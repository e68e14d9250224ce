//go:build linux && cgo

package seccomp

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// nr returns the native number of a syscall.
func nr(t *testing.T, name string) uintptr {
	t.Helper()
	n, err := libseccomp.GetSyscallFromName(name)
	if err != nil || n < 0 {
		t.Fatalf("syscall %s: %d %v", name, n, err)
	}
	return uintptr(n)
}

// atFdcwd is AT_FDCWD as a syscall argument.
func atFdcwd() uintptr {
	fd := unix.AT_FDCWD
	return uintptr(fd)
}

// mkdirCall is mkdirat(AT_FDCWD, path, 0755).
func mkdirCall(t *testing.T, path string) childCall {
	return childCall{Nr: nr(t, "mkdirat"), Args: [6]uintptr{atFdcwd(), 0, 0o755}, Path: path, PathArg: 1}
}

func call(t *testing.T, name string, args ...uintptr) childCall {
	c := childCall{Nr: nr(t, name)}
	copy(c.Args[:], args)
	return c
}

func errnoName(e int) string {
	if e == 0 {
		return "success"
	}
	return unix.ErrnoName(unix.Errno(e))
}

func checkErrnos(t *testing.T, res childResult, want ...unix.Errno) {
	t.Helper()
	if res.LoadErr != "" || res.SendErr != "" {
		t.Fatalf("child: load: %q, send: %q", res.LoadErr, res.SendErr)
	}
	if len(res.Errnos) != len(want) {
		t.Fatalf("child made %d calls, want %d", len(res.Errnos), len(want))
	}
	for i, w := range want {
		if res.Errnos[i] != int(w) {
			t.Errorf("call %d: %s, want %s", i, errnoName(res.Errnos[i]), errnoName(int(w)))
		}
	}
}

func exists(t *testing.T, path string) bool {
	t.Helper()
	_, err := os.Stat(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestLoadErrno(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV))},
			{Names: []string{"getppid"}, Action: specs.ActErrno},
		},
	})
	dir := filepath.Join(t.TempDir(), "blocked")
	res := runChild(t, childRequest{Program: p, Calls: []childCall{
		mkdirCall(t, dir),
		call(t, "getppid"),
		call(t, "getpid"),
	}})
	checkErrnos(t, res, unix.EXDEV, unix.EPERM, 0)
	if exists(t, dir) {
		t.Error("mkdirat was refused but the directory exists")
	}
	if res.NotifyFd != -1 {
		t.Errorf("Load returned fd %d without notify, want -1", res.NotifyFd)
	}
}

// runtimeSyscalls are what a Go thread may need between Load and the end
// of the child; a deny-by-default test profile allows them.
var runtimeSyscalls = []string{
	"futex", "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack", "sched_yield",
	"nanosleep", "clock_gettime", "clock_nanosleep", "gettid", "getpid", "tgkill", "read",
	"write", "mmap", "munmap", "madvise", "mprotect", "exit", "exit_group", "epoll_pwait",
}

func TestLoadDefaultErrnoRet(t *testing.T) {
	var highest uintptr
	for _, name := range runtimeSyscalls {
		if _, err := libseccomp.GetSyscallFromName(name); err == nil {
			highest = max(highest, nr(t, name))
		}
	}
	if nr(t, "getrandom") <= highest {
		t.Fatalf("getrandom (%d) is not above the profile's highest syscall (%d)", nr(t, "getrandom"), highest)
	}
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uintp(uint(unix.EXDEV)),
		Syscalls:        []specs.LinuxSyscall{{Names: runtimeSyscalls, Action: specs.ActAllow}},
	})
	dir := filepath.Join(t.TempDir(), "denied")
	res := runChild(t, childRequest{Program: p, Calls: []childCall{
		call(t, "getppid"),
		mkdirCall(t, dir),
		call(t, "getpid"),
		// Newer than anything in the profile: the ENOSYS stub answers.
		call(t, "getrandom", 0, 0, 0),
	}})
	checkErrnos(t, res, unix.EXDEV, unix.EXDEV, 0, unix.ENOSYS)
	if exists(t, dir) {
		t.Error("mkdirat was refused but the directory exists")
	}
}

func TestLoadKillProcess(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActKillProcess}},
	})
	c := startChild(t, childRequest{Program: p, Calls: []childCall{call(t, "getppid")}})
	ws := c.wait()
	if !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("child: %v, want killed by SIGSYS\nstdout: %s\nstderr: %s", c.cmd.ProcessState, c.stdout.String(), c.stderr.String())
	}
	if c.stdout.Len() != 0 {
		t.Errorf("killed child reported %q", c.stdout.String())
	}
}

func TestLoadKillThread(t *testing.T) {
	for _, action := range []specs.LinuxSeccompAction{specs.ActKill, specs.ActKillThread} {
		t.Run(string(action), func(t *testing.T) {
			p := mustCompile(t, &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: action}},
			})
			// The thread dies, the process lives on and reports it.
			res := runChild(t, childRequest{Program: p, WatchThread: true, Calls: []childCall{call(t, "getppid")}})
			if !res.ThreadKilled {
				t.Fatalf("thread not killed: %+v", res)
			}
		})
	}
}

func TestLoadTrap(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActTrap}},
	})
	c := startChild(t, childRequest{Program: p, Calls: []childCall{call(t, "getppid")}})
	ws := c.wait()
	// The Go runtime does not handle a synchronous SIGSYS: it reports
	// the signal and its code (SYS_SECCOMP = 1), then exits with status 2.
	stderr := c.stderr.String()
	if !ws.Exited() || ws.ExitStatus() != 2 || !strings.Contains(stderr, "SIGSYS: bad system call") ||
		!strings.Contains(stderr, "sigcode=1") {
		t.Fatalf("child: %v, want a SIGSYS crash with sigcode=1\nstderr: %s", c.cmd.ProcessState, stderr)
	}
}

func TestLoadTrace(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActTrace, ErrnoRet: uintp(42)}},
	})
	// Without a tracer the kernel fails the syscall with ENOSYS.
	res := runChild(t, childRequest{Program: p, Calls: []childCall{call(t, "getppid"), call(t, "getpid")}})
	checkErrnos(t, res, unix.ENOSYS, 0)
}

func TestLoadLog(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: runtimeSyscalls, Action: specs.ActAllow},
			{Names: []string{"mkdirat"}, Action: specs.ActLog},
		},
	})
	dir := filepath.Join(t.TempDir(), "logged")
	res := runChild(t, childRequest{Program: p, Calls: []childCall{mkdirCall(t, dir), call(t, "getppid")}})
	checkErrnos(t, res, 0, unix.EPERM)
	if !exists(t, dir) {
		t.Error("mkdirat was logged and allowed but the directory does not exist")
	}
}

func TestLoadArgs(t *testing.T) {
	const hi = 1 << 32
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" && runtime.GOARCH != "riscv64" {
		t.Skip("needs 64-bit syscall arguments")
	}
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			// Docker's way of only letting personality query.
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			{Names: []string{"getppid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)),
				Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xf0, ValueTwo: 0x30, Op: specs.OpMaskedEqual}}},
			{Names: []string{"getpgrp"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)),
				Args: []specs.LinuxSeccompArg{{Index: 3, Value: hi, Op: specs.OpGreaterThan}}},
			{Names: []string{"getuid"}, Action: specs.ActErrno, ErrnoRet: uintp(uint(unix.EXDEV)),
				Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: 7, Op: specs.OpNotEqual},
					{Index: 1, Value: 3, Op: specs.OpLessThan},
				}},
		},
	})
	res := runChild(t, childRequest{Program: p, Calls: []childCall{
		call(t, "personality", 0xffffffff),
		call(t, "personality", 0),
		call(t, "getppid", 0x35),
		call(t, "getppid", 0x45),
		call(t, "getpgrp", 0, 0, 0, hi+1),
		call(t, "getpgrp", 0, 0, 0, hi),
		call(t, "getuid", 8, 2),
		call(t, "getuid", 7, 2),
		call(t, "getuid", 8, 3),
	}})
	checkErrnos(t, res, unix.EXDEV, 0, unix.EXDEV, 0, unix.EXDEV, 0, unix.EXDEV, 0, 0)
}

func TestLoadTsync(t *testing.T) {
	for _, tsync := range []bool{false, true} {
		t.Run(map[bool]string{false: "calling thread", true: "tsync"}[tsync], func(t *testing.T) {
			c := &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Flags:         []specs.LinuxSeccompFlag{},
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}},
			}
			if tsync {
				c.Flags = append(c.Flags, "SECCOMP_FILTER_FLAG_TSYNC")
			}
			res := runChild(t, childRequest{Program: mustCompile(t, c), Calls: []childCall{call(t, "getppid")}})
			checkErrnos(t, res, unix.EPERM)
			filtered := 0
			for _, mode := range res.Seccomp {
				if mode == unix.SECCOMP_MODE_FILTER {
					filtered++
				}
			}
			if len(res.Seccomp) < 2 {
				t.Fatalf("child had %d threads; the test needs several", len(res.Seccomp))
			}
			want := 1
			if tsync {
				want = len(res.Seccomp)
			}
			if filtered != want {
				t.Errorf("%d of %d threads filtered, want %d", filtered, len(res.Seccomp), want)
			}
		})
	}
}

func TestLoadFlags(t *testing.T) {
	for _, tc := range []struct {
		name   string
		flags  []specs.LinuxSeccompFlag
		notify bool
	}{
		{"log", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog}, false},
		{"spec allow", []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}, false},
		{"default", nil, false},
		{"notify", []specs.LinuxSeccompFlag{}, true},
		{"notify tsync wait killable", []specs.LinuxSeccompFlag{
			"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagWaitKillableRecv, specs.LinuxSeccompFlagLog,
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Flags:         tc.flags,
				Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}},
			}
			if tc.notify {
				c.ListenerPath = "/unused"
				c.Syscalls = append(c.Syscalls, specs.LinuxSyscall{Names: []string{"mkdirat"}, Action: specs.ActNotify})
			}
			res := runChild(t, childRequest{Program: mustCompile(t, c), Calls: []childCall{call(t, "getppid")}})
			checkErrnos(t, res, unix.EPERM)
			if tc.notify != (res.NotifyFd >= 0) {
				t.Errorf("notify %v: Load returned fd %d", tc.notify, res.NotifyFd)
			}
		})
	}
}

func TestLoadNeedsNoNewPrivsOrSysAdmin(t *testing.T) {
	p := mustCompile(t, &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getppid"}, Action: specs.ActErrno}},
	})
	res := runChild(t, childRequest{Program: p, NoNNP: true, Calls: []childCall{call(t, "getppid")}})
	if !strings.Contains(res.LoadErr, unix.EACCES.Error()) || !strings.Contains(res.LoadErr, "no_new_privs") {
		t.Fatalf("Load without no_new_privs nor CAP_SYS_ADMIN: %q, want EACCES with a hint", res.LoadErr)
	}
	if res.NotifyFd != -1 {
		t.Errorf("failed Load returned fd %d", res.NotifyFd)
	}
	for _, mode := range res.Seccomp {
		if mode != 0 {
			t.Errorf("a thread has seccomp mode %d after a failed Load", mode)
		}
	}
}

func TestLoadKernelRejectsProgram(t *testing.T) {
	// ld [0] and no return: the kernel's checker refuses it.
	bad := &Program{Filter: encodeInsns([]unix.SockFilter{{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS}})}
	res := runChild(t, childRequest{Program: bad, Calls: []childCall{call(t, "getppid")}})
	if !strings.Contains(res.LoadErr, unix.EINVAL.Error()) {
		t.Fatalf("Load of an invalid program: %q, want EINVAL", res.LoadErr)
	}
}

func TestLoadInvalidProgram(t *testing.T) {
	// These never reach the kernel, so they can run in the test process.
	for _, tc := range []struct {
		name string
		p    *Program
	}{
		{"nil", nil},
		{"empty", &Program{}},
		{"partial instruction", &Program{Filter: make([]byte, 12)}},
		{"too long", &Program{Filter: make([]byte, (unix.BPF_MAXINSNS+1)*sockFilterSize)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, err := tc.p.Load()
			if err == nil || !errdefs.IsInvalidArgument(err) {
				t.Errorf("Load: %v, want an invalid argument error", err)
			}
			if fd != -1 {
				t.Errorf("Load returned fd %d", fd)
			}
		})
	}
}
