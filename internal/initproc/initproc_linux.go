package initproc

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// defaultPath is searched when PATH is unset, as Docker sets it in images
// that do not.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Run starts argv as berth-init's child, forwards the signals it receives
// to it, reaps every child that ends (the command and the orphans
// re-parented to it) and returns the exit code berth-init must exit with
// once the command is gone (see the package doc). Errors go to stderr as
// "berth-init: ...". It must be the only code of the process waiting for
// children.
func Run(argv []string, stderr io.Writer) int {
	if len(argv) == 0 {
		io.WriteString(stderr, "berth-init: no command given\n")
		return ExitUsage
	}
	path, err := lookPath(argv[0])
	if err != nil {
		return execFailed(stderr, argv[0], err)
	}

	// Catch before the child exists, so that no SIGCHLD and no signal meant
	// for it is lost; signals that come before it starts are forwarded once
	// it runs.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs, append(forwarded(), unix.SIGCHLD)...)
	defer signal.Stop(sigs)

	if os.Getpid() != 1 {
		// Not a pid namespace's init: become the reaper of our subtree's
		// orphans instead. Failure only means orphans go elsewhere.
		_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}

	attr := &syscall.SysProcAttr{Setpgid: true}
	foreground := stdinIsForegroundTTY()
	if foreground {
		// The child takes the terminal's foreground itself between setpgid
		// and exec, with signals blocked (no SIGTTOU).
		attr.Foreground = true
		attr.Ctty = 0
	}
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   attr,
	})
	if err != nil {
		if foreground {
			// The failed child may have taken the foreground: writing the
			// error from the background must not stop us (TOSTOP). No child
			// will inherit this disposition.
			signal.Ignore(unix.SIGTTOU)
		}
		return execFailed(stderr, argv[0], err)
	}

	for {
		sig := <-sigs
		if sig != unix.SIGCHLD {
			// ESRCH only when the child is already gone and reaped below.
			_ = unix.Kill(pid, sig.(syscall.Signal))
			continue
		}
		if status, ok := reap(pid); ok {
			return exitCode(status)
		}
	}
}

// forwarded returns the signals berth-init catches and forwards: every
// catchable one except SIGCHLD (its own), SIGURG (the Go runtime's
// preemption signal, which it sends to itself) and 32 and 33 (reserved by
// C libraries for threads).
func forwarded() []os.Signal {
	var sigs []os.Signal
	for n := syscall.Signal(1); n <= 64; n++ {
		switch n {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGCHLD, unix.SIGURG, 32, 33:
			continue
		}
		sigs = append(sigs, n)
	}
	return sigs
}

// reap waits for every child that has ended, without blocking, and
// returns the status of pid if it was one of them.
func reap(pid int) (status unix.WaitStatus, exited bool) {
	for {
		var ws unix.WaitStatus
		p, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || p <= 0 {
			// ECHILD: nothing left to wait for; 0: the rest still run.
			return status, exited
		}
		if p == pid {
			status, exited = ws, true
		}
	}
}

// exitCode turns the child's wait status into berth-init's exit code.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return exitSignalBase + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// stdinIsForegroundTTY reports whether fd 0 is our controlling terminal
// and our process group is its foreground group: only then is the
// foreground ours to hand to the child.
func stdinIsForegroundTTY() bool {
	pgrp, err := unix.IoctlGetInt(0, unix.TIOCGPGRP)
	return err == nil && pgrp == unix.Getpgrp()
}

// errNotFound is what lookPath reports for a name found in no directory
// of PATH, in Docker's words.
var errNotFound = errors.New("executable file not found in $PATH")

// lookPath finds name like a shell: a name with a slash is used as is (the
// exec reports what is wrong with it), any other is searched in PATH. A
// file found but not executable is reported only when no directory has an
// executable one.
func lookPath(name string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	list, ok := os.LookupEnv("PATH")
	if !ok {
		list = defaultPath
	}
	var denied error
	for _, dir := range strings.Split(list, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if err := unix.Access(p, unix.X_OK); err != nil {
			if denied == nil {
				denied = err
			}
			continue
		}
		return p, nil
	}
	if denied != nil {
		return "", denied
	}
	return "", errNotFound
}

// execFailed reports that argv0 could not be started and returns the
// shell's exit code for the reason: 127 not found, 126 anything else.
func execFailed(stderr io.Writer, argv0 string, err error) int {
	// No fmt: it would add about 190 KB to the binary.
	io.WriteString(stderr, "berth-init: exec "+argv0+": "+err.Error()+"\n")
	if errors.Is(err, errNotFound) || errors.Is(err, unix.ENOENT) {
		return ExitNotFound
	}
	return ExitCannotExec
}
