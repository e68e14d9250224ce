//go:build linux

package runtime_test

// These tests observe the effect of each config.json field from inside the
// container (what its process sees) and, where it applies, from the host.
// container_test.go holds the helpers and the namespace, root filesystem
// and process tests; security_test.go the capabilities, seccomp, labels and
// the runtime's own defences; cgroups_test.go the resources.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// box is one container under test: its state root, id and bundle. Every
// box is deleted (--force) when its test ends, and checked for leaked
// mounts, cgroups and processes after that.
type box struct {
	t      *testing.T
	root   string
	id     string
	bundle string
}

// newBox skips the test unless it runs as root, marks it parallel, and
// makes a bundle from testutil.BundleSpec changed by mutates, in order.
func newBox(t *testing.T, mutates ...func(*specs.Spec)) *box {
	t.Helper()
	needRoot(t)
	t.Parallel()
	root := testutil.RootDir(t)
	bundle := testutil.Bundle(t, func(s *specs.Spec) {
		for _, m := range mutates {
			m(s)
		}
	})
	return boxFor(t, root, bundle)
}

// boxFor names a new container of bundle under root and registers its
// removal and leak check.
func boxFor(t *testing.T, root, bundle string) *box {
	t.Helper()
	id := testutil.ContainerID(t)
	testutil.CheckNoLeaks(t, id, bundle)
	t.Cleanup(func() {
		if _, _, err := testutil.Runtime(t, root, "delete", "--force", id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return &box{t: t, root: root, id: id, bundle: bundle}
}

// addCaps adds capabilities to the bounding, effective and permitted sets
// of the process.
func addCaps(names ...string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		c := s.Process.Capabilities
		c.Bounding = append(c.Bounding, names...)
		c.Effective = append(c.Effective, names...)
		c.Permitted = append(c.Permitted, names...)
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests need root (make test runs as root)")
	}
}

// rootfs is the bundle's root filesystem on the host.
func (b *box) rootfs() string { return filepath.Join(b.bundle, "rootfs") }

// rt runs the runtime under the box's state root.
func (b *box) rt(args ...string) (stdout, stderr string, err error) {
	b.t.Helper()
	return testutil.Runtime(b.t, b.root, args...)
}

// run runs the container in the foreground ("run") with the extra flags
// and returns what it printed and its exit code. A runtime that times out
// or cannot be started fails the test.
func (b *box) run(flags ...string) (stdout, stderr string, code int) {
	b.t.Helper()
	args := append(append([]string{"run", "--bundle", b.bundle}, flags...), b.id)
	stdout, stderr, err := b.rt(args...)
	code = codeOf(err)
	if code < 0 {
		b.t.Fatalf("%v", err)
	}
	return stdout, stderr, code
}

// output runs the container and fails the test unless it exits 0; it
// returns the container's stdout.
func (b *box) output(flags ...string) string {
	b.t.Helper()
	stdout, stderr, code := b.run(flags...)
	if code != 0 {
		b.t.Fatalf("run exited %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	return stdout
}

// runFails runs the container, fails the test unless the runtime exits 1
// (its own failure, not the container's) with every one of want in its
// stderr, and returns stderr.
func (b *box) runFails(want ...string) string {
	b.t.Helper()
	stdout, stderr, code := b.run()
	if code != 1 {
		b.t.Fatalf("run exited %d, want the runtime to fail with 1\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, w := range want {
		if !strings.Contains(stderr, w) {
			b.t.Errorf("run: stderr %q does not contain %q", stderr, w)
		}
	}
	return stderr
}

// create creates the container with the extra flags and returns its init
// process's host pid.
func (b *box) create(flags ...string) int {
	b.t.Helper()
	pidFile := filepath.Join(b.root, b.id+".pid")
	args := append(append([]string{"create", "--bundle", b.bundle, "--pid-file", pidFile}, flags...), b.id)
	if _, _, err := b.rt(args...); err != nil {
		b.t.Fatal(err)
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		b.t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		b.t.Fatalf("pid file holds %q", data)
	}
	return pid
}

// must runs the runtime with args and fails the test if it fails; it
// returns stdout.
func (b *box) must(args ...string) string {
	b.t.Helper()
	out, _, err := b.rt(args...)
	if err != nil {
		b.t.Fatal(err)
	}
	return out
}

// codeOf is the exit code in a testutil.Runtime error: 0 for nil, -1 when
// the runtime did not exit by itself (timeout, failure to start).
func codeOf(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return ee.ExitCode()
	}
	return -1
}

// shell makes the container's process `sh -c script`.
func shell(script string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = []string{"sh", "-c", script} }
}

// inside runs script with sh in a new container of the default test spec
// changed by mutates and returns its stdout; it fails the test unless the
// script exits 0.
func inside(t *testing.T, script string, mutates ...func(*specs.Spec)) string {
	t.Helper()
	return newBox(t, append(mutates, shell(script))...).output()
}

// rwRoot makes the container's root filesystem writable.
func rwRoot(s *specs.Spec) { s.Root.Readonly = false }

// tmpfsAt mounts a fresh tmpfs at dest in the container.
func tmpfsAt(dest string, options ...string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: options})
	}
}

// bindAt bind mounts the host path src at dest with the given options
// ("bind" is added unless "rbind" is there).
func bindAt(src, dest string, options ...string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		if !slices.Contains(options, "rbind") {
			options = append([]string{"bind"}, options...)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dest, Type: "bind", Source: src, Options: options})
	}
}

