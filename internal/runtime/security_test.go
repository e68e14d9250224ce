//go:build linux

package runtime_test

// Capabilities, no_new_privs, seccomp and security labels as the container
// sees them, and the runtime's own defences: a read-only binary for init,
// no leaked descriptors, paths resolved inside the rootfs.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// capMask is the /proc/<pid>/status hex mask of the named capabilities.
func capMask(t *testing.T, names ...string) string {
	t.Helper()
	nums := map[string]int{
		"CAP_CHOWN": unix.CAP_CHOWN, "CAP_KILL": unix.CAP_KILL, "CAP_NET_RAW": unix.CAP_NET_RAW,
		"CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
		"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "CAP_SETUID": unix.CAP_SETUID,
	}
	var m uint64
	for _, n := range names {
		c, ok := nums[n]
		if !ok {
			t.Fatalf("capMask: unknown %s", n)
		}
		m |= 1 << c
	}
	return fmt.Sprintf("%016x", m)
}

const capsScript = `grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status`

func TestCapabilities(t *testing.T) {
	t.Run("default-root", func(t *testing.T) {
		// As root, execve makes permitted and effective the bounding set.
		out := inside(t, capsScript+`; touch /tmp/f; echo chown=$(chown 1000 /tmp/f 2>&1 && echo ok)`, tmpfsAt("/tmp"))
		def := capMask(t, "CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
		kv := keyValues(out)
		expect(t, kv, map[string]string{"CapBnd": def, "CapPrm": def, "CapEff": def, "CapInh": capMask(t), "CapAmb": capMask(t)})
		if !strings.Contains(kv["chown"], "Operation not permitted") {
			t.Errorf("chown without CAP_CHOWN: %q, want EPERM", kv["chown"])
		}
	})
	t.Run("chown", func(t *testing.T) {
		out := inside(t, `touch /tmp/f; echo chown=$(chown 1000 /tmp/f 2>&1 && echo ok)`, tmpfsAt("/tmp"), addCaps("CAP_CHOWN"))
		expect(t, keyValues(out), map[string]string{"chown": "ok"})
	})
	t.Run("user-ambient", func(t *testing.T) {
		// As a non-root user every set stays what the spec says, and only
		// ambient capabilities survive execve into permitted/effective.
		out := inside(t, capsScript, func(s *specs.Spec) {
			s.Process.User = specs.User{UID: testutil.UserUID, GID: testutil.UserGID}
			s.Process.Capabilities = &specs.LinuxCapabilities{
				Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"},
				Effective:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
				Permitted:   []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
				Inheritable: []string{"CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"},
				Ambient:     []string{"CAP_KILL", "CAP_NET_RAW"},
			}
		})
		expect(t, keyValues(out), map[string]string{
			"CapBnd": capMask(t, "CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"),
			"CapInh": capMask(t, "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_ADMIN"),
			"CapPrm": capMask(t, "CAP_KILL", "CAP_NET_RAW"),
			"CapEff": capMask(t, "CAP_KILL", "CAP_NET_RAW"),
			"CapAmb": capMask(t, "CAP_KILL", "CAP_NET_RAW"),
		})
	})
	t.Run("none", func(t *testing.T) {
		out := inside(t, capsScript, func(s *specs.Spec) { s.Process.Capabilities = &specs.LinuxCapabilities{} })
		zero := capMask(t)
		expect(t, keyValues(out), map[string]string{"CapBnd": zero, "CapPrm": zero, "CapEff": zero, "CapInh": zero, "CapAmb": zero})
	})
}

func TestNoNewPrivileges(t *testing.T) {
	for _, nnp := range []bool{true, false} {
		t.Run(strconv.FormatBool(nnp), func(t *testing.T) {
			out := inside(t, capsScript, func(s *specs.Spec) { s.Process.NoNewPrivileges = nnp })
			want := map[bool]string{true: "1", false: "0"}[nnp]
			expect(t, keyValues(out), map[string]string{"NoNewPrivs": want})
		})
	}
}

// TestSecurityLabels: on a host without AppArmor or SELinux, asking for a
// profile or label must fail clearly rather than run the container
// unconfined.
func TestSecurityLabels(t *testing.T) {
	t.Run("apparmor", func(t *testing.T) {
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err == nil {
			t.Skip("this host has AppArmor")
		}
		b := newBox(t, func(s *specs.Spec) { s.Process.ApparmorProfile = "berth-test-profile" })
		b.runFails("apparmor", "berth-test-profile", "not enabled")
	})
	t.Run("selinux", func(t *testing.T) {
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
			t.Skip("this host has SELinux")
		}
		b := newBox(t, func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" })
		b.runFails("selinux", "system_u:system_r:container_t:s0", "not enabled")
	})
}

// ---------------------------------------------------------------------------
// Seccomp

func seccompRules(defaultAction specs.LinuxSeccompAction, rules ...specs.LinuxSyscall) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: defaultAction, Syscalls: rules}
	}
}

