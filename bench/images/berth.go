//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/internal/snapshot/overlay"
)

// berthRoot is an image service over a data root of its own, laid out as
// berthd lays out its own: content, metadata.db, overlay snapshots, tmp.
type berthRoot struct {
	dir string
	svc *image.Service
	db  *metadata.DB
	sn  *overlay.Snapshotter
}

// openBerth makes a fresh data root at dir (which must not exist) and an
// image service over it whose registry client talks to loopback
// registries over plain HTTP.
func openBerth(dir string) (*berthRoot, error) {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, err
	}
	b := &berthRoot{dir: dir}
	cs, err := content.Open(filepath.Join(dir, "content"), filepath.Join(dir, "tmp"))
	if err != nil {
		return nil, errors.Join(err, b.close())
	}
	if b.db, err = metadata.Open(filepath.Join(dir, "metadata.db")); err != nil {
		return nil, errors.Join(err, b.close())
	}
	if b.sn, err = overlay.New(filepath.Join(dir, "snapshots"), b.db.Bolt()); err != nil {
		return nil, errors.Join(err, b.close())
	}
	b.svc = image.New(image.Config{
		Content: cs, DB: b.db, Snapshotter: b.sn, Overlay: true,
		Registry: registry.New(registry.Options{ConfigDir: filepath.Join(dir, "docker-config")}),
		TmpDir:   filepath.Join(dir, "tmp"),
	})
	return b, nil
}

// close closes the stores and removes the data root (committed overlay
// snapshots are plain directories; nothing of it stays mounted).
func (b *berthRoot) close() error {
	if b == nil {
		return nil
	}
	var errs []error
	if b.sn != nil {
		errs = append(errs, b.sn.Close())
	}
	if b.db != nil {
		errs = append(errs, b.db.Close())
	}
	if err := unmountUnder(b.dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove berth root: %w", err))
	}
	return errors.Join(errs...)
}

// fsTopdirFlag is FS_TOPDIR_FL (chattr +T): ext4's Orlov allocator puts
// each directory made in such a directory in a block group of its own
// choosing, away from its parent's.
const fsTopdirFlag = 0x20000

// spreadChildren sets FS_TOPDIR_FL on dir, so that every data root (and
// every docker layer directory) made in it lands in a block group of its
// own. On an ext4 without a journal, creating a file scans the inodes of
// its group deleted in the last minute, one by one, for every create; in
// the group of a tree the bench has just removed that costs about half a
// millisecond per file and would measure the bench's own clean-up instead
// of the implementations. Other file systems ignore the flag or refuse it,
// which is fine.
func spreadChildren(dir string) {
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
