package archive

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// This file holds the fd-relative file system primitives every other file
// uses. Nothing here joins host paths: a path inside a root is resolved with
// openat2(RESOLVE_IN_ROOT) from a dirfd of the root, and the last component
// is always handled with an *at call that does not follow symlinks.

// openRoot opens dir as the O_PATH anchor all resolutions start from.
func openRoot(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, nil
}

// openIn resolves rel inside the root rootfd (symlinks are followed but stay
// inside the root, magic links are refused) and opens it with flags.
func openIn(rootfd int, rel string, flags uint64) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{
		Flags:   flags | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue // EAGAIN: a concurrent rename elsewhere; retry
		}
		return fd, err
	}
}

// procPath names the entry name inside the directory dirfd through
// /proc/self/fd, for the l*xattr calls that have no *at form. The final
// component is not followed by the l* calls.
func procPath(dirfd int, name string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + name
}

func lstatAt(dirfd int, name string) (unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	return st, err
}

// readDirNames lists the directory fd sorted by byte order. fd stays open.
func readDirNames(fd int) ([]string, error) {
	dup, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// removeAt removes name from the directory dirfd and, if it is a directory,
// everything below it, never following a symlink.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = clearDir(fd, nil)
	unix.Close(fd)
	if err != nil {
		return err
	}
	err = unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
	if err == unix.ENOENT {
		err = nil
	}
	return err
}

// clearDir removes every entry of the directory fd for which keep (if not
// nil) returns false.
func clearDir(fd int, keep func(name string) bool) error {
	names, err := readDirNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if keep != nil {
			if keep(n) {
				continue
			}
		}
		if err := removeAt(fd, n); err != nil {
			return fmt.Errorf("remove %s: %w", n, err)
		}
	}
	return nil
}

// xattrs lists the extended attributes of a file. fd >= 0 reads through the
// open file; otherwise path (a procPath) is read without following it.
func xattrs(fd int, path string) (map[string]string, error) {
	buf := make([]byte, 1024)
	var n int
	var err error
	for {
		if fd >= 0 {
			n, err = unix.Flistxattr(fd, buf)
		} else {
			n, err = unix.Llistxattr(path, buf)
		}
		if err == unix.ERANGE {
			buf = make([]byte, len(buf)*4)
			continue
		}
		break
	}
	if err != nil {
		if err == unix.ENOTSUP || err == unix.EOPNOTSUPP {
			return nil, nil
		}
		return nil, fmt.Errorf("list xattrs: %w", err)
	}
	if n == 0 {
		return nil, nil
	}
	out := map[string]string{}
	val := make([]byte, 256)
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" {
			continue
		}
		for {
			var m int
			if fd >= 0 {
				m, err = unix.Fgetxattr(fd, name, val)
			} else {
				m, err = unix.Lgetxattr(path, name, val)
			}
			if err == unix.ERANGE {
				val = make([]byte, len(val)*4)
				continue
			}
			if err == nil {
				out[name] = string(val[:m])
			}
			break
		}
		if err != nil && err != unix.ENODATA {
			return nil, fmt.Errorf("get xattr %s: %w", name, err)
		}
	}
	return out, nil
}

// isOverlayXattr reports the overlayfs private attributes, which never
// travel in a layer: they are set (opaque) or refused by this package only.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

func isWhiteoutDev(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}