func TestSeccompErrno(t *testing.T) {
	etxtbsy := uint(unix.ETXTBSY)
	out := inside(t, `echo mkdir=$(mkdir /tmp/x 2>&1); echo exists=$(test -d /tmp/x && echo yes || echo no); touch /tmp/y && echo touch=ok`,
		tmpfsAt("/tmp"),
		seccompRules(specs.ActAllow, specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &etxtbsy}))
	kv := keyValues(out)
	if !strings.Contains(kv["mkdir"], "Text file busy") {
		t.Errorf("mkdir under seccomp: %q, want ETXTBSY", kv["mkdir"])
	}
	expect(t, kv, map[string]string{"exists": "no", "touch": "ok"})
}

func TestSeccompArgs(t *testing.T) {
	// chmod to exactly 0700 is refused (EPERM, the default errnoRet), other
	// modes pass.
	out := inside(t, `touch /tmp/f; echo a=$(chmod 700 /tmp/f 2>&1); echo mode=$(stat -c %a /tmp/f); chmod 755 /tmp/f && echo b=$(stat -c %a /tmp/f)`,
		tmpfsAt("/tmp"),
		seccompRules(specs.ActAllow,
			specs.LinuxSyscall{Names: []string{"chmod"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: 0o700, Op: specs.OpEqualTo}}},
			specs.LinuxSyscall{Names: []string{"fchmodat", "fchmodat2"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 2, Value: 0o700, Op: specs.OpEqualTo}}},
		))
	kv := keyValues(out)
	if !strings.Contains(kv["a"], "Operation not permitted") {
		t.Errorf("chmod 700: %q, want EPERM", kv["a"])
	}
	expect(t, kv, map[string]string{"mode": "644", "b": "755"})
}

// allSyscallsBut lists the names of this architecture's syscalls that
// libseccomp knows, except skip.
func allSyscallsBut(t *testing.T, skip ...string) []string {
	t.Helper()
	var names []string
	for nr := 0; nr < 1024; nr++ {
		name, err := libseccomp.ScmpSyscall(nr).GetName()
		if err != nil || strings.HasPrefix(name, "__") || slices.Contains(skip, name) {
			continue
		}
		names = append(names, name)
	}
	if len(names) < 100 {
		t.Fatalf("libseccomp knows only %d syscalls", len(names))
	}
	return names
}

func TestSeccompDefaultErrnoRet(t *testing.T) {
	// Everything is allowed by name except mkdir, which falls to the
	// default action: ERRNO with defaultErrnoRet EXDEV.
	exdev := uint(unix.EXDEV)
	allowed := allSyscallsBut(t, "mkdir", "mkdirat")
	out := inside(t, `echo mkdir=$(mkdir /tmp/x 2>&1); touch /tmp/y && echo touch=ok`, tmpfsAt("/tmp"), func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActErrno, DefaultErrnoRet: &exdev,
			Syscalls: []specs.LinuxSyscall{{Names: allowed, Action: specs.ActAllow}},
		}
	})
	kv := keyValues(out)
	if !strings.Contains(kv["mkdir"], "Invalid cross-device link") {
		t.Errorf("mkdir under seccomp: %q, want EXDEV (defaultErrnoRet)", kv["mkdir"])
	}
	expect(t, kv, map[string]string{"touch": "ok"})
}

