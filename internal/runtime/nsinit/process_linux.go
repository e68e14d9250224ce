package nsinit

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"github.com/berth-project/berth/internal/runtime/hooks"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupTimeNamespace creates the time namespace the final execve enters,
// with the spec's clock offsets. Offsets can only be written before any
// process lives in the namespace, which is why init (not clone) makes it.
func setupTimeNamespace(spec *specs.Spec) error {
	want := false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.TimeNamespace && ns.Path == "" {
			want = true
		}
	}
	if !want {
		return nil
	}
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	var b strings.Builder
	for clock, off := range spec.Linux.TimeOffsets {
		id := clock
		switch clock {
		case "monotonic", "boottime":
		default:
			return fmt.Errorf("time offset for unknown clock %q", clock)
		}
		fmt.Fprintf(&b, "%s %d %d\n", id, off.Secs, off.Nanosecs)
	}
	if b.Len() > 0 {
		if err := os.WriteFile("/proc/self/timens_offsets", []byte(b.String()), 0); err != nil {
			return fmt.Errorf("write time offsets: %w", err)
		}
	}
	return nil
}

// setupConsole creates a pty in the container's devpts, sends its master
// to the console socket (runc's protocol: one message, the fd as
// SCM_RIGHTS and the name as data) and makes the slave stdio and the
// controlling terminal. With mountConsole (a new container, not exec) it
// also binds the slave over /dev/console; an exec'd process must not: the
// bind would outlive its pty in the container's mount namespace.
func setupConsole(socketFD int, size *specs.Box, mountConsole bool) error {
	if socketFD < 0 {
		return errors.New("terminal requested but no console socket was given")
	}
	defer unix.Close(socketFD)
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /dev/ptmx: %w", err)
	}
	defer master.Close()
	mfd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		return fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetUint32(mfd, unix.TIOCGPTN)
	if err != nil {
		return fmt.Errorf("get pty number: %w", err)
	}
	slavePath := "/dev/pts/" + strconv.Itoa(int(n))
	if size != nil {
		ws := &unix.Winsize{Row: uint16(size.Height), Col: uint16(size.Width)}
		if err := unix.IoctlSetWinsize(mfd, unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("set console size: %w", err)
		}
	}
	// /dev/console is the pty's slave, as it is in runc.
	if mountConsole {
		if err := createConsoleNode(slavePath); err != nil {
			return err
		}
	}
	if err := unix.Sendmsg(socketFD, []byte(master.Name()), unix.UnixRights(mfd), nil, 0); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	slave, err := unix.Open(slavePath, unix.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", slavePath, err)
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(slave, i, 0); err != nil {
			return fmt.Errorf("dup pty to fd %d: %w", i, err)
		}
	}
	unix.Close(slave)
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	return nil
}

func createConsoleNode(slavePath string) error {
	fd, err := unix.Open("/dev/console", unix.O_CREAT|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EROFS) || errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("create /dev/console: %w", err)
	}
	unix.Close(fd)
	if err := unix.Mount(slavePath, "/dev/console", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s to /dev/console: %w", slavePath, err)
	}
	return nil
}

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// RlimitByName maps an OCI rlimit type to its resource number.
func RlimitByName(name string) (int, bool) {
	r, ok := rlimitNames[name]
	return r, ok
}

func setRlimits(limits []specs.POSIXRlimit) error {
	for _, l := range limits {
		res, ok := rlimitNames[l.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", l.Type)
		}
		// syscall.Setrlimit (not unix.) so the Go runtime does not restore
		// its own NOFILE value at execve.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: l.Soft, Max: l.Hard}); err != nil {
			if errors.Is(err, unix.EPERM) {
				return fmt.Errorf("set %s to soft=%d hard=%d: %w (raising a hard limit needs CAP_SYS_RESOURCE)", l.Type, l.Soft, l.Hard, err)
			}
			return fmt.Errorf("set %s to soft=%d hard=%d: %w", l.Type, l.Soft, l.Hard, err)
		}
	}
	return nil
}