// keyValues parses "key: value" or "key=value" lines (the first separator
// wins) into a map; later keys overwrite earlier ones.
func keyValues(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		i := strings.IndexAny(line, ":=")
		if i < 0 {
			continue
		}
		m[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return m
}

// expect fails the test for each key of want whose value in got differs.
func expect(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for k, w := range want {
		if g, ok := got[k]; !ok {
			t.Errorf("%s: missing from the container's output", k)
		} else if g != w {
			t.Errorf("%s = %q, want %q", k, g, w)
		}
	}
}

// hostFile makes a file at dir/name with data and returns its path.
func hostFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// hostDir makes a new directory, mode 0755, removed after the test.
func hostDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// nsLink is the namespace identity of kind ("net", "time_for_children")
// for pid ("self" for the test process).
func nsLink(t *testing.T, pid any, kind string) string {
	t.Helper()
	l, err := os.Readlink(fmt.Sprintf("/proc/%v/ns/%s", pid, kind))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func haveNamespace(kind string) bool {
	_, err := os.Stat("/proc/self/ns/" + kind)
	return err == nil
}

func addNamespace(typ specs.LinuxNamespaceType, path string) func(*specs.Spec) {
	return func(s *specs.Spec) {
		for i := range s.Linux.Namespaces {
			if s.Linux.Namespaces[i].Type == typ {
				s.Linux.Namespaces[i].Path = path
				return
			}
		}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
	}
}

// ---------------------------------------------------------------------------
// Namespaces

func TestNamespacePID(t *testing.T) {
	out := inside(t, `echo pid=$$; echo ppid=$PPID; echo pids=$(ls /proc | grep '^[0-9]')`)
	kv := keyValues(out)
	expect(t, kv, map[string]string{"pid": "1", "ppid": "0"})
	// Only sh (1) and the few processes of the pipeline are visible, none
	// of the host's, such as this test; how many of the pipeline's are
	// still there when ls reads /proc depends on timing.
	pids := strings.Fields(kv["pids"])
	if !slices.Contains(pids, "1") || len(pids) > 4 || slices.Contains(pids, strconv.Itoa(os.Getpid())) {
		t.Errorf("the container's /proc lists pids %v, want 1 and at most 3 others of its own:\n%s", pids, out)
	}
}

// TestExecFailureLeavesNoZombie: an exec that fails in init leaves
// nothing in the container's pid namespace, not even a zombie (which
// would hold up the namespace's init when it is killed).
func TestExecFailureLeavesNoZombie(t *testing.T) {
	b := newBox(t, func(s *specs.Spec) { s.Process.Args = []string{"sleep", "3600"} })
	b.create()
	b.must("start", b.id)
	if _, _, err := b.rt("exec", "--cwd", "/no/such/dir", b.id, "true"); err == nil {
		t.Fatal("exec with a missing cwd succeeded")
	}
	out := b.must("exec", b.id, "sh", "-c", `for p in /proc/[0-9]*/stat; do read l < $p && echo "$l"; done`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if i := strings.LastIndex(line, ") "); i > 0 && strings.HasPrefix(line[i+2:], "Z") {
			t.Errorf("zombie in the container's pid namespace: %s", line)
		}
	}
}

func TestNamespaceNet(t *testing.T) {
	out := inside(t, `echo links=$(ls /sys/class/net); echo flags=$(cat /sys/class/net/lo/flags); echo net=$(readlink /proc/self/ns/net)`)
	kv := keyValues(out)
	expect(t, kv, map[string]string{"links": "lo"})
	if kv["net"] == nsLink(t, "self", "net") {
		t.Errorf("the container is in the host's network namespace")
	}
	flags, err := strconv.ParseUint(strings.TrimPrefix(kv["flags"], "0x"), 16, 32)
	if err != nil || flags&unix.IFF_UP == 0 {
		t.Errorf("lo flags %q: lo is not up", kv["flags"])
	}
}

func TestNamespaceIPC(t *testing.T) {
	needRoot(t)
	// A System V segment of the host is not visible in the container.
	key := int(time.Now().UnixNano()&0x3fffffff) | 0x40000000
	shmid, err := unix.SysvShmGet(key, 4096, unix.IPC_CREAT|0o600)
	if err != nil {
		t.Fatalf("make host shm segment: %v", err)
	}
	t.Cleanup(func() { unix.SysvShmCtl(shmid, unix.IPC_RMID, nil) })
	hostShm, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil || !listsKey(string(hostShm), key) {
		t.Fatalf("the host's /proc/sysvipc/shm does not list key %d: %v\n%s", key, err, hostShm)
	}
	out := inside(t, `cat /proc/sysvipc/shm; echo lines=$(wc -l < /proc/sysvipc/shm)`)
	if listsKey(out, key) {
		t.Errorf("the container sees the host's shm segment %d:\n%s", key, out)
	}
	expect(t, keyValues(out), map[string]string{"lines": "1"}) // only the header
}

// listsKey reports whether a /proc/sysvipc table lists key.
func listsKey(table string, key int) bool {
	for _, l := range strings.Split(table, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == strconv.Itoa(key) {
			return true
		}
	}
	return false
}

func TestNamespaceUTS(t *testing.T) {
	hostName, _ := os.Hostname()
	hostDomain, _ := os.ReadFile("/proc/sys/kernel/domainname")
	out := inside(t, `echo host=$(hostname); echo domain=$(cat /proc/sys/kernel/domainname)`, func(s *specs.Spec) {
		s.Hostname = "box-host"
		s.Domainname = "box.example"
	})
	expect(t, keyValues(out), map[string]string{"host": "box-host", "domain": "box.example"})
	if h, _ := os.Hostname(); h != hostName {
		t.Errorf("host's hostname changed from %q to %q", hostName, h)
	}
	if d, _ := os.ReadFile("/proc/sys/kernel/domainname"); string(d) != string(hostDomain) {
		t.Errorf("host's domainname changed from %q to %q", hostDomain, d)
	}
}

func TestNamespaceCgroup(t *testing.T) {
	out := inside(t, `cat /proc/self/cgroup`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) == 0 {
		t.Fatal("empty /proc/self/cgroup")
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, ":/") {
			t.Errorf("in a cgroup namespace every hierarchy should show the root, got %q", l)
		}
	}
}

func TestNamespaceTime(t *testing.T) {
	if !haveNamespace("time") {
		t.Skip("kernel without time namespaces (CONFIG_TIME_NS)")
	}
	const boot, mono = 1_000_000, 2_000_000
	before := hostUptime(t)
	out := inside(t, `echo uptime=$(cut -d' ' -f1 /proc/uptime); cat /proc/self/timens_offsets`, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
			"boottime":  {Secs: boot, Nanosecs: 0},
			"monotonic": {Secs: mono, Nanosecs: 500},
		}
	})
	after := hostUptime(t)
	kv := keyValues(out)
	up, err := strconv.ParseFloat(kv["uptime"], 64)
	if err != nil {
		t.Fatalf("uptime %q: %v\n%s", kv["uptime"], err, out)
	}
	if up < before+boot || up > after+boot+1 {
		t.Errorf("uptime in the container is %.2f, want the host's (%.2f..%.2f) + %d", up, before, after, boot)
	}
	fields := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			fields[f[0]] = f[1] + " " + f[2]
		}
	}
	if fields["monotonic"] != "2000000 500" || fields["boottime"] != "1000000 0" {
		t.Errorf("timens_offsets = %v, want monotonic 2000000 500 and boottime 1000000 0", fields)
	}
}

func hostUptime(t *testing.T) float64 {
	t.Helper()
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.Fields(string(data))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestNamespacesFromHost checks from the host that the created init
// process is in new namespaces of every kind the spec asks for.
func TestNamespacesFromHost(t *testing.T) {
	b := newBox(t, func(s *specs.Spec) {
		if haveNamespace("time") {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		}
	})
	pid := b.create()
	kinds := []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"}
	if haveNamespace("time") {
		// init makes the time namespace that its execve enters.
		kinds = append(kinds, "time_for_children")
	}
	for _, k := range kinds {
		if nsLink(t, pid, k) == nsLink(t, "self", k) {
			t.Errorf("init shares the host's %s namespace", k)
		}
	}
	if nsLink(t, pid, "user") != nsLink(t, "self", "user") {
		t.Errorf("init is in a new user namespace the spec did not ask for")
	}
	// The container's mounts stay in its namespace.
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), b.rootfs()) {
		t.Errorf("the host sees a mount under the container's rootfs:\n%s", mi)
	}
}

const userNSHostID = 100000

// userNS gives the container a user namespace mapping 0..65535 to
// userNSHostID.. on the host.
func userNS(s *specs.Spec) {
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: userNSHostID, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: userNSHostID, Size: 65536}}
}