// TestSeccompExec: a process exec'd into the container gets the
// container's filter too.
func TestSeccompExec(t *testing.T) {
	etxtbsy := uint(unix.ETXTBSY)
	b := newBox(t, tmpfsAt("/tmp"), func(s *specs.Spec) { s.Process.Args = []string{"sleep", "3600"} },
		seccompRules(specs.ActAllow, specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &etxtbsy}))
	b.create()
	b.must("start", b.id)
	stdout, stderr, err := b.rt("exec", b.id, "sh", "-c", `echo mkdir=$(mkdir /tmp/x 2>&1); echo NoNewPrivs=$(grep NoNewPrivs /proc/self/status | cut -f2)`)
	if err != nil {
		t.Fatalf("exec: %v\n%s", err, stderr)
	}
	kv := keyValues(stdout)
	if !strings.Contains(kv["mkdir"], "Text file busy") {
		t.Errorf("mkdir in an exec'd process: %q, want ETXTBSY from the container's filter", kv["mkdir"])
	}
	expect(t, kv, map[string]string{"NoNewPrivs": "1"})
}

func TestSeccompKillProcess(t *testing.T) {
	b := newBox(t, tmpfsAt("/tmp"), func(s *specs.Spec) { s.Process.Args = []string{"mkdir", "/tmp/x"} },
		seccompRules(specs.ActAllow, specs.LinuxSyscall{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActKillProcess}))
	stdout, stderr, code := b.run()
	if code != 128+int(unix.SIGSYS) {
		t.Errorf("run exited %d, want %d (killed by SIGSYS)\nstdout: %s\nstderr: %s", code, 128+int(unix.SIGSYS), stdout, stderr)
	}
}

// TestSeccompNotify plays the seccomp agent: it receives the container
// process state and the listener fd on listenerPath, and answers the
// container's mkdir with an error of its choosing.
func TestSeccompNotify(t *testing.T) {
	b := newBox(t, tmpfsAt("/tmp"), shell(`echo mkdir=$(mkdir /tmp/x 2>&1); echo exists=$(test -d /tmp/x && echo yes || echo no); echo after=ok`))
	sock := filepath.Join(b.root, "agent.sock")
	b.patchSpec(func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow, ListenerPath: sock, ListenerMetadata: "berth-test-metadata",
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
		}
	})
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	type agentResult struct {
		state    specs.ContainerProcessState
		syscalls []string
		err      error
	}
	res := make(chan agentResult, 1)
	go func() {
		var r agentResult
		defer func() { res <- r }()
		conn, err := l.AcceptUnix()
		if err != nil {
			r.err = err
			return
		}
		defer conn.Close()
		buf := make([]byte, 64<<10)
		oob := make([]byte, unix.CmsgSpace(4))
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			r.err = fmt.Errorf("read from runtime: %w", err)
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		if len(msgs) != 1 {
			r.err = fmt.Errorf("%d control messages, want 1", len(msgs))
			return
		}
		fds, err := unix.ParseUnixRights(&msgs[0])
		if err != nil || len(fds) != 1 {
			r.err = fmt.Errorf("want one fd: %v %v", fds, err)
			return
		}
		fd := libseccomp.ScmpFd(fds[0])
		defer unix.Close(fds[0])
		// The state may come in more than one read.
		data := buf[:n]
		for !json.Valid(data) {
			m, err := conn.Read(buf)
			if err != nil {
				r.err = fmt.Errorf("read state: %w (have %q)", err, data)
				return
			}
			data = append(data, buf[:m]...)
		}
		if err := json.Unmarshal(data, &r.state); err != nil {
			r.err = err
			return
		}
		// Answer notifications until the container is gone.
		for {
			req, err := libseccomp.NotifReceive(fd)
			if err != nil {
				return // the filter's last user exited
			}
			name, _ := req.Data.Syscall.GetName()
			r.syscalls = append(r.syscalls, name)
			if err := libseccomp.NotifRespond(fd, &libseccomp.ScmpNotifResp{ID: req.ID, Error: int32(unix.EXDEV)}); err != nil {
				r.err = fmt.Errorf("respond: %w", err)
				return
			}
		}
	}()

	kv := keyValues(b.output())
	if !strings.Contains(kv["mkdir"], "Invalid cross-device link") {
		t.Errorf("mkdir answered by the agent: %q, want EXDEV", kv["mkdir"])
	}
	expect(t, kv, map[string]string{"exists": "no", "after": "ok"})

	var r agentResult
	select {
	case r = <-res:
	case <-time.After(10 * time.Second):
		t.Fatal("the seccomp agent did not finish after the container exited")
	}
	if r.err != nil {
		t.Fatalf("agent: %v", r.err)
	}
	st := r.state
	if st.Version == "" || st.Metadata != "berth-test-metadata" || len(st.Fds) != 1 || st.Fds[0] != specs.SeccompFdName {
		t.Errorf("container process state: version %q metadata %q fds %v", st.Version, st.Metadata, st.Fds)
	}
	if st.State.ID != b.id || st.Pid <= 0 || st.State.Pid != st.Pid || st.State.Bundle != b.bundle {
		t.Errorf("state: %+v, want id %s, the init pid, bundle %s", st.State, b.id, b.bundle)
	}
	if len(r.syscalls) == 0 || !strings.HasPrefix(r.syscalls[0], "mkdir") {
		t.Errorf("the agent saw syscalls %v, want mkdir", r.syscalls)
	}
}