// setupUser switches to the spec's user, keeping capabilities across the
// switch so that applyCapabilities decides what remains.
//
// Like keepcaps and the capability sets, the ids change for the calling
// thread only: it is the thread that execs the process (init runs locked
// to it), and execve ends the others. Go's syscall.Setresuid and friends
// change every thread instead, stopping the world and signalling each
// one, which costs init about 0.7 ms.
func setupUser(p *specs.Process) error {
	u := p.User
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("set keepcaps: %w", err)
	}
	if err := setgroupsThread(u.AdditionalGids); err != nil {
		// Without setgroups permission (user namespace with setgroups
		// denied) only an empty request may pass.
		if len(u.AdditionalGids) > 0 || !errors.Is(err, unix.EPERM) {
			return fmt.Errorf("setgroups %v: %w", u.AdditionalGids, err)
		}
	}
	if err := threadSyscall(sysSetresgid, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := threadSyscall(sysSetresuid, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keepcaps: %w", err)
	}
	return nil
}

// threadSyscall makes a credential syscall for the calling thread only.
func threadSyscall(trap, a1, a2, a3 uintptr) error {
	if _, _, errno := unix.RawSyscall(trap, a1, a2, a3); errno != 0 {
		return errno
	}
	return nil
}

// setgroupsThread sets the supplementary groups of the calling thread.
func setgroupsThread(gids []uint32) error {
	if len(gids) == 0 {
		return threadSyscall(sysSetgroups, 0, 0, 0)
	}
	if _, _, errno := unix.RawSyscall(sysSetgroups, uintptr(len(gids)), uintptr(unsafe.Pointer(&gids[0])), 0); errno != 0 {
		return errno
	}
	return nil
}

// dropBoundingSet limits the bounding set to the spec's; it must run while
// init still has CAP_SETPCAP, before the user switch.
func dropBoundingSet(c *specs.LinuxCapabilities) error {
	return setCapabilities(c, capability.BOUNDS)
}

// applyCapabilities sets the effective, permitted and inheritable sets of
// the calling thread, then raises the ambient capabilities. As in runc, an
// ambient capability that is not both permitted and inheritable cannot be
// raised and is skipped rather than failing the container.
func applyCapabilities(c *specs.LinuxCapabilities) error {
	if err := setCapabilities(c, capability.CAPS); err != nil {
		return err
	}
	if c == nil {
		return nil
	}
	if err := capability.ResetAmbient(); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("reset ambient capabilities: %w", err)
	}
	inSet := func(list []string, name string) bool {
		for _, n := range list {
			if n == name {
				return true
			}
		}
		return false
	}
	for _, n := range c.Ambient {
		cp, ok := CapabilityByName(n)
		if !ok {
			return fmt.Errorf("unknown capability %q", n)
		}
		if cp > lastCap() || !inSet(c.Permitted, n) || !inSet(c.Inheritable, n) {
			continue
		}
		if err := capability.SetAmbient(true, cp); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", n, err)
		}
	}
	return nil
}

func setCapabilities(c *specs.LinuxCapabilities, which capability.CapType) error {
	caps, err := capability.NewPid2(0)
	if err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	if err := caps.Load(); err != nil {
		return fmt.Errorf("read capabilities: %w", err)
	}
	caps.Clear(which)
	if c != nil {
		sets := []struct {
			t     capability.CapType
			names []string
		}{
			{capability.BOUNDING, c.Bounding},
			{capability.EFFECTIVE, c.Effective},
			{capability.PERMITTED, c.Permitted},
			{capability.INHERITABLE, c.Inheritable},
		}
		for _, s := range sets {
			if s.t&which == 0 {
				continue
			}
			for _, n := range s.names {
				cp, ok := CapabilityByName(n)
				if !ok {
					return fmt.Errorf("unknown capability %q", n)
				}
				if cp > lastCap() {
					continue
				}
				caps.Set(s.t, cp)
			}
		}
	}
	if err := caps.Apply(which); err != nil {
		return fmt.Errorf("apply capabilities: %w", err)
	}
	return nil
}

var capLast capability.Cap = -1

func lastCap() capability.Cap {
	if capLast < 0 {
		c, err := capability.LastCap()
		if err != nil {
			known := capability.ListKnown()
			c = known[len(known)-1]
		}
		capLast = c
	}
	return capLast
}

// CapabilityByName maps "CAP_SYS_ADMIN" to its number.
func CapabilityByName(name string) (capability.Cap, bool) {
	n := strings.ToLower(strings.TrimPrefix(name, "CAP_"))
	if !strings.HasPrefix(name, "CAP_") {
		return 0, false
	}
	for _, c := range capability.ListKnown() {
		if c.String() == n {
			return c, true
		}
	}
	return 0, false
}