// ownRootfsForUserNS lets the container's root (host uid userNSHostID)
// reach the box's rootfs, and owns its top directory so that it can make
// mount points.
func ownRootfsForUserNS(t *testing.T, b *box) {
	t.Helper()
	for d := filepath.Dir(b.bundle); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(b.rootfs(), userNSHostID, userNSHostID); err != nil {
		t.Fatal(err)
	}
}

// checkOwner fails the test unless the host file p is owned by uid:gid.
func checkOwner(t *testing.T, p string, uid, gid uint32) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatalf("the container's file is not on the host: %v", err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != uid || sys.Gid != gid {
		t.Errorf("%s is owned by %d:%d on the host, want %d:%d", p, sys.Uid, sys.Gid, uid, gid)
	}
}

func TestNamespaceUser(t *testing.T) {
	if !haveNamespace("user") {
		t.Skip("kernel without user namespaces")
	}
	t.Run("run", func(t *testing.T) {
		needRoot(t)
		data := hostDir(t)
		if err := os.Chown(data, userNSHostID, userNSHostID); err != nil {
			t.Fatal(err)
		}
		b := newBox(t, userNS, addCaps("CAP_CHOWN"), bindAt(data, "/data"), shell(`echo uidmap=$(cat /proc/self/uid_map); echo gidmap=$(cat /proc/self/gid_map); echo uid=$(id -u)
echo userns=$(readlink /proc/self/ns/user); touch /data/by-root && chown 1000:1000 /data/by-root && echo chown=ok`))
		ownRootfsForUserNS(t, b)
		kv := keyValues(b.output())
		expect(t, kv, map[string]string{"uidmap": "0 100000 65536", "gidmap": "0 100000 65536", "uid": "0", "chown": "ok"})
		if kv["userns"] == nsLink(t, "self", "user") {
			t.Errorf("the container is in the host's user namespace")
		}
		// Chowned to 1000:1000 in the container.
		checkOwner(t, filepath.Join(data, "by-root"), userNSHostID+1000, userNSHostID+1000)
	})
	t.Run("exec", func(t *testing.T) {
		needRoot(t)
		data := hostDir(t)
		if err := os.Chown(data, userNSHostID+1000, userNSHostID+1000); err != nil {
			t.Fatal(err)
		}
		b := newBox(t, userNS, bindAt(data, "/data"), func(s *specs.Spec) { s.Process.Args = []string{"sleep", "3600"} })
		ownRootfsForUserNS(t, b)
		pid := b.create()
		b.must("start", b.id)
		out, stderr, err := b.rt("exec", "--user", "1000:1000", b.id, "sh", "-c", `echo uid=$(id -u); echo userns=$(readlink /proc/self/ns/user); touch /data/by-exec && echo touch=ok`)
		if err != nil {
			t.Fatalf("exec: %v\n%s", err, stderr)
		}
		expect(t, keyValues(out), map[string]string{"uid": "1000", "userns": nsLink(t, pid, "user"), "touch": "ok"})
		checkOwner(t, filepath.Join(data, "by-exec"), userNSHostID+1000, userNSHostID+1000)
	})
	t.Run("join", func(t *testing.T) {
		a := newBox(t, userNS)
		ownRootfsForUserNS(t, a)
		pid := a.create()
		b := boxFor(t, a.root, testutil.Bundle(t, func(s *specs.Spec) {
			addNamespace(specs.UserNamespace, fmt.Sprintf("/proc/%d/ns/user", pid))(s)
			shell(`echo uidmap=$(cat /proc/self/uid_map); echo uid=$(id -u); echo host=$(hostname); echo userns=$(readlink /proc/self/ns/user)`)(s)
		}))
		ownRootfsForUserNS(t, b)
		expect(t, keyValues(b.output()), map[string]string{"uidmap": "0 100000 65536", "uid": "0", "host": "berth", "userns": nsLink(t, pid, "user")})
	})
}

// inNetns calls f on a thread that is in the network namespace at path.
func inNetns(path string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(orig)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(target)
		if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		err = f()
		// A thread that cannot go back ends with this goroutine.
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			goruntime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// setLoopbackMTU sets the MTU of lo in the network namespace at path: a
// mark by which a container that joins it can recognise it.
func setLoopbackMTU(path string, mtu int) error {
	return inNetns(path, func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifr, err := unix.NewIfreq("lo")
		if err != nil {
			return err
		}
		ifr.SetUint32(uint32(mtu))
		return unix.IoctlIfreq(fd, unix.SIOCSIFMTU, ifr)
	})
}

// namedNetns makes a network namespace pinned by a bind mount on a file,
// as `ip netns add` does, and returns the file; it is removed after the
// test.
func namedNetns(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "netns")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// This thread never leaves the new namespace: it dies with the
		// goroutine (it stays locked).
		goruntime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- unix.Mount("/proc/thread-self/ns/net", p, "", unix.MS_BIND, "")
	}()
	if err := <-done; err != nil {
		t.Fatalf("make network namespace: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			t.Errorf("remove network namespace %s: %v", p, err)
		}
	})
	return p
}

// TestNamespaceJoinPath joins existing namespaces by path: those of
// another container's init (/proc/<pid>/ns/...) and a pinned one.
func TestNamespaceJoinPath(t *testing.T) {
	t.Run("container", func(t *testing.T) {
		a := newBox(t, func(s *specs.Spec) { s.Hostname = "alpha" })
		pid := a.create()
		netPath := fmt.Sprintf("/proc/%d/ns/net", pid)
		if err := setLoopbackMTU(netPath, 1234); err != nil {
			t.Fatalf("mark the first container's network namespace: %v", err)
		}
		b := boxFor(t, a.root, testutil.Bundle(t, func(s *specs.Spec) {
			s.Hostname = "" // joining a UTS namespace: its hostname is the first container's
			addNamespace(specs.NetworkNamespace, netPath)(s)
			addNamespace(specs.UTSNamespace, fmt.Sprintf("/proc/%d/ns/uts", pid))(s)
			shell(`echo pid=$$; echo host=$(hostname); echo mtu=$(cat /sys/class/net/lo/mtu); echo net=$(readlink /proc/self/ns/net); echo ipc=$(readlink /proc/self/ns/ipc)`)(s)
		}))
		kv := keyValues(b.output())
		expect(t, kv, map[string]string{"pid": "1", "host": "alpha", "mtu": "1234", "net": nsLink(t, pid, "net")})
		if kv["ipc"] == nsLink(t, pid, "ipc") || kv["ipc"] == nsLink(t, "self", "ipc") {
			t.Errorf("the second container's IPC namespace (%s) is not a new one", kv["ipc"])
		}
	})
	t.Run("pid", func(t *testing.T) {
		// The second container's process lives in the first one's pid
		// namespace: it is not pid 1 there, and sees the first's init.
		a := newBox(t)
		pid := a.create()
		b := boxFor(t, a.root, testutil.Bundle(t, func(s *specs.Spec) {
			addNamespace(specs.PIDNamespace, fmt.Sprintf("/proc/%d/ns/pid", pid))(s)
			shell(`echo pid=$$; echo init=$(tr '\0' ' ' < /proc/1/cmdline); echo pidns=$(readlink /proc/self/ns/pid)`)(s)
		}))
		kv := keyValues(b.output())
		if kv["pid"] == "1" || kv["pid"] == "" {
			t.Errorf("the joining process has pid %q in the shared namespace", kv["pid"])
		}
		expect(t, kv, map[string]string{"init": "berth-runtime init", "pidns": nsLink(t, pid, "pid")})
	})
	t.Run("pinned", func(t *testing.T) {
		needRoot(t)
		p := namedNetns(t)
		if err := setLoopbackMTU(p, 4321); err != nil {
			t.Fatal(err)
		}
		// Only the network namespace is joined: init enters it itself,
		// clone makes the rest; the sysctls land in the joined namespace.
		out := inside(t, `echo pid=$$; echo mtu=$(cat /sys/class/net/lo/mtu); echo links=$(ls /sys/class/net); echo net=$(readlink /proc/self/ns/net); echo port=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)`,
			addNamespace(specs.NetworkNamespace, p), func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{"net.ipv4.ip_unprivileged_port_start": "77"}
			})
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			t.Fatal(err)
		}
		expect(t, keyValues(out), map[string]string{"pid": "1", "mtu": "4321", "links": "lo", "net": fmt.Sprintf("net:[%d]", st.Ino), "port": "77"})
	})
}

