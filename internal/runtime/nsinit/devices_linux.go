package nsinit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// defaultDevices are created in every container, as the spec requires.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// createDevices makes the default and the spec's device nodes and the
// standard /dev symlinks. In a user namespace, where mknod is not allowed,
// the host's nodes are bind mounted instead.
func createDevices(rootfs string, spec *specs.Spec, userns bool) error {
	devDir := filepath.Join(rootfs, "dev")
	if err := refuseSymlink(rootfs, devDir); err != nil {
		return err
	}
	if err := os.MkdirAll(devDir, 0o755); err != nil {
		return fmt.Errorf("create /dev: %w", err)
	}
	seen := map[string]bool{}
	devices := append([]specs.LinuxDevice{}, spec.Linux.Devices...)
	devices = append(devices, defaultDevices...)
	old := unix.Umask(0)
	defer unix.Umask(old)
	for i := range devices {
		d := &devices[i]
		if seen[d.Path] {
			continue
		}
		seen[d.Path] = true
		if err := createDevice(rootfs, d, userns); err != nil {
			return err
		}
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		p := filepath.Join(rootfs, l[1])
		if err := os.Symlink(l[0], p); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("symlink %s -> %s: %w", l[1], l[0], err)
		}
	}
	// /dev/ptmx points at the container's own devpts instance when it has one.
	if _, err := os.Lstat(filepath.Join(rootfs, "dev/pts/ptmx")); err == nil {
		p := filepath.Join(rootfs, "dev/ptmx")
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove /dev/ptmx: %w", err)
		}
		if err := os.Symlink("pts/ptmx", p); err != nil {
			return fmt.Errorf("symlink /dev/ptmx: %w", err)
		}
	}
	return nil
}

// refuseSymlink fails if p, inside rootfs, is a symlink: /dev and /proc
// entries that are links could point the runtime at host paths.
func refuseSymlink(rootfs, p string) error {
	fi, err := os.Lstat(p)
	if err == nil && fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%s in the rootfs is a symlink: refusing to use it", strings.TrimPrefix(p, rootfs))
	}
	return nil
}

func deviceMode(d *specs.LinuxDevice) (uint32, error) {
	var mode uint32
	switch d.Type {
	case "c", "u":
		mode = unix.S_IFCHR
	case "b":
		mode = unix.S_IFBLK
	case "p":
		mode = unix.S_IFIFO
	default:
		return 0, fmt.Errorf("device %s: unknown type %q", d.Path, d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(*d.FileMode) & 0o7777
	}
	return mode | perm, nil
}

func createDevice(rootfs string, d *specs.LinuxDevice, userns bool) error {
	if !filepath.IsAbs(d.Path) || !strings.HasPrefix(filepath.Clean(d.Path), "/dev/") {
		return fmt.Errorf("device path %q must be under /dev", d.Path)
	}
	dest, err := resolveInRoot(rootfs, d.Path)
	if err != nil {
		return err
	}
	if want := filepath.Join(rootfs, d.Path); dest != want {
		return fmt.Errorf("device path %s is a symlink in the rootfs: refusing it", d.Path)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return fmt.Errorf("create dir for device %s: %w", d.Path, err)
	}
	mode, err := deviceMode(d)
	if err != nil {
		return err
	}
	if userns {
		return bindDevice(rootfs, d, dest)
	}
	if err := os.Remove(dest); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove existing %s: %w", d.Path, err)
	}
	dev := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	if err := unix.Mknod(dest, mode, dev); err != nil {
		if errors.Is(err, unix.EPERM) {
			return bindDevice(rootfs, d, dest)
		}
		return fmt.Errorf("mknod %s: %w", d.Path, err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Lchown(dest, uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", d.Path, err)
	}
	return nil
}

func bindDevice(rootfs string, d *specs.LinuxDevice, dest string) error {
	if err := createFileInRoot(rootfs, dest); err != nil {
		return err
	}
	return mountAt(d.Path, dest, "", unix.MS_BIND, "")
}
