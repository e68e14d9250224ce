package nsinit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/runtime/syncpipe"
	"golang.org/x/sys/unix"
)

// Main is the entry point of "berth-runtime init". It never returns: it
// either execve()s the container process or exits non-zero after reporting
// the error to the parent.
func Main() {
	runtime.LockOSThread()
	pipe, err := pipeFromEnv()
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
		os.Exit(1)
	}
	err = run(pipe)
	// run only returns on failure.
	_ = pipe.Send(Message{Type: MsgError, Error: err.Error()})
	os.Exit(1)
}

func pipeFromEnv() (*syncpipe.Pipe, error) {
	fd, err := fdFromEnv(EnvSyncFD)
	if err != nil {
		return nil, err
	}
	return syncpipe.FromFD(fd), nil
}

func fdFromEnv(name string) (int, error) {
	v := os.Getenv(name)
	if v == "" {
		return -1, nil
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 0 {
		return -1, fmt.Errorf("bad %s=%q", name, v)
	}
	return fd, nil
}

// run performs the whole setup and execs; it returns only an error.
func run(pipe *syncpipe.Pipe) error {
	var cfg Config
	if err := pipe.RecvBinary(&cfg); err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	if cfg.Spec == nil || cfg.Spec.Process == nil {
		return errors.New("config has no process")
	}
	fifoFD, err := fdFromEnv(EnvFifoFD)
	if err != nil {
		return err
	}
	consoleFD, err := fdFromEnv(EnvConsoleFD)
	if err != nil {
		return err
	}
	spec := cfg.Spec
	proc := spec.Process

	if !cfg.Exec {
		if err := setupContainer(&cfg, pipe); err != nil {
			return err
		}
	}

	proc.Env = withHome(proc.Env, proc.User.UID)

	if proc.Terminal {
		if err := setupConsole(consoleFD, proc.ConsoleSize, !cfg.Exec); err != nil {
			return err
		}
	} else if !cfg.Exec {
		// The container's first process leads its own session, with or
		// without a terminal, as under runc (ps shows it as "Ss").
		if _, err := unix.Setsid(); err != nil {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	if err := fixStdioOwner(proc.User.UID); err != nil {
		return err
	}
	if err := setRlimits(proc.Rlimits); err != nil {
		return err
	}
	if proc.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*proc.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj to %d: %w (lowering it needs CAP_SYS_RESOURCE)", *proc.OOMScoreAdj, err)
		}
	}
	if !cfg.Exec && !cfg.NoNewKeyring {
		// A fresh session keyring keeps the host's keys out of the container.
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil && err != unix.ENOSYS && err != unix.EACCES {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	if proc.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if err := setLabels(proc); err != nil {
		return err
	}
	// Scheduler and io priority are set by the runtime, as in runc: before
	// seccomp and while init still has its capabilities (a realtime policy
	// or io class needs CAP_SYS_NICE or CAP_SYS_ADMIN).
	if err := setScheduling(proc); err != nil {
		return err
	}

	// Seccomp goes in as late as possible; without no_new_privs it needs
	// CAP_SYS_ADMIN, so it must come before the capabilities are dropped.
	// With a listener it must come before the pipe closes, so the fd can
	// reach the parent.
	seccompLoaded := false
	loadSeccomp := func() error {
		if cfg.Seccomp == nil || seccompLoaded {
			return nil
		}
		seccompLoaded = true
		fd, err := cfg.Seccomp.Load()
		if err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
		if fd >= 0 {
			defer unix.Close(fd)
			if err := pipe.Send(Message{Type: MsgSeccompFd, Fd: fd}); err != nil {
				return fmt.Errorf("send seccomp listener fd: %w", err)
			}
			var reply Message
			if err := pipe.RecvPlain(&reply); err != nil {
				return fmt.Errorf("wait for seccomp listener hand-over: %w", err)
			}
			if reply.Type != MsgSeccompFdDone {
				return fmt.Errorf("unexpected sync message %q after seccomp listener", reply.Type)
			}
		}
		return nil
	}
	if !proc.NoNewPrivileges || (cfg.Seccomp != nil && cfg.Seccomp.Notify) {
		if err := loadSeccomp(); err != nil {
			return err
		}
	}

	if err := closeExtraFDs(3 + cfg.PreserveFDs); err != nil {
		return err
	}
	if err := dropBoundingSet(proc.Capabilities); err != nil {
		return err
	}
	if err := setupUser(proc); err != nil {
		return err
	}
	if err := applyCapabilities(proc.Capabilities); err != nil {
		return err
	}
	if proc.Cwd != "" {
		if err := unix.Chdir(proc.Cwd); err != nil {
			return fmt.Errorf("chdir to cwd (%q) set in config.json: %w", proc.Cwd, err)
		}
	}
	if len(proc.Args) == 0 {
		return errors.New("process args are empty")
	}
	path, err := lookPath(proc.Args[0], proc.Env)
	if err != nil {
		return err
	}

	if cfg.StartByPipe {
		// run: the pipe stays open (close-on-exec) until execve, as the
		// exec fifo would; see protocol.go.
		if err := waitForStartMessage(pipe); err != nil {
			// Nobody is listening any more: exit quietly.
			fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
			os.Exit(1)
		}
	} else {
		// Success so far: closing the pipe tells the parent that create is done.
		pipe.Close()
	}

	// The exec fifo stays open (close-on-exec) until execve, so that start
	// returns, and runs poststart hooks, only once the process runs.
	var fifo *os.File
	if fifoFD >= 0 {
		if fifo, err = waitForStart(fifoFD); err != nil {
			// Nobody is listening any more: exit quietly.
			fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
			os.Exit(1)
		}
	}
	// startContainer hooks belong to the container's start, not to exec.
	if !cfg.Exec {
		if err := runStartContainerHooks(&cfg); err != nil {
			fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
			os.Exit(1)
		}
	}
	if err := loadSeccomp(); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
		os.Exit(1)
	}
	if err := setPersonality(spec); err != nil {
		fmt.Fprintf(os.Stderr, "berth-runtime init: %v\n", err)
		os.Exit(1)
	}
	err = unix.Exec(path, proc.Args, proc.Env)
	runtime.KeepAlive(fifo)
	runtime.KeepAlive(pipe)
	fmt.Fprintf(os.Stderr, "berth-runtime init: exec %s: %v\n", path, err)
	os.Exit(127)
	return nil
}

// waitForStartMessage tells the parent that create is done, waits for its
// start message and acknowledges it, with plain write(2) and read(2) (a
// seccomp filter may be loaded already).
func waitForStartMessage(pipe *syncpipe.Pipe) error {
	if err := pipe.Send(Message{Type: MsgReady}); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}
	var msg Message
	if err := pipe.RecvPlain(&msg); err != nil {
		return fmt.Errorf("wait for start: %w", err)
	}
	if msg.Type != MsgStart {
		return fmt.Errorf("unexpected sync message %q while waiting for start", msg.Type)
	}
	if err := pipe.Send(Message{Type: MsgStarted}); err != nil {
		return fmt.Errorf("acknowledge start: %w", err)
	}
	return nil
}

// waitForStart blocks until "berth-runtime start" opens the exec fifo,
// writes one byte and returns the fifo, still open: execve closes it.
func waitForStart(fd int) (*os.File, error) {
	f, err := os.OpenFile("/proc/self/fd/"+strconv.Itoa(fd), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	unix.Close(fd)
	if _, err := f.Write([]byte{'0'}); err != nil {
		f.Close()
		return nil, fmt.Errorf("write exec fifo: %w", err)
	}
	return f, nil
}

// lookPath resolves file with the PATH of the container's environment, as
// execvp would, so that a missing program fails create instead of start.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := checkExecutable(file); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return file, nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathEnv = v
		}
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + file
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: %w", file, exec.ErrNotFound)
}

