package oci

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// This file holds what Generate asks the host: the kernel version, whether
// /sys/fs/cgroup is cgroup2 only, whether AppArmor or SELinux is on, and
// files read from inside a container's rootfs.

// kernelVersion returns the running kernel's major and minor numbers.
func kernelVersion() (int, int, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return 0, 0, fmt.Errorf("uname: %w", err)
	}
	return parseKernelRelease(unix.ByteSliceToString(u.Release[:]))
}

// cgroup2Only reports whether the host's /sys/fs/cgroup is the cgroup v2
// unified hierarchy (not v1 or hybrid), which makes Docker default to a
// private cgroup namespace.
func cgroup2Only() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// apparmorEnabled reports whether AppArmor is on, as Docker checks it.
func apparmorEnabled() bool {
	if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
		return false
	}
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && strings.HasPrefix(string(b), "Y")
}

// selinuxEnabled reports whether selinuxfs is mounted.
func selinuxEnabled() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/selinux", &st); err != nil {
		return false
	}
	return st.Type == unix.SELINUX_MAGIC
}

// readInRoot reads the regular file at path inside the directory root.
// Symlinks are followed as if root were "/" (never out of it) and magic
// links are refused; a FIFO or device is refused without being opened for
// reading. A missing file is an error matching os.ErrNotExist.
func readInRoot(root, path string) ([]byte, error) {
	f, err := openInRoot(root, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in %s is not a regular file", path, root)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRootfsFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRootfsFile {
		return nil, fmt.Errorf("%s in %s is larger than %d bytes", path, root, maxRootfsFile)
	}
	return data, nil
}

// openInRoot opens path inside root with openat2(RESOLVE_IN_ROOT), or with
// securejoin and O_NOFOLLOW on kernels before 5.6. O_NONBLOCK keeps a FIFO
// from blocking the open.
func openInRoot(root, path string) (*os.File, error) {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootfd)
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(rootfd, strings.TrimLeft(path, "/"), &how)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), root+path), nil
		case errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN):
			continue
		case errors.Is(err, unix.ENOSYS):
			return openJoined(root, path)
		default:
			return nil, &os.PathError{Op: "open", Path: root + path, Err: err}
		}
	}
}

// openJoined is openInRoot for kernels without openat2.
func openJoined(root, path string) (*os.File, error) {
	p, err := securejoin.SecureJoin(root, path)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// hostHostname returns the host's hostname (uname's nodename).
func hostHostname() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Nodename[:])
}
