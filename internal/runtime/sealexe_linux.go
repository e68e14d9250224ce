package runtime

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// sealedSelf returns a read-only handle on the runtime's own binary for the
// init process to execute, so that a container process can never write to
// the host's berth-runtime through /proc/<pid>/exe (CVE-2019-5736).
//
// The fast path opens the binary through a private, never-attached overlay
// mount with no upper layer: the file is read-only at the superblock, which
// no mount flag change can undo. Where overlayfs cannot be mounted, the
// binary is copied into a sealed memfd instead.
//
// emptyDir is an empty directory (the overlay's second lower layer).
func sealedSelf(emptyDir string) (*os.File, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	if f, err := overlaySelf(self, emptyDir); err == nil {
		return f, nil
	}
	return memfdSelf(self)
}

func overlaySelf(self, emptyDir string) (*os.File, error) {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fsfd)
	// A read-only overlay needs two lower layers; the second is empty.
	if err := os.Mkdir(emptyDir, 0o700); err != nil && !os.IsExist(err) {
		return nil, err
	}
	for _, dir := range []string{filepath.Dir(self), emptyDir} {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", dir); err != nil {
			return nil, err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, err
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(mfd)
	fd, err := unix.Openat(mfd, filepath.Base(self), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), self), nil
}

func memfdSelf(self string) (*os.File, error) {
	src, err := os.Open(self)
	if err != nil {
		return nil, fmt.Errorf("open own binary: %w", err)
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth-runtime")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, fmt.Errorf("copy own binary to memfd: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}
