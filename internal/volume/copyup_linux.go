package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// copyUp fills the empty volume directory dataDir with a copy of what the
// root filesystem rootfs has at dest, Docker's copy-up of a new volume.
// dest is resolved inside rootfs (symlinks included, as if rootfs were
// "/"), and the tree below it is walked by file descriptor without ever
// following a symlink: symlinks are copied as symlinks. Owners, modes,
// times, extended attributes, hard links and device nodes are kept.
//
// populated says whether the volume has content now: false when dest does
// not exist in rootfs or is no directory (nothing to copy), true when the
// volume was not empty (nothing copied) or the copy was made.
func copyUp(rootfs, dest, dataDir string) (populated bool, err error) {
	dst, err := os.OpenFile(dataDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	defer dst.Close()
	names, err := dst.Readdirnames(1)
	if len(names) > 0 {
		return true, nil
	}
	if err != nil && err != io.EOF {
		return false, fmt.Errorf("read %s: %w", dataDir, err)
	}

	src, err := openInRoot(rootfs, dest)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return false, nil
		}
		return false, fmt.Errorf("open %s in %s: %w", dest, rootfs, err)
	}
	defer src.Close()

	c := copier{dstRoot: dst, links: map[[2]uint64]string{}}
	if err := c.copyDir(src, dst, ""); err != nil {
		return false, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return false, err
	}
	if err := c.applyMeta(dst, int(src.Fd()), &st); err != nil {
		return false, fmt.Errorf("volume root: %w", err)
	}
	return true, nil
}

// openInRoot opens directory unsafePath inside root for reading, resolving
// it as if root were "/": openat2 with RESOLVE_IN_ROOT, or securejoin's
// safe walk on kernels without it.
func openInRoot(root, unsafePath string) (*os.File, error) {
	rootDir, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer rootDir.Close()
	fd, err := unix.Openat2(int(rootDir.Fd()), unsafePath, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err == nil {
		return os.NewFile(uintptr(fd), path.Join(root, unsafePath)), nil
	}
	if !errors.Is(err, unix.ENOSYS) {
		return nil, err
	}
	h, err := pathrs.OpenatInRoot(rootDir, unsafePath)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	return pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
}

// copier copies one tree into a volume.
type copier struct {
	dstRoot *os.File
	// links maps a source inode with several links to the path of its
	// first copy below dstRoot.
	links map[[2]uint64]string
}

// copyDir copies the entries of directory src into directory dst; rel is
// dst's path below the volume root.
func (c *copier) copyDir(src, dst *os.File, rel string) error {
	names, err := src.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("read /%s: %w", rel, err)
	}
	slices.Sort(names)
	sfd, dfd := int(src.Fd()), int(dst.Fd())
	for _, name := range names {
		var st unix.Stat_t
		r := path.Join(rel, name)
		if err := unix.Fstatat(sfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat /%s: %w", r, err)
		}
		if err := c.copyEntry(sfd, dfd, name, r, &st); err != nil {
			var pe *entryError
			if errors.As(err, &pe) {
				return err
			}
			return &entryError{rel: r, err: err}
		}
	}
	return nil
}

// copyEntry copies entry name of directory sfd into directory dfd.
func (c *copier) copyEntry(sfd, dfd int, name, rel string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		s, err := openAt(sfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer s.Close()
		d, err := openAt(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		defer d.Close()
		if err := c.copyDir(s, d, rel); err != nil {
			return err
		}
		return c.applyMeta(d, int(s.Fd()), st)
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := c.links[key]; ok {
				return c.link(first, dfd, name)
			}
			c.links[key] = rel
		}
		return c.copyFile(sfd, dfd, name, st)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(sfd, name, buf)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(string(buf[:n]), dfd, name); err != nil {
			return err
		}
		if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		return unix.UtimesNanoAt(dfd, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknodat(dfd, name, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
		if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
		// Without following a symlink a racing container could put there;
		// kernels without fchmodat2 keep the mode mknod gave.
		if err := unix.Fchmodat(dfd, name, st.Mode&0o7777, unix.AT_SYMLINK_NOFOLLOW); err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
			return err
		}
		return unix.UtimesNanoAt(dfd, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
	}
	return nil
}

// copyFile copies regular file name's content and attributes.
func (c *copier) copyFile(sfd, dfd int, name string, st *unix.Stat_t) error {
	s, err := openAt(sfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return err
	}
	defer s.Close()
	var now unix.Stat_t
	if err := unix.Fstat(int(s.Fd()), &now); err != nil {
		return err
	}
	if now.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s changed while being copied", name)
	}
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	if _, err := io.Copy(d, s); err != nil {
		return err
	}
	return c.applyMeta(d, int(s.Fd()), st)
}

// link makes name in dfd a hard link to the copy at rel below the volume
// root, reached without following symlinks.
func (c *copier) link(rel string, dfd int, name string) error {
	fd, err := unix.Openat2(int(c.dstRoot.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS,
	})
	if err != nil {
		return fmt.Errorf("open link target %s: %w", rel, err)
	}
	defer unix.Close(fd)
	return unix.Linkat(fd, "", dfd, name, unix.AT_EMPTY_PATH)
}

// applyMeta gives an open file or directory the owner, mode, extended
// attributes and times of its source (st, open as srcFd), in that order:
// chown clears set-id bits and capabilities, and times go last so that
// nothing changes them after.
func (c *copier) applyMeta(f *os.File, srcFd int, st *unix.Stat_t) error {
	fd := int(f.Fd())
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
		return err
	}
	copyXattrs(srcFd, fd)
	return unix.UtimesNanoAt(fd, "", []unix.Timespec{st.Atim, st.Mtim}, unix.AT_EMPTY_PATH)
}

// copyXattrs copies the extended attributes of src to dst where the
// destination filesystem takes them; overlayfs' own are left out.
func copyXattrs(src, dst int) {
	size, err := unix.Flistxattr(src, nil)
	if err != nil || size <= 0 {
		return
	}
	buf := make([]byte, size)
	size, err = unix.Flistxattr(src, buf)
	if err != nil {
		return
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		n, err := unix.Fgetxattr(src, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, n)
		if n, err = unix.Fgetxattr(src, name, val); err != nil {
			continue
		}
		_ = unix.Fsetxattr(dst, name, val[:n], 0)
	}
}

func openAt(dirfd int, name string, flags int) (*os.File, error) {
	fd, err := unix.Openat(dirfd, name, flags|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// entryError names the entry of the copied tree that could not be copied.
type entryError struct {
	rel string
	err error
}

func (e *entryError) Error() string { return "/" + e.rel + ": " + e.err.Error() }
func (e *entryError) Unwrap() error { return e.err }