func checkExecutable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return errors.New("is a directory")
	}
	return unix.Access(p, unix.X_OK)
}

// closeExtraFDs marks every descriptor from first on close-on-exec, so
// nothing of the runtime's leaks into the container.
func closeExtraFDs(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list fds: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err == nil && fd >= first {
			unix.CloseOnExec(fd)
		}
	}
	return nil
}

// withHome returns env with HOME set, as runc does, when it has none (or
// an empty one): the home directory of uid in the container's /etc/passwd,
// or "/" if it has no entry.
func withHome(env []string, uid uint32) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, "HOME=") {
			if kv != "HOME=" {
				return env
			}
			continue
		}
		out = append(out, kv)
	}
	return append(out, "HOME="+passwdHome(uid))
}

// passwdHome looks uid up in /etc/passwd (of the container: init has
// pivoted or joined its mount namespace), reading at most 1 MiB of it.
func passwdHome(uid uint32) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	want := strconv.FormatUint(uint64(uid), 10)
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for sc.Scan() {
		// name:password:uid:gid:gecos:home:shell
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 6 && fields[2] == want && fields[5] != "" {
			return fields[5]
		}
	}
	return "/"
}

// fixStdioOwner gives stdio to the container's user, as runc does, so
// that a non-root process can reopen it (/dev/stdout, its tty): the
// runtime's caller made it, as root. /dev/null and descriptors the user
// already owns are left alone, and a chown the kernel refuses (an
// unmapped owner or group, a read-only filesystem) is skipped.
func fixStdioOwner(uid uint32) error {
	var null unix.Stat_t
	if err := unix.Stat("/dev/null", &null); err != nil {
		return fmt.Errorf("stat /dev/null: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			if errors.Is(err, unix.EBADF) {
				continue
			}
			return fmt.Errorf("stat stdio fd %d: %w", fd, err)
		}
		if st.Uid == uid || st.Rdev == null.Rdev {
			continue
		}
		if err := unix.Fchown(fd, int(uid), int(st.Gid)); err != nil &&
			!errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EROFS) {
			return fmt.Errorf("give stdio fd %d to uid %d: %w", fd, uid, err)
		}
	}
	return nil
}