// setLabels applies AppArmor and SELinux settings where the host has them.
func setLabels(p *specs.Process) error {
	if p.ApparmorProfile != "" {
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
			return fmt.Errorf("apparmor profile %q requested but AppArmor is not enabled on this host", p.ApparmorProfile)
		}
		if err := os.WriteFile("/proc/self/attr/apparmor/exec", []byte("exec "+p.ApparmorProfile), 0); err != nil {
			if err2 := os.WriteFile("/proc/self/attr/exec", []byte("exec "+p.ApparmorProfile), 0); err2 != nil {
				return fmt.Errorf("set apparmor profile %q: %w", p.ApparmorProfile, err)
			}
		}
	}
	if p.SelinuxLabel != "" {
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err != nil {
			return fmt.Errorf("selinux label %q requested but SELinux is not enabled on this host", p.SelinuxLabel)
		}
		if err := os.WriteFile("/proc/self/attr/exec", []byte(p.SelinuxLabel), 0); err != nil {
			return fmt.Errorf("set selinux label %q: %w", p.SelinuxLabel, err)
		}
	}
	return nil
}

const ioprioWhoProcess = 1

var ioprioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]int{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

// setScheduling applies the I/O priority and scheduler settings.
func setScheduling(p *specs.Process) error {
	if p.IOPriority != nil {
		class, ok := ioprioClasses[p.IOPriority.Class]
		if !ok {
			return fmt.Errorf("unknown ioPriority class %q", p.IOPriority.Class)
		}
		prio := class<<13 | p.IOPriority.Priority
		if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio)); e != 0 {
			return fmt.Errorf("set io priority: %w", e)
		}
	}
	if s := p.Scheduler; s != nil {
		policy, ok := schedPolicies[s.Policy]
		if !ok {
			return fmt.Errorf("unknown scheduler policy %q", s.Policy)
		}
		attr := unix.SchedAttr{
			Size: unix.SizeofSchedAttr, Policy: uint32(policy), Priority: uint32(s.Priority),
			Nice: s.Nice, Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
		}
		for _, f := range s.Flags {
			switch f {
			case specs.SchedFlagResetOnFork:
				attr.Flags |= unix.SCHED_FLAG_RESET_ON_FORK
			case specs.SchedFlagReclaim:
				attr.Flags |= unix.SCHED_FLAG_RECLAIM
			case specs.SchedFlagDLOverrun:
				attr.Flags |= unix.SCHED_FLAG_DL_OVERRUN
			case specs.SchedFlagKeepPolicy:
				attr.Flags |= unix.SCHED_FLAG_KEEP_POLICY
			case specs.SchedFlagKeepParams:
				attr.Flags |= unix.SCHED_FLAG_KEEP_PARAMS
			case specs.SchedFlagUtilClampMin:
				attr.Flags |= unix.SCHED_FLAG_UTIL_CLAMP_MIN
			case specs.SchedFlagUtilClampMax:
				attr.Flags |= unix.SCHED_FLAG_UTIL_CLAMP_MAX
			default:
				return fmt.Errorf("unknown scheduler flag %q", f)
			}
		}
		if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
			return fmt.Errorf("set scheduler %s: %w", s.Policy, err)
		}
	}
	return nil
}

// setPersonality applies the execution domain, just before execve.
func setPersonality(spec *specs.Spec) error {
	p := spec.Linux.Personality
	if p == nil {
		return nil
	}
	var dom uintptr
	switch p.Domain {
	case specs.PerLinux:
		dom = 0x0000
	case specs.PerLinux32:
		dom = 0x0008
	default:
		return fmt.Errorf("unknown personality domain %q", p.Domain)
	}
	if _, _, e := unix.Syscall(unix.SYS_PERSONALITY, dom, 0, 0); e != 0 {
		return fmt.Errorf("set personality %s: %w", p.Domain, e)
	}
	return nil
}

// runHooks runs hooks of one kind from inside init, with the state on stdin.
func runHooks(list []specs.Hook, kind string, cfg *Config) error {
	if len(list) == 0 {
		return nil
	}
	st := specs.State{Version: specs.Version, ID: cfg.ID, Status: specs.StateCreating, Pid: os.Getpid(), Bundle: cfg.Bundle, Annotations: cfg.Spec.Annotations}
	if cfg.HostPid > 0 {
		st.Pid = cfg.HostPid
	}
	if kind == "startContainer" {
		st.Status = specs.StateCreated
	}
	return hooks.Run(list, kind, &st)
}

func runStartContainerHooks(cfg *Config) error {
	if cfg.Spec.Hooks == nil {
		return nil
	}
	return runHooks(cfg.Spec.Hooks.StartContainer, "startContainer", cfg)
}