// TestSessionKeyring: each container gets a session keyring of its own
// (named after it, as runc does) unless --no-new-keyring.
func TestSessionKeyring(t *testing.T) {
	unmaskKeys := func(s *specs.Spec) {
		s.Linux.MaskedPaths = slices.DeleteFunc(s.Linux.MaskedPaths, func(p string) bool { return p == "/proc/keys" })
	}
	t.Run("new", func(t *testing.T) {
		b := newBox(t, unmaskKeys, shell(`cat /proc/keys`))
		if out := b.output(); !strings.Contains(out, "_ses."+b.id) {
			t.Errorf("no session keyring _ses.%s in /proc/keys:\n%s", b.id, out)
		}
	})
	t.Run("no-new-keyring", func(t *testing.T) {
		b := newBox(t, unmaskKeys, shell(`cat /proc/keys`))
		if out := b.output("--no-new-keyring"); strings.Contains(out, "_ses."+b.id) {
			t.Errorf("--no-new-keyring: the container has its own keyring:\n%s", out)
		}
	})
}

// ---------------------------------------------------------------------------
// Root filesystem

// mountInfo is one line of /proc/<pid>/mountinfo.
type mountInfo struct {
	id, parent     int
	root, point    string
	opts, optional []string
	fstype, source string
	super          []string
}

func parseMountinfo(t *testing.T, text string) []mountInfo {
	t.Helper()
	var out []mountInfo
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if len(f) < 10 || sep < 6 || sep+3 >= len(f) {
			continue
		}
		id, _ := strconv.Atoi(f[0])
		parent, _ := strconv.Atoi(f[1])
		out = append(out, mountInfo{
			id: id, parent: parent, root: f[3], point: f[4], opts: strings.Split(f[5], ","), optional: f[6:sep],
			fstype: f[sep+1], source: f[sep+2], super: strings.Split(f[sep+3], ","),
		})
	}
	if len(out) == 0 {
		t.Fatalf("no mounts in %q", text)
	}
	return out
}

// lastMount is the last (topmost) mount at point, and its index.
func lastMount(ms []mountInfo, point string) (mountInfo, int) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].point == point {
			return ms[i], i
		}
	}
	return mountInfo{}, -1
}

// checkMount fails the test unless a mount at point exists with fstype
// and every option of opts (mount options) and super (superblock options).
func checkMount(t *testing.T, ms []mountInfo, point, fstype string, opts, super []string) mountInfo {
	t.Helper()
	m, i := lastMount(ms, point)
	if i < 0 {
		t.Errorf("no mount at %s", point)
		return m
	}
	if fstype != "" && m.fstype != fstype {
		t.Errorf("%s is %s, want %s", point, m.fstype, fstype)
	}
	for _, o := range opts {
		if !slices.Contains(m.opts, o) {
			t.Errorf("%s: mount options %v lack %q", point, m.opts, o)
		}
	}
	for _, o := range super {
		if !slices.Contains(m.super, o) {
			t.Errorf("%s: superblock options %v lack %q", point, m.super, o)
		}
	}
	return m
}

// hostMount mounts a tmpfs at dir on the host, unmounted after the test.
func hostMount(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
}

func TestMounts(t *testing.T) {
	needRoot(t)
	a := hostDir(t)
	hostFile(t, a, "marker", "from-a")
	b := hostDir(t)
	hostMount(t, filepath.Join(b, "sub"))
	hostFile(t, b, "sub/marker", "from-sub")
	out := inside(t, `cat /proc/self/mountinfo; echo ---
echo tmpfs-mode=$(stat -c %a /mnt/t)
echo bind=$(cat /mnt/t/bind/marker)
echo rbind-sub=$(cat /mnt/rbind/sub/marker)
echo bind-sub=$(ls /mnt/bind/sub | wc -l)
echo ro=$(touch /mnt/ro/x 2>&1)
echo shm-mode=$(stat -c %a /dev/shm)
touch /mnt/t/bind/written && echo rw=ok`,
		tmpfsAt("/mnt/t", "size=1m", "mode=0700", "nosuid", "nodev", "noexec"),
		bindAt(a, "/mnt/t/bind"), // inside the tmpfs: the mounts happen in order
		bindAt(a, "/mnt/ro", "ro"),
		bindAt(b, "/mnt/rbind", "rbind"),
		bindAt(b, "/mnt/bind"),
	)
	mi, rest, _ := strings.Cut(out, "---\n")
	kv := keyValues(rest)
	expect(t, kv, map[string]string{"tmpfs-mode": "700", "bind": "from-a", "rbind-sub": "from-sub", "bind-sub": "0", "rw": "ok", "shm-mode": "1777"})
	if !strings.Contains(kv["ro"], "Read-only file system") {
		t.Errorf("writing to the ro bind mount: %q, want a read-only file system error", kv["ro"])
	}
	if _, err := os.Stat(filepath.Join(a, "written")); err != nil {
		t.Errorf("the file written through the bind mount is not on the host: %v", err)
	}
	if err := os.WriteFile(filepath.Join(a, "host-still-rw"), nil, 0o644); err != nil {
		t.Errorf("the ro bind mount made the host's directory read-only: %v", err)
	}

	ms := parseMountinfo(t, mi)
	tm := checkMount(t, ms, "/mnt/t", "tmpfs", []string{"nosuid", "nodev", "noexec"}, []string{"size=1024k", "mode=700"})
	bm, bi := lastMount(ms, "/mnt/t/bind")
	if _, ti := lastMount(ms, "/mnt/t"); bi < ti || bm.parent != tm.id {
		t.Errorf("the bind mount on /mnt/t/bind (parent %d) is not on top of the tmpfs /mnt/t (id %d)", bm.parent, tm.id)
	}
	checkMount(t, ms, "/mnt/ro", "", []string{"ro"}, nil)
	checkMount(t, ms, "/mnt/rbind/sub", "tmpfs", nil, nil)
	if _, i := lastMount(ms, "/mnt/bind/sub"); i >= 0 {
		t.Errorf("a non-recursive bind mount brought the submount along")
	}

	// The default spec's mounts.
	checkMount(t, ms, "/", "", []string{"ro"}, nil)
	checkMount(t, ms, "/proc", "proc", nil, nil)
	checkMount(t, ms, "/dev", "tmpfs", []string{"nosuid"}, []string{"mode=755", "size=65536k"})
	checkMount(t, ms, "/dev/pts", "devpts", []string{"nosuid", "noexec"}, []string{"gid=5", "mode=620", "ptmxmode=666"})
	checkMount(t, ms, "/dev/shm", "tmpfs", []string{"nosuid", "nodev", "noexec"}, []string{"size=65536k"})
	checkMount(t, ms, "/dev/mqueue", "mqueue", []string{"nosuid", "nodev", "noexec"}, nil)
	checkMount(t, ms, "/sys", "sysfs", []string{"ro", "nosuid", "nodev", "noexec"}, nil)
	checkMount(t, ms, "/sys/fs/cgroup", "", []string{"ro", "nosuid", "nodev", "noexec"}, nil)
	for _, m := range ms {
		if strings.HasPrefix(m.point, "/sys/fs/cgroup/") && !slices.Contains(m.opts, "ro") {
			t.Errorf("cgroup mount %s is writable: %v", m.point, m.opts)
		}
	}
	// Nothing of the host's tree is left above the container's root.
	if root := ms[0]; root.point != "/" {
		t.Errorf("the first mount is %s, want the rootfs at /", root.point)
	}
}

