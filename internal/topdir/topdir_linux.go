package topdir

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// FSTopdirFL is FS_TOPDIR_FL of <linux/fs.h>, which x/sys/unix lacks.
const FSTopdirFL = 0x00020000

// Mark sets FS_TOPDIR_FL on the directory dir. File systems without the
// flag (tmpfs, overlay, ...) are left as they are: Mark returns nil for
// them, as it is only a placement hint.
func Mark(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("mark %s as a top directory: %w", dir, err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if unsupported(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mark %s as a top directory: get flags: %w", dir, err)
	}
	if flags&FSTopdirFL != 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|FSTopdirFL)); err != nil && !unsupported(err) {
		return fmt.Errorf("mark %s as a top directory: set flags: %w", dir, err)
	}
	return nil
}

// unsupported reports whether err says the file system has no inode
// flags or not this one.
func unsupported(err error) bool {
	return errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL)
}
