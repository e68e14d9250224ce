package dirstore

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	"github.com/berth-project/berth/internal/snapshot"
)

// DiskUsage measures the tree at dir: the bytes of its regular files and
// symlinks and its inodes (dir itself included), each hard-linked file
// counted once.
func DiskUsage(dir string) (snapshot.Usage, error) {
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	var u snapshot.Usage
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && !fi.IsDir() && st.Nlink > 1 {
			k := inode{uint64(st.Dev), uint64(st.Ino)} //nolint:unconvert // types differ between platforms
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		u.Inodes++
		if fi.Mode().IsRegular() || fi.Mode()&fs.ModeSymlink != 0 {
			u.Size += fi.Size()
		}
		return nil
	})
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("disk usage of %s: %w", dir, err)
	}
	return u, nil
}