// patchSpec rewrites the box's config.json with mutate applied.
func (b *box) patchSpec(mutate func(*specs.Spec)) {
	b.t.Helper()
	p := filepath.Join(b.bundle, "config.json")
	data, err := os.ReadFile(p)
	if err != nil {
		b.t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		b.t.Fatal(err)
	}
	mutate(&s)
	if data, err = json.Marshal(&s); err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------
// The runtime's own defences

func fileSum(t *testing.T, p string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestInitBinaryReadOnly: the binary init executes (and, through
// /proc/<pid>/exe, anything in the container could reach while init runs)
// is not the host's berth-runtime and cannot be written (CVE-2019-5736).
func TestInitBinaryReadOnly(t *testing.T) {
	b := newBox(t)
	bin := testutil.RuntimeBinary(t)
	before := fileSum(t, bin)
	pid := b.create()
	exe := fmt.Sprintf("/proc/%d/exe", pid)
	for _, flag := range []int{os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND} {
		if f, err := os.OpenFile(exe, flag, 0); err == nil {
			f.Close()
			t.Errorf("opened init's binary %s with flags %#x for writing", exe, flag)
		}
	}
	var host, running unix.Stat_t
	if err := unix.Stat(bin, &host); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(exe, &running); err != nil {
		t.Fatal(err)
	}
	if host.Dev == running.Dev && host.Ino == running.Ino {
		t.Errorf("init executes the host's binary %s itself", bin)
	}
	if fileSum(t, bin) != before {
		t.Errorf("the host's %s changed", bin)
	}
}

func TestNoFDLeaks(t *testing.T) {
	b := newBox(t, shell(`echo fds=$(ls /proc/self/fd)`))
	// Give the runtime more descriptors of its own to leak: a log file.
	log := filepath.Join(b.root, "runtime.log")
	stdout, _, err := testutil.Runtime(t, b.root, "--log", log, "--debug", "run", "--bundle", b.bundle, b.id)
	if err != nil {
		t.Fatal(err)
	}
	// 3 is the directory ls reads.
	expect(t, keyValues(stdout), map[string]string{"fds": "0 1 2 3"})
}

// runWithFiles runs the runtime with extra descriptors from 3 on, and
// returns the container's stdout.
func runWithFiles(t *testing.T, b *box, files []*os.File, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.RuntimeTimeout)
	defer cancel()
	args := append(append([]string{"--root", b.root, "run", "--bundle", b.bundle}, flags...), b.id)
	cmd := exec.CommandContext(ctx, testutil.RuntimeBinary(t), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		t.Fatalf("run %s: %v\nstdout: %s\nstderr: %s", strings.Join(flags, " "), err, &stdout, &stderr)
	}
	return stdout.String()
}

func TestPreserveFDs(t *testing.T) {
	b := newBox(t, shell(`echo data=$(cat <&3); echo fds=$(ls /proc/self/fd)`))
	p := hostFile(t, t.TempDir(), "preserved", "preserved-content")
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Two descriptors go to the runtime, only the first is preserved.
	other, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	out := runWithFiles(t, b, []*os.File{f, other}, "--preserve-fds", "1")
	// 4 is the directory ls reads.
	expect(t, keyValues(out), map[string]string{"data": "preserved-content", "fds": "0 1 2 3 4"})
}

// TestMountDestinationSymlink: mount destinations and the cwd that go
// through symlinks in the rootfs resolve inside it, never on the host.
func TestMountDestinationSymlink(t *testing.T) {
	needRoot(t)
	t.Parallel()
	root := testutil.RootDir(t)
	var name string // a name for the host's root that cannot exist: it holds the container id
	bundle := testutil.Bundle(t, nil)
	b := boxFor(t, root, bundle)
	name = "/" + b.id
	if _, err := os.Lstat(name); err == nil {
		t.Fatalf("%s exists on the host", name)
	}
	for link, target := range map[string]string{"evil": "/", "up": "../../../../../../../../.."} {
		if err := os.Symlink(target, filepath.Join(b.rootfs(), link)); err != nil {
			t.Fatal(err)
		}
	}
	b.patchSpec(func(s *specs.Spec) {
		tmpfsAt("/evil"+name+"-abs", "size=1m")(s)
		tmpfsAt("/up"+name+"-rel", "size=1m")(s)
		bindAt(hostDir(t), "/up/evil"+name+"-bind")(s)
		s.Process.Cwd = "/evil" + name + "-cwd"
		shell(`echo cwd=$(pwd -P); grep -o " ` + name + `-[a-z]* " /proc/self/mountinfo | sort | tr -d ' ' | tr '\n' ,`)(s)
	})
	out := b.output()
	kv := keyValues(out)
	expect(t, kv, map[string]string{"cwd": name + "-cwd"})
	if want := name + "-abs," + name + "-bind," + name + "-rel,"; !strings.Contains(out, want) {
		t.Errorf("mounts in the container: %q, want %q", out, want)
	}
	for _, suffix := range []string{"-abs", "-rel", "-bind", "-cwd"} {
		if _, err := os.Lstat(name + suffix); err == nil {
			os.Remove(name + suffix)
			t.Errorf("the runtime created %s%s on the host", name, suffix)
		}
		if _, err := os.Lstat(filepath.Join(b.rootfs(), name+suffix)); err != nil {
			t.Errorf("%s%s is not in the rootfs: %v", name, suffix, err)
		}
	}
}

// TestCwdLeakedFD: a cwd of /proc/self/fd/N must not reach a host
// directory that init still holds open when it changes directory
// (CVE-2024-21626). From such a cwd, ".." climbs past the container's
// root to the host's, where a marker file waits.
func TestCwdLeakedFD(t *testing.T) {
	needRoot(t)
	marker := "/berth-cwd-escape-" + testutil.ContainerID(t)
	if err := os.WriteFile(marker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(marker) })
	for fd := 3; fd <= 12; fd++ {
		t.Run(strconv.Itoa(fd), func(t *testing.T) {
			b := newBox(t, func(s *specs.Spec) {
				s.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", fd)
				s.Process.Args = []string{"sh", "-c", `cd ../../../../../../../../..; test -e .` + marker + ` && echo escaped=yes; echo done=yes`}
			})
			stdout, stderr, code := b.run()
			if strings.Contains(stdout, "escaped=yes") {
				t.Fatalf("the process reached the host's root through cwd /proc/self/fd/%d", fd)
			}
			if code != 0 && code != 1 {
				t.Errorf("run exited %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
		})
	}
	t.Run("exec", func(t *testing.T) {
		b := newBox(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "3600"} })
		b.create()
		b.must("start", b.id)
		for fd := 3; fd <= 12; fd++ {
			stdout, _, _ := b.rt("exec", "--cwd", fmt.Sprintf("/proc/self/fd/%d", fd), b.id,
				"sh", "-c", `cd ../../../../../../../../..; test -e .`+marker+` && echo escaped=yes`)
			if strings.Contains(stdout, "escaped=yes") {
				t.Errorf("an exec'd process reached the host's root through cwd /proc/self/fd/%d", fd)
			}
		}
	})
}

// TestMountIntoProc: mounts over entries of /proc are refused, directly
// or through a symlink the image planted where a volume goes (CVE-2019-
// 19921: a tmpfs over /proc/self/attr defeats LSM profiles), except the
// files lxcfs emulates; /proc itself takes only procfs.
func TestMountIntoProc(t *testing.T) {
	t.Run("direct", func(t *testing.T) {
		newBox(t, tmpfsAt("/proc/sys/kernel")).runFails("/proc/sys/kernel", "/proc")
	})
	t.Run("symlink", func(t *testing.T) {
		b := newBox(t, tmpfsAt("/vol"))
		if err := os.Symlink("/proc/self/attr", filepath.Join(b.rootfs(), "vol")); err != nil {
			t.Fatal(err)
		}
		b.runFails("/vol", "/proc")
	})
	t.Run("not-proc-on-proc", func(t *testing.T) {
		newBox(t, tmpfsAt("/proc")).runFails("/proc", "proc")
	})
	t.Run("lxcfs-file", func(t *testing.T) {
		up := hostFile(t, hostDir(t), "uptime", "12345.67 1.00\n")
		out := inside(t, `echo uptime=$(cat /proc/uptime)`, bindAt(up, "/proc/uptime"))
		expect(t, keyValues(out), map[string]string{"uptime": "12345.67 1.00"})
	})
}

// TestSymlinkedProcRefused: a rootfs whose /proc or /sys is a symlink
// could point the kernel filesystems somewhere the runtime later writes
// (masked and read-only paths, sysctls): it is refused.
func TestSymlinkedProcRefused(t *testing.T) {
	for _, dir := range []string{"proc", "sys"} {
		t.Run(dir, func(t *testing.T) {
			b := newBox(t)
			p := filepath.Join(b.rootfs(), dir)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/tmp", p); err != nil {
				t.Fatal(err)
			}
			b.runFails("/"+dir, "symlink")
		})
	}
}

