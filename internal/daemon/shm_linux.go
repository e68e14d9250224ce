package daemon

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/log"
)

// mountShm mounts a shareable container's /dev/shm, a tmpfs of size
// bytes, at dir.
func mountShm(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make shm dir: %w", err)
	}
	opts := "mode=1777,size=" + strconv.FormatInt(size, 10)
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		os.Remove(dir)
		return fmt.Errorf("mount shm at %s: %w", dir, err)
	}
	return nil
}

// unmountShm undoes mountShm; a dir that is not there or not mounted is
// no error.
func unmountShm(ctx context.Context, dir string) {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		log.G(ctx).Warn("unmount container shm", "dir", dir, "error", err)
		return
	}
	os.Remove(dir)
}