// TestMountOptions checks options beyond the plain flags: a bind mount of
// a file, nosymfollow, and rro (read-only applied to submounts too, where
// ro leaves them writable).
func TestMountOptions(t *testing.T) {
	needRoot(t)
	a := hostDir(t)
	hostFile(t, a, "marker", "from-a")
	if err := os.Symlink("marker", filepath.Join(a, "link")); err != nil {
		t.Fatal(err)
	}
	file := hostFile(t, hostDir(t), "file", "a-file")
	b := hostDir(t)
	hostMount(t, filepath.Join(b, "sub"))
	out := inside(t, `echo file=$(cat /etc/berth-file); echo nosym=$(cat /mnt/nosym/link 2>&1); echo sym=$(cat /mnt/sym/link)
echo rro=$(touch /mnt/rro/sub/x 2>&1); echo ro=$(touch /mnt/ro/sub/x 2>&1 && echo ok); echo ro-top=$(touch /mnt/ro/x 2>&1)
grep -E ' /mnt/(nosym|rro/sub) ' /proc/self/mountinfo`,
		bindAt(file, "/etc/berth-file", "ro"),
		bindAt(a, "/mnt/nosym", "nosymfollow"),
		bindAt(a, "/mnt/sym"),
		bindAt(b, "/mnt/rro", "rbind", "rro"),
		bindAt(b, "/mnt/ro", "rbind", "ro"),
	)
	kv := keyValues(out)
	expect(t, kv, map[string]string{"file": "a-file", "sym": "from-a", "ro": "ok"})
	if !strings.Contains(kv["nosym"], "link") || strings.Contains(kv["nosym"], "from-a") {
		t.Errorf("following a symlink on a nosymfollow mount: %q, want ELOOP", kv["nosym"])
	}
	for _, k := range []string{"rro", "ro-top"} {
		if !strings.Contains(kv[k], "Read-only file system") {
			t.Errorf("%s: %q, want EROFS", k, kv[k])
		}
	}
	ms := parseMountinfo(t, out[strings.Index(out, "\n")+1:])
	checkMount(t, ms, "/mnt/nosym", "", []string{"nosymfollow"}, nil)
	checkMount(t, ms, "/mnt/rro/sub", "tmpfs", []string{"ro"}, nil)
}

// TestTmpcopyup: a tmpfs with tmpcopyup starts with the content of the
// directory it covers, and writing to it does not reach the rootfs.
func TestTmpcopyup(t *testing.T) {
	b := newBox(t, tmpfsAt("/etc", "tmpcopyup", "mode=755"), shell(`echo passwd=$(grep -c '^berth:' /etc/passwd); echo link=$(readlink /etc/link); echo sub=$(cat /etc/sub/file)
echo mode=$(stat -c %a /etc/sub); echo new > /etc/new && echo write=ok; echo fs=$(stat -f -c %T /etc)`))
	hostFile(t, b.rootfs(), "etc/sub/file", "nested")
	if err := os.Chmod(filepath.Join(b.rootfs(), "etc/sub"), 0o710); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("sub/file", filepath.Join(b.rootfs(), "etc/link")); err != nil {
		t.Fatal(err)
	}
	expect(t, keyValues(b.output()), map[string]string{"passwd": "1", "link": "sub/file", "sub": "nested", "mode": "710", "write": "ok", "fs": "tmpfs"})
	if _, err := os.Stat(filepath.Join(b.rootfs(), "etc/new")); err == nil {
		t.Errorf("a file written to the tmpfs reached the rootfs")
	}
}

// TestBindRelativeSource: a bind mount source that is a relative path is
// relative to the bundle (OCI runtime spec, mounts), whatever the
// runtime's working directory.
func TestBindRelativeSource(t *testing.T) {
	b := newBox(t, bindAt("data", "/data"), shell(`echo data=$(cat /data/marker)`))
	hostFile(t, b.bundle, "data/marker", "in-bundle")
	expect(t, keyValues(b.output()), map[string]string{"data": "in-bundle"})
}

func hasOptional(m mountInfo, prefix string) bool {
	return slices.ContainsFunc(m.optional, func(o string) bool { return strings.HasPrefix(o, prefix) })
}

func TestMountPropagationFlags(t *testing.T) {
	needRoot(t)
	src := hostDir(t)
	out := inside(t, `cat /proc/self/mountinfo`,
		bindAt(src, "/mnt/shared", "rshared"),
		bindAt(src, "/mnt/private", "rprivate"),
		bindAt(src, "/mnt/unbindable", "runbindable"))
	ms := parseMountinfo(t, out)
	if m, _ := lastMount(ms, "/mnt/shared"); !hasOptional(m, "shared:") {
		t.Errorf("rshared bind mount is not shared: %v", m.optional)
	}
	if m, _ := lastMount(ms, "/mnt/private"); hasOptional(m, "shared:") || hasOptional(m, "master:") {
		t.Errorf("rprivate bind mount still propagates: %v", m.optional)
	}
	if m, _ := lastMount(ms, "/mnt/unbindable"); !hasOptional(m, "unbindable") {
		t.Errorf("runbindable bind mount is bindable: %v", m.optional)
	}
}

