package nsinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/loopback"
	"github.com/berth-project/berth/internal/runtime/syncpipe"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// setupContainer builds the container's world for a new container: hostname,
// loopback, the root filesystem with all its mounts and devices, the hook
// stops, pivot_root, and the masked and read-only paths.
func setupContainer(cfg *Config, pipe *syncpipe.Pipe) error {
	spec := cfg.Spec
	newNS := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range spec.Linux.Namespaces {
		newNS[ns.Type] = ns.Path == ""
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname %q: %w", spec.Domainname, err)
		}
	}
	netnsFD, err := fdFromEnv(EnvNetNSFD)
	if err != nil {
		return err
	}
	if netnsFD >= 0 {
		// This thread execs the process, which so inherits the namespace.
		if err := unix.Setns(netnsFD, unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("enter the container's network namespace: %w", err)
		}
		unix.Close(netnsFD)
	} else if newNS[specs.NetworkNamespace] {
		if err := loopback.Up(); err != nil {
			return err
		}
	}
	if newNS[specs.CgroupNamespace] {
		// Now that the parent placed us in our cgroup, it becomes the root.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if err := setupTimeNamespace(spec); err != nil {
		return err
	}

	rootfs := cfg.Rootfs
	if err := prepareRoot(spec, rootfs); err != nil {
		return err
	}
	userns := newNS[specs.UserNamespace] || hasNS(spec, specs.UserNamespace)
	cgv := &cgroupView{cgroupns: newNS[specs.CgroupNamespace], paths: cfg.CgroupPaths, hosts: cfg.CgroupMounts}
	for i := range spec.Mounts {
		if err := mountEntry(rootfs, &spec.Mounts[i], cgv); err != nil {
			return err
		}
	}
	if err := createDevices(rootfs, spec, userns); err != nil {
		return err
	}

	if cfg.RuntimeHooks {
		if err := pipe.Send(Message{Type: MsgHooks}); err != nil {
			return fmt.Errorf("request runtime hooks: %w", err)
		}
		var reply Message
		if _, err := pipe.Recv(&reply); err != nil {
			return fmt.Errorf("wait for runtime hooks: %w", err)
		}
		if reply.Type != MsgHooksDone {
			return fmt.Errorf("unexpected sync message %q while waiting for hooks", reply.Type)
		}
	}
	if spec.Hooks != nil {
		if err := runHooks(spec.Hooks.CreateContainer, "createContainer", cfg); err != nil {
			return err
		}
	}

	if cfg.NoPivot {
		if err := moveRoot(rootfs); err != nil {
			return err
		}
	} else if err := pivotRoot(rootfs); err != nil {
		return err
	}
	// As runc does, a missing cwd is created: inside the new root, so
	// that no symlink leads out, and before the root may turn read-only.
	if cwd := spec.Process.Cwd; cwd != "" {
		if err := os.MkdirAll(cwd, 0o755); err != nil {
			return fmt.Errorf("create cwd (%q) set in config.json: %w", cwd, err)
		}
	}
	if err := finishRoot(spec); err != nil {
		return err
	}
	if spec.Process.User.Umask != nil {
		unix.Umask(int(*spec.Process.User.Umask))
	} else {
		unix.Umask(0o022)
	}
	return nil
}

func hasNS(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// prepareRoot stops mount events from reaching the host and makes the
// rootfs a mount point of its own, as pivot_root needs.
func prepareRoot(spec *specs.Spec, rootfs string) error {
	flag := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if p := spec.Linux.RootfsPropagation; p != "" {
		f, ok := PropagationFlags(p)
		if !ok {
			return fmt.Errorf("invalid rootfsPropagation %q", p)
		}
		flag = f
	}
	if err := unix.Mount("", "/", "", flag, ""); err != nil {
		return fmt.Errorf("set propagation of / : %w", err)
	}
	if flag&(unix.MS_SHARED) != 0 {
		// pivot_root refuses a new root whose parent mount is shared.
		if err := makeParentPrivate(rootfs); err != nil {
			return err
		}
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount rootfs %s: %w", rootfs, err)
	}
	return nil
}

func makeParentPrivate(rootfs string) error {
	mp, err := mountPointOf(filepath.Dir(rootfs))
	if err != nil {
		return err
	}
	if err := unix.Mount("", mp, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", mp, err)
	}
	return nil
}

// mountPointOf returns the mount point that contains path.
func mountPointOf(path string) (string, error) {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(path))
	if err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	best := "/"
	for _, m := range mounts {
		// ParentsFilter compares plain string prefixes ("/a" for "/ab").
		inside := path == m.Mountpoint || strings.HasPrefix(path, strings.TrimSuffix(m.Mountpoint, "/")+"/")
		if inside && len(m.Mountpoint) > len(best) {
			best = m.Mountpoint
		}
	}
	return best, nil
}

