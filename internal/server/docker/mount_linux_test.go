package docker

import (
	"errors"

	"golang.org/x/sys/unix"
)

// detachMount lazily unmounts path; a path that is not a mount point, or
// does not exist, is no error.
func detachMount(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}