// TestRootfsPropagation checks the effect of rootfsPropagation: with
// rshared, a mount made in the container under a shared bind mount of the
// host reaches the host; with the default (rslave) it does not.
func TestRootfsPropagation(t *testing.T) {
	for _, tc := range []struct {
		propagation string
		reaches     bool
	}{{"rshared", true}, {"", false}} {
		t.Run("propagation="+tc.propagation, func(t *testing.T) {
			needRoot(t)
			d := hostDir(t)
			if err := unix.Mount(d, d, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				unix.Unmount(filepath.Join(d, "x"), unix.MNT_DETACH)
				if err := unix.Unmount(d, unix.MNT_DETACH); err != nil {
					t.Errorf("unmount %s: %v", d, err)
				}
			})
			if err := unix.Mount("", d, "", unix.MS_SHARED, ""); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(d, "x"), 0o755); err != nil {
				t.Fatal(err)
			}
			out := inside(t, `mount -t tmpfs -o size=1m berth-propagation /mnt/d/x && echo mounted=yes`,
				bindAt(d, "/mnt/d", "rbind", "rshared"),
				addCaps("CAP_SYS_ADMIN"),
				func(s *specs.Spec) { s.Linux.RootfsPropagation = tc.propagation })
			expect(t, keyValues(out), map[string]string{"mounted": "yes"})
			mi, err := os.ReadFile("/proc/self/mountinfo")
			if err != nil {
				t.Fatal(err)
			}
			reached := strings.Contains(string(mi), " "+filepath.Join(d, "x")+" ")
			if reached != tc.reaches {
				t.Errorf("rootfsPropagation %q: the container's mount reached the host: %v, want %v", tc.propagation, reached, tc.reaches)
			}
		})
	}
}

func TestDefaultDevices(t *testing.T) {
	out := inside(t, `for d in null zero full random urandom tty; do stat -c "$d=%F %t:%T %a" /dev/$d; done
for l in fd stdin stdout stderr ptmx; do echo "$l=$(readlink /dev/$l)"; done
echo x > /dev/null && echo null-write=ok
echo zero-read=$(head -c 4 /dev/zero | od -An -tx1)
echo full-write=$(echo x 2>&1 >/dev/full)
echo urandom-read=$(head -c 16 /dev/urandom | wc -c)
echo ptmx-open=$(: <> /dev/ptmx && echo ok)`)
	expect(t, keyValues(out), map[string]string{
		"null":         "character special file 1:3 666",
		"zero":         "character special file 1:5 666",
		"full":         "character special file 1:7 666",
		"random":       "character special file 1:8 666",
		"urandom":      "character special file 1:9 666",
		"tty":          "character special file 5:0 666",
		"fd":           "/proc/self/fd",
		"stdin":        "/proc/self/fd/0",
		"stdout":       "/proc/self/fd/1",
		"stderr":       "/proc/self/fd/2",
		"ptmx":         "pts/ptmx",
		"null-write":   "ok",
		"urandom-read": "16",
		"ptmx-open":    "ok",
		"zero-read":    "00 00 00 00",
	})
	if kv := keyValues(out); !strings.Contains(kv["full-write"], "No space left on device") {
		t.Errorf("writing /dev/full: %q, want ENOSPC (the device must be usable)", kv["full-write"])
	}
}

func TestSpecDevices(t *testing.T) {
	mode := func(m os.FileMode) *os.FileMode { return &m }
	id := func(v uint32) *uint32 { return &v }
	out := inside(t, `for d in berth-null berth-fifo berth-loop; do stat -c "$d=%F %t:%T %a %u:%g" /dev/$d; done
echo x > /dev/berth-null && echo write=ok`, func(s *specs.Spec) {
		s.Linux.Devices = append(s.Linux.Devices,
			specs.LinuxDevice{Path: "/dev/berth-null", Type: "c", Major: 1, Minor: 3, FileMode: mode(0o620), GID: id(5)},
			specs.LinuxDevice{Path: "/dev/berth-fifo", Type: "p", FileMode: mode(0o600), UID: id(1000), GID: id(1000)},
			specs.LinuxDevice{Path: "/dev/berth-loop", Type: "b", Major: 7, Minor: 0, FileMode: mode(0o660), GID: id(6)},
		)
	})
	expect(t, keyValues(out), map[string]string{
		"berth-null": "character special file 1:3 620 0:5",
		"berth-fifo": "fifo 0:0 600 1000:1000",
		"berth-loop": "block special file 7:0 660 0:6",
		"write":      "ok",
	})
}

func TestReadonlyRoot(t *testing.T) {
	t.Run("readonly", func(t *testing.T) {
		out := inside(t, `echo touch=$(touch /x 2>&1); echo tmp=$(touch /tmp/x 2>&1)`)
		kv := keyValues(out)
		for _, k := range []string{"touch", "tmp"} {
			if !strings.Contains(kv[k], "Read-only file system") {
				t.Errorf("%s: writing on a read-only root gave %q, want EROFS", k, kv[k])
			}
		}
	})
	t.Run("writable", func(t *testing.T) {
		b := newBox(t, rwRoot, shell(`echo hello > /written && echo ok=yes`))
		expect(t, keyValues(b.output()), map[string]string{"ok": "yes"})
		if data, err := os.ReadFile(filepath.Join(b.rootfs(), "written")); err != nil || string(data) != "hello\n" {
			t.Errorf("file written in the container: %q, %v on the host", data, err)
		}
	})
}

func TestMaskedPaths(t *testing.T) {
	b := newBox(t, rwRoot, func(s *specs.Spec) {
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/etc/secret", "/etc/secretdir", "/no/such/path")
	}, shell(`echo secret=$(cat /etc/secret); echo dir=$(ls -A /etc/secretdir | wc -l)
echo dir-write=$(touch /etc/secretdir/x 2>&1)
echo file-write=$(echo x 2>&1 > /etc/secret && cat /etc/secret)
echo timer_list=$(wc -c < /proc/timer_list)
echo kcore=$(test -e /proc/kcore && wc -c < /proc/kcore)`))
	hostFile(t, b.rootfs(), "etc/secret", "secret-data\n")
	hostFile(t, b.rootfs(), "etc/secretdir/file", "more\n")
	kv := keyValues(b.output())
	expect(t, kv, map[string]string{"secret": "", "dir": "0", "file-write": "", "timer_list": "0"})
	if !strings.Contains(kv["dir-write"], "Read-only file system") {
		t.Errorf("writing into a masked directory: %q, want EROFS", kv["dir-write"])
	}
	if k := kv["kcore"]; k != "" && k != "0" {
		t.Errorf("/proc/kcore has %s bytes: not masked", k)
	}
	if data, _ := os.ReadFile(filepath.Join(b.rootfs(), "etc/secret")); string(data) != "secret-data\n" {
		t.Errorf("writing to the masked file changed it on the host: %q", data)
	}
}

func TestReadonlyPaths(t *testing.T) {
	out := inside(t, `echo home=$(touch /home/berth/x 2>&1); echo etc=$(touch /etc/x 2>&1 && echo ok)
echo procsys=$(echo 1 2>&1 > /proc/sys/kernel/shm_rmid_forced)`, rwRoot, func(s *specs.Spec) {
		s.Linux.ReadonlyPaths = append(s.Linux.ReadonlyPaths, "/home/berth", "/no/such/path")
	})
	kv := keyValues(out)
	for _, k := range []string{"home", "procsys"} {
		if !strings.Contains(kv[k], "Read-only file system") {
			t.Errorf("%s: writing a read-only path gave %q, want EROFS", k, kv[k])
		}
	}
	expect(t, kv, map[string]string{"etc": "ok"})
}

