package workdir

import (
	"errors"
	"fmt"
	"sort"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// fsTopdirFlag is FS_TOPDIR_FL (chattr +T): ext4's Orlov allocator puts
// each directory made in such a directory in a block group of its own
// choosing, away from its parent's.
const fsTopdirFlag = 0x20000

// SpreadChildren sets FS_TOPDIR_FL on dir, so that every data root (and
// every docker layer directory) made in it lands in a block group of its
// own. On an ext4 without a journal, creating a file scans the inodes of
// its group deleted in the last minute, one by one, for every create; in
// the group of a tree the bench has just removed that costs about half a
// millisecond per file and would measure the bench's own clean-up instead
// of the implementations. Other file systems ignore the flag or refuse it,
// which is fine.
func SpreadChildren(dir string) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, flags|fsTopdirFlag)
}

// UnmountUnder detaches every mount at or below dir, deepest first.
func UnmountUnder(dir string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("list mounts under %s: %w", dir, err)
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	var errs []error
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", m.Mountpoint, err))
		}
	}
	return errors.Join(errs...)
}