// resolveInRoot resolves dest inside rootfs without ever leaving it.
func resolveInRoot(rootfs, dest string) (string, error) {
	p, err := securejoin.SecureJoin(rootfs, dest)
	if err != nil {
		return "", fmt.Errorf("resolve %s in rootfs: %w", dest, err)
	}
	return p, nil
}

// mountEntry performs one entry of the spec's mounts list.
func mountEntry(rootfs string, m *specs.Mount, cgv *cgroupView) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("mount destination %q is not absolute", m.Destination)
	}
	pm := parseMountOptions(m.Options)
	typ := m.Type
	if pm.flags&unix.MS_BIND != 0 {
		typ = "bind"
	}
	dest, err := resolveInRoot(rootfs, m.Destination)
	if err != nil {
		return err
	}
	switch typ {
	case "proc", "sysfs":
		// proc and sysfs must land on the real directory, never through a
		// symlink the image planted.
		if want := filepath.Join(rootfs, m.Destination); dest != want {
			return fmt.Errorf("mount destination %s is a symlink (it resolves to %s): refusing to mount %s there", m.Destination, strings.TrimPrefix(dest, rootfs), typ)
		}
	}
	if err := checkProcDest(rootfs, dest, typ, m); err != nil {
		return err
	}
	switch typ {
	case "bind":
		return bindMount(rootfs, m, dest, pm)
	case "cgroup":
		return mountCgroup(rootfs, dest, pm, cgv)
	}
	if err := mkdirInRoot(rootfs, dest, 0o755); err != nil {
		return err
	}
	if pm.copyUp && typ == "tmpfs" {
		return mountTmpfsCopyUp(m.Source, dest, pm)
	}
	if err := mountAt(m.Source, dest, typ, pm.flags&^unix.MS_REC, pm.data); err != nil {
		return err
	}
	return applyPropagation(dest, pm.propagation)
}

// lxcfsProcFiles are the entries of /proc a mount may cover, because
// lxcfs emulates them (runc's list).
var lxcfsProcFiles = []string{
	"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps", "/proc/uptime",
	"/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid",
}

// checkProcDest refuses, as runc does, a mount over an entry of /proc
// (such as a volume whose path the image made a symlink to
// /proc/self/attr, to defeat an LSM profile: CVE-2019-19921), except the
// lxcfs files, and anything but procfs on /proc itself. dest is m's
// destination resolved inside rootfs.
func checkProcDest(rootfs, dest, typ string, m *specs.Mount) error {
	rel, err := filepath.Rel(filepath.Join(rootfs, "proc"), dest)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil
	}
	if rel == "." {
		var fs unix.Statfs_t
		if typ == "proc" || (typ == "bind" && unix.Statfs(m.Source, &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC) {
			return nil
		}
		return fmt.Errorf("mount destination %s is /proc: only a proc filesystem may be mounted there, not %s", m.Destination, typ)
	}
	inner := "/proc/" + rel
	for _, f := range lxcfsProcFiles {
		if inner == f {
			return nil
		}
	}
	return fmt.Errorf("mount destination %s resolves to %s, inside /proc: refusing to mount there", m.Destination, inner)
}

// mountAt mounts onto dest through an O_PATH handle, after checking that the
// handle still names dest, so nothing can swap a symlink in between.
func mountAt(source, dest, typ string, flags uintptr, data string) error {
	fd, err := unix.Open(dest, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open mount destination %s: %w", dest, err)
	}
	defer unix.Close(fd)
	procPath := "/proc/self/fd/" + strconv.Itoa(fd)
	if real, err := os.Readlink(procPath); err != nil || real != dest {
		return fmt.Errorf("mount destination %s changed under us (now %s)", dest, real)
	}
	if err := unix.Mount(source, procPath, typ, flags, data); err != nil {
		return fmt.Errorf("mount %s (%s) to %s: %w", source, typ, dest, err)
	}
	return nil
}

func applyPropagation(dest string, props []uintptr) error {
	for _, p := range props {
		if err := unix.Mount("", dest, "", p, ""); err != nil {
			return fmt.Errorf("change propagation of %s: %w", dest, err)
		}
	}
	return nil
}