// TestDevNullSymlink: a rootfs whose /dev/null is a symlink to a host
// file (and whose /dev is not a tmpfs) must not let the runtime touch
// that file: it refuses, or makes its node inside the rootfs.
func TestDevNullSymlink(t *testing.T) {
	for name, relative := range map[string]bool{"absolute": false, "relative": true} {
		t.Run(name, func(t *testing.T) {
			b := newBox(t, func(s *specs.Spec) {
				var mounts []specs.Mount
				for _, m := range s.Mounts {
					if !strings.HasPrefix(m.Destination, "/dev") {
						mounts = append(mounts, m)
					}
				}
				s.Mounts = mounts
			}, shell(`stat -c "null=%F %t:%T" /dev/null; echo x > /dev/null`))
			secret := hostFile(t, t.TempDir(), "secret", "host-secret")
			if err := os.Chmod(secret, 0o600); err != nil {
				t.Fatal(err)
			}
			target := secret
			if relative {
				target = "../../../../../../../../.." + secret
			}
			if err := os.Symlink(target, filepath.Join(b.rootfs(), "dev/null")); err != nil {
				t.Fatal(err)
			}
			stdout, stderr, code := b.run()
			switch code {
			case 0:
				expect(t, keyValues(stdout), map[string]string{"null": "character special file 1:3"})
			case 1:
				if !strings.Contains(stderr, "/dev/null") || !strings.Contains(stderr, "symlink") {
					t.Errorf("run failed without saying why: %s", stderr)
				}
			default:
				t.Errorf("run exited %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
			}
			fi, err := os.Stat(secret)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := os.ReadFile(secret)
			st := fi.Sys().(*syscall.Stat_t)
			if string(data) != "host-secret" || fi.Mode() != 0o600 || st.Uid != 0 || st.Gid != 0 {
				t.Errorf("the host file changed: %q mode %v owner %d:%d", data, fi.Mode(), st.Uid, st.Gid)
			}
		})
	}
}