func TestSysctl(t *testing.T) {
	needRoot(t)
	hostForward := readTrimmed(t, "/proc/sys/net/ipv4/ip_forward")
	hostRmid := readTrimmed(t, "/proc/sys/kernel/shm_rmid_forced")
	// Set the opposite of the host's values (berthd turns the host's
	// forwarding on), so that a value seen inside can only come from the
	// spec.
	flip := map[string]string{"0": "1", "1": "0"}
	want := map[string]string{"forward": flip[hostForward], "rmid": flip[hostRmid]}
	if want["forward"] == "" || want["rmid"] == "" {
		t.Fatalf("host has ip_forward=%s shm_rmid_forced=%s, want 0 or 1", hostForward, hostRmid)
	}
	out := inside(t, `echo forward=$(cat /proc/sys/net/ipv4/ip_forward); echo rmid=$(cat /proc/sys/kernel/shm_rmid_forced)`,
		func(s *specs.Spec) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": want["forward"], "kernel.shm_rmid_forced": want["rmid"]}
		})
	expect(t, keyValues(out), want)
	if v := readTrimmed(t, "/proc/sys/net/ipv4/ip_forward"); v != hostForward {
		t.Errorf("host's ip_forward changed to %s", v)
	}
	if v := readTrimmed(t, "/proc/sys/kernel/shm_rmid_forced"); v != hostRmid {
		t.Errorf("host's shm_rmid_forced changed to %s", v)
	}
}

func readTrimmed(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func TestNoPivot(t *testing.T) {
	b := newBox(t, shell(`echo marker=$(cat /rootfs-marker); echo host=$(test -e /work-host-only && echo visible || echo hidden)
echo up=$(cd /..; pwd; ls / | grep -c rootfs-marker)`))
	hostFile(t, b.rootfs(), "rootfs-marker", "in-rootfs")
	if _, err := os.Stat("/work-host-only"); err == nil {
		t.Fatal("/work-host-only exists on the host")
	}
	// A path that exists on the host only: if the container could see
	// the host's root, it would see it.
	if err := os.WriteFile("/work-host-only", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove("/work-host-only") })
	kv := keyValues(b.output("--no-pivot"))
	expect(t, kv, map[string]string{"marker": "in-rootfs", "host": "hidden", "up": "/ 1"})
}

// ---------------------------------------------------------------------------
// Process

func TestProcessArgsEnvCwd(t *testing.T) {
	b := newBox(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", `echo "0=$0"; echo "1=$1"; echo "2=$2"; echo "foo=$FOO"; echo "cwd=$(pwd)"; echo "path=$PATH"; echo "home=$HOME"; echo "leak=$(env | grep -c -e BERTH -e NSENTER)"`, "zero", "one two", ""}
		s.Process.Env = []string{"PATH=/bin", "FOO=a b=c", "HOME=/custom"}
		s.Process.Cwd = "/home/berth"
	})
	expect(t, keyValues(b.output()), map[string]string{
		"0": "zero", "1": "one two", "2": "", "foo": "a b=c", "cwd": "/home/berth", "path": "/bin", "home": "/custom",
		"leak": "0", // nothing of the runtime's own environment
	})
}

// TestProcessDefaults checks what runc provides when the spec leaves it
// out: HOME from the user's /etc/passwd entry, and a cwd that does not
// exist yet is created.
func TestProcessDefaults(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		out := inside(t, `echo home=$HOME; echo cwd=$(pwd)`, func(s *specs.Spec) { s.Process.Cwd = "/new/work/dir" })
		expect(t, keyValues(out), map[string]string{"home": "/root", "cwd": "/new/work/dir"})
	})
	t.Run("user", func(t *testing.T) {
		out := inside(t, `echo home=$HOME`, func(s *specs.Spec) { s.Process.User = specs.User{UID: testutil.UserUID, GID: testutil.UserGID} })
		expect(t, keyValues(out), map[string]string{"home": "/home/berth"})
	})
	t.Run("unknown-user", func(t *testing.T) {
		out := inside(t, `echo home=$HOME`, func(s *specs.Spec) { s.Process.User = specs.User{UID: 4242, GID: 4242} })
		expect(t, keyValues(out), map[string]string{"home": "/"})
	})
}

func TestProcessUser(t *testing.T) {
	out := inside(t, `echo uid=$(id -u); echo gid=$(id -g); echo groups=$(id -G); grep -E '^(Uid|Gid|Groups):' /proc/self/status`,
		func(s *specs.Spec) {
			s.Process.User = specs.User{UID: testutil.UserUID, GID: testutil.UserGID, AdditionalGids: []uint32{5, testutil.NobodyGID}}
		})
	expect(t, keyValues(out), map[string]string{
		"uid": "1000", "gid": "1000", "groups": "1000 5 65534",
		"Uid": "1000\t1000\t1000\t1000", "Gid": "1000\t1000\t1000\t1000", "Groups": "5 65534",
	})
}

func TestProcessUmask(t *testing.T) {
	for _, tc := range []struct {
		umask *uint32
		want  string
		mode  string
	}{{nil, "0022", "644"}, {ptr(uint32(0o077)), "0077", "600"}} {
		t.Run(tc.want, func(t *testing.T) {
			out := inside(t, `echo umask=$(umask); touch /tmp/f; echo mode=$(stat -c %a /tmp/f)`, tmpfsAt("/tmp"), func(s *specs.Spec) {
				s.Process.User.Umask = tc.umask
			})
			expect(t, keyValues(out), map[string]string{"umask": tc.want, "mode": tc.mode})
		})
	}
}

func ptr[T any](v T) *T { return &v }

// haveCap reports whether the test process has capability c in its
// effective set.
func haveCap(t *testing.T, c int) bool {
	t.Helper()
	kv := keyValues(readTrimmed(t, "/proc/self/status"))
	eff, err := strconv.ParseUint(kv["CapEff"], 16, 64)
	if err != nil {
		t.Fatalf("CapEff %q: %v", kv["CapEff"], err)
	}
	return eff&(1<<c) != 0
}

