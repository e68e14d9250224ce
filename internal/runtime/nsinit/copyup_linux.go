package nsinit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// mountTmpfsCopyUp mounts a tmpfs at dest ("tmpcopyup", as runc does) and
// fills it with a copy of the directory it covers: modes, owners,
// symlinks and device nodes included. The covered directory comes from
// the rootfs, so it is read through a handle opened before the mount,
// without following any symlink.
func mountTmpfsCopyUp(source, dest string, pm parsedMount) error {
	lower, err := unix.Open(dest, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tmpcopyup: open %s: %w", dest, err)
	}
	defer unix.Close(lower)
	if err := mountAt(source, dest, "tmpfs", pm.flags&^unix.MS_REC, pm.data); err != nil {
		return err
	}
	// /proc/self/fd/N/<path> starts at the covered directory, not at the
	// tmpfs now mounted on top of it.
	root := "/proc/self/fd/" + strconv.Itoa(lower) + "/" // the slash follows the link
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		return copyEntry(lower, rel, filepath.Join(dest, rel))
	})
	if err != nil {
		return fmt.Errorf("tmpcopyup %s: %w", dest, err)
	}
	return applyPropagation(dest, pm.propagation)
}

// copyEntry copies rel, under the directory lower, to dst.
func copyEntry(lower int, rel, dst string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(lower, rel, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	perm := os.FileMode(st.Mode & 0o7777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(lower, rel, target)
		if err != nil {
			return err
		}
		if err := unix.Symlink(string(target[:n]), dst); err != nil {
			return err
		}
		return unix.Lchown(dst, int(st.Uid), int(st.Gid))
	case unix.S_IFREG:
		if err := copyFileAt(lower, rel, dst); err != nil {
			return err
		}
	default:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	// After chown, which clears the set-id bits.
	return unix.Chmod(dst, uint32(perm))
}

func copyFileAt(lower int, rel, dst string) error {
	fd, err := unix.Openat2(lower, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) {
		fd, err = unix.Openat(lower, rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return err
	}
	src := os.NewFile(uintptr(fd), rel)
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, src); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