func bindMount(rootfs string, m *specs.Mount, dest string, pm parsedMount) error {
	var st unix.Stat_t
	if err := unix.Stat(m.Source, &st); err != nil {
		return fmt.Errorf("bind mount source %s: %w", m.Source, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if err := mkdirInRoot(rootfs, dest, 0o755); err != nil {
			return err
		}
	} else if err := createFileInRoot(rootfs, dest); err != nil {
		return err
	}
	if err := mountAt(m.Source, dest, "", unix.MS_BIND|(pm.flags&unix.MS_REC), ""); err != nil {
		return err
	}
	extra := pm.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	if extra != 0 {
		if err := remountBind(dest, extra); err != nil {
			return err
		}
	}
	if pm.recursiveRO {
		if err := setRecursiveReadonly(dest); err != nil {
			return err
		}
	}
	return applyPropagation(dest, pm.propagation)
}

// remountBind applies flags to an existing bind mount, keeping the flags
// the kernel locks (those of the source mount, in a user namespace).
func remountBind(dest string, flags uintptr) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(dest, &sfs); err != nil {
		return fmt.Errorf("statfs %s: %w", dest, err)
	}
	locked := uintptr(0)
	for st, ms := range map[int64]uintptr{unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME} {
		if sfs.Flags&st != 0 {
			locked |= ms
		}
	}
	if err := unix.Mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|flags|locked, ""); err != nil {
		if err := unix.Mount("", dest, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
			return fmt.Errorf("remount %s: %w", dest, err)
		}
	}
	return nil
}

func setRecursiveReadonly(dest string) error {
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("make %s recursively read-only: %w", dest, err)
	}
	return nil
}

// mkdirInRoot creates dir (already resolved inside rootfs) and its parents.
func mkdirInRoot(rootfs, dir string, mode os.FileMode) error {
	if !strings.HasPrefix(dir, rootfs) {
		return fmt.Errorf("%s is outside the rootfs", dir)
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return fmt.Errorf("create mount point %s: %w", strings.TrimPrefix(dir, rootfs), err)
	}
	return nil
}

// createFileInRoot makes an empty file at path (resolved inside rootfs) to
// bind a file onto.
func createFileInRoot(rootfs, path string) error {
	if err := mkdirInRoot(rootfs, filepath.Dir(path), 0o755); err != nil {
		return err
	}
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		if errors.Is(err, unix.EISDIR) {
			return nil
		}
		return fmt.Errorf("create mount point %s: %w", strings.TrimPrefix(path, rootfs), err)
	}
	return unix.Close(fd)
}

// pivotRoot makes rootfs the root and detaches the old root, without
// needing a directory inside rootfs to put it in.
func pivotRoot(rootfs string) error {
	oldRoot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldRoot)
	newRoot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root %s: %w", rootfs, err)
	}
	defer unix.Close(newRoot)
	if err := unix.Fchdir(newRoot); err != nil {
		return fmt.Errorf("chdir to new root: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %s: %w", rootfs, err)
	}
	if err := unix.Fchdir(oldRoot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir to /: %w", err)
	}
	return nil
}

// moveRoot is the --no-pivot path: move the rootfs over / and chroot.
func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs to /: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

// finishRoot applies what must happen inside the new root: read-only root,
// sysctls, masked and read-only paths, and the final propagation.
func finishRoot(spec *specs.Spec) error {
	if spec.Root.Readonly {
		if err := remountBind("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("make rootfs read-only: %w", err)
		}
	}
	// Sysctls go first, as in runc: /proc/sys is usually a read-only path.
	for k, v := range spec.Linux.Sysctl {
		if err := writeSysctl(k, v); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	if p := spec.Linux.RootfsPropagation; p != "" {
		f, _ := PropagationFlags(p)
		if err := unix.Mount("", "/", "", f, ""); err != nil {
			return fmt.Errorf("set rootfs propagation %s: %w", p, err)
		}
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("bind readonly path %s: %w", p, err)
	}
	if err := remountBind(p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
		return fmt.Errorf("readonly path %s: %w", p, err)
	}
	return nil
}

func maskPath(p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat masked path %s: %w", p, err)
	}
	var err error
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("mask path %s: %w", p, err)
	}
	return nil
}

func writeSysctl(key, value string) error {
	if strings.Contains(key, "..") || strings.HasPrefix(key, "/") {
		return fmt.Errorf("invalid sysctl %q", key)
	}
	p := "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("set sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