func TestRlimits(t *testing.T) {
	t.Run("set", func(t *testing.T) {
		out := inside(t, `echo n=$(ulimit -n); grep -E '^Max (open files|core file size|processes) ' /proc/self/limits`, func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1000},
				{Type: "RLIMIT_CORE", Soft: 0, Hard: 4096},
				{Type: "RLIMIT_NPROC", Soft: 300, Hard: 400},
			}
		})
		lines := map[string]string{}
		for _, l := range strings.Split(out, "\n") {
			if name, rest, ok := strings.Cut(l, "  "); ok && strings.HasPrefix(name, "Max ") {
				lines[name] = strings.Join(strings.Fields(rest), " ")
			}
		}
		for name, want := range map[string]string{
			"Max open files": "512 1000 files", "Max core file size": "0 4096 bytes", "Max processes": "300 400 processes",
		} {
			if lines[name] != want {
				t.Errorf("%s: %q, want %q\n%s", name, lines[name], want, out)
			}
		}
		expect(t, keyValues(out), map[string]string{"n": "512"})
	})
	t.Run("above-hard-limit", func(t *testing.T) {
		needRoot(t)
		var cur unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
			t.Fatal(err)
		}
		if haveCap(t, unix.CAP_SYS_RESOURCE) {
			t.Skip("the test process has CAP_SYS_RESOURCE: it may raise hard limits")
		}
		b := newBox(t, func(s *specs.Spec) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: cur.Max + 1, Hard: cur.Max + 1}}
		})
		b.runFails("RLIMIT_NOFILE", strconv.FormatUint(cur.Max+1, 10), "operation not permitted", "CAP_SYS_RESOURCE")
	})
}

func TestOOMScoreAdj(t *testing.T) {
	t.Run("raise", func(t *testing.T) {
		out := inside(t, `echo adj=$(cat /proc/self/oom_score_adj)`, func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(500) })
		expect(t, keyValues(out), map[string]string{"adj": "500"})
	})
	t.Run("lower", func(t *testing.T) {
		needRoot(t)
		if haveCap(t, unix.CAP_SYS_RESOURCE) {
			t.Skip("the test process has CAP_SYS_RESOURCE: it may lower oom_score_adj")
		}
		own, err := strconv.Atoi(readTrimmed(t, "/proc/self/oom_score_adj"))
		if err != nil {
			t.Fatal(err)
		}
		want := own - 100
		b := newBox(t, func(s *specs.Spec) { s.Process.OOMScoreAdj = ptr(want) })
		b.runFails("oom_score_adj", strconv.Itoa(want), "CAP_SYS_RESOURCE")
	})
}

func TestIOPriority(t *testing.T) {
	t.Run("inside", func(t *testing.T) {
		out := inside(t, `echo prio=$(ionice)`, func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
		})
		expect(t, keyValues(out), map[string]string{"prio": "best-effort: prio 6"})
	})
	t.Run("host", testIOPriorityFromHost)
}

// testIOPriorityFromHost reads init's io priority from the host, before
// the container's process starts.
func testIOPriorityFromHost(t *testing.T) {
	b := newBox(t, func(s *specs.Spec) {
		s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE, Priority: 0}
	})
	pid := b.create()
	const whoProcess = 1
	prio, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, whoProcess, uintptr(pid), 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	if class := prio >> 13; class != 3 {
		t.Errorf("init's io priority class is %d (value %#x), want 3 (idle)", class, prio)
	}
}

// schedScript prints the nice value (field 19 of /proc/<pid>/stat), the
// policy (field 41) and the io priority of the shell.
const schedScript = `set -- $(sed 's/.*) //' /proc/self/stat); shift 16; echo nice=$1; shift 22; echo policy=$1; echo io=$(ionice)`

func TestScheduler(t *testing.T) {
	t.Run("batch", func(t *testing.T) {
		out := inside(t, schedScript, func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 7}
		})
		expect(t, keyValues(out), map[string]string{"policy": "3", "nice": "7"}) // SCHED_BATCH
	})
	t.Run("realtime", func(t *testing.T) {
		// The runtime sets the scheduler and io priority, as runc does:
		// the container's process needs no CAP_SYS_NICE or CAP_SYS_ADMIN
		// of its own for them.
		out := inside(t, schedScript, func(s *specs.Spec) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 1}
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 2}
			if _, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us"); err == nil {
				// Group RT scheduling: the cgroup needs a share of RT time.
				s.Linux.Resources.CPU = &specs.LinuxCPU{RealtimeRuntime: ptr(int64(10000)), RealtimePeriod: ptr(uint64(1000000))}
			}
		})
		expect(t, keyValues(out), map[string]string{"policy": "1", "io": "realtime: prio 2"}) // SCHED_FIFO
	})
}

func TestPersonality(t *testing.T) {
	if goruntime.GOARCH != "amd64" && goruntime.GOARCH != "arm64" {
		t.Skip("LINUX32 is checked on amd64 and arm64")
	}
	want := map[string]string{"amd64": "i686", "arm64": "armv8l"}[goruntime.GOARCH]
	t.Run("LINUX32", func(t *testing.T) {
		out := inside(t, `echo machine=$(uname -m)`, func(s *specs.Spec) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		})
		expect(t, keyValues(out), map[string]string{"machine": want})
	})
	t.Run("none", func(t *testing.T) {
		if m := keyValues(inside(t, `echo machine=$(uname -m)`))["machine"]; m == want {
			t.Errorf("uname -m is %s without a personality", m)
		}
	})
}

// TestStdioOwnership: a non-root process can reopen its stdio
// (/dev/stdout), which the runtime's caller made as root: the runtime
// gives it to the container's user, as runc does.
func TestStdioOwnership(t *testing.T) {
	// Every write appends: stdout is a file, and a write through fd 1 at
	// its own offset would overwrite what the reopened descriptor wrote.
	out := inside(t, `echo reopened >> /dev/stdout; echo x >> /dev/stderr && echo stderr=ok >> /dev/stdout`, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: testutil.UserUID, GID: testutil.UserGID}
	})
	if !strings.Contains(out, "reopened") || !strings.Contains(out, "stderr=ok") {
		t.Errorf("a non-root process could not reopen its stdout and stderr:\n%s", out)
	}
}

func TestTerminal(t *testing.T) {
	t.Run("root", func(t *testing.T) { testTerminal(t, 0) })
	t.Run("user", func(t *testing.T) { testTerminal(t, testutil.UserUID) })
}

func testTerminal(t *testing.T, uid uint32) {
	b := newBox(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 40, Width: 100}
		s.Process.User = specs.User{UID: uid, GID: uid}
		s.Process.Args = []string{"sh", "-c", `echo tty=$(tty); echo size=$(stty size); echo console=$(stat -c %t:%T /dev/console); test -t 0 && test -t 1 && test -t 2 && echo stdio=tty
echo reopen=$(echo x 2>&1 > /dev/tty && echo ok); echo owner=$(stat -c %u /dev/pts/0)`}
	})
	sock, masters := consoleSocket(t, b.root)
	b.create("--console-socket", sock)
	var master *os.File
	select {
	case master = <-masters:
	case <-time.After(10 * time.Second):
	}
	if master == nil {
		t.Fatal("create returned without sending a pty master to the console socket")
	}
	defer master.Close()
	b.must("start", b.id)
	// Read the pty until the container is gone (EIO once the slave side
	// is closed by every process).
	done := make(chan []byte, 1)
	go func() {
		data, _ := io.ReadAll(master)
		done <- data
	}()
	var data []byte
	select {
	case data = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the container's terminal output did not end")
	}
	out := strings.ReplaceAll(string(data), "\r", "")
	expect(t, keyValues(out), map[string]string{"tty": "/dev/pts/0", "size": "40 100", "console": "88:0", "stdio": "tty", "reopen": "ok",
		"owner": strconv.Itoa(int(uid))})
}
