package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/snapshot"
)

// Supported checks, with a real test mount in a temporary directory under
// root, that overlayfs can stack layers kept on root's filesystem with the
// options this snapshotter uses. root is created if needed; the test
// directory is removed afterwards.
func Supported(root string) (err error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("overlay support: %w", err)
	}
	dir, err := os.MkdirTemp(root, ".check-")
	if err != nil {
		return fmt.Errorf("overlay support: %w", err)
	}
	merged := filepath.Join(dir, "merged")
	defer func() {
		// Remove only what is surely unmounted.
		if uerr := snapshot.UnmountAll(merged); uerr != nil {
			err = errors.Join(err, uerr)
			return
		}
		if rerr := os.RemoveAll(dir); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	for _, d := range []string{"lower1", "lower2", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("overlay support: %w", err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "lower2", "f"), []byte("x"), 0o644); err != nil {
		return fmt.Errorf("overlay support: %w", err)
	}
	d := driver{options: baseOptions()}
	mounts, _ := d.Mounts(dir, snapshot.KindActive, []string{filepath.Join(dir, "lower1"), filepath.Join(dir, "lower2")})
	// Mounts put the upper dir at fs: use the real layout for the check.
	if err := os.Rename(filepath.Join(dir, "upper"), filepath.Join(dir, "fs")); err != nil {
		return fmt.Errorf("overlay support: %w", err)
	}
	if err := snapshot.MountAll(mounts, merged); err != nil {
		return fmt.Errorf("overlay is not supported on %s: %w: %w", root, err, errdefs.ErrNotImplemented)
	}
	if err := os.WriteFile(filepath.Join(merged, "f"), []byte("y"), 0o644); err != nil {
		return fmt.Errorf("overlay support: write through test mount: %w: %w", err, errdefs.ErrNotImplemented)
	}
	if _, err := os.Stat(filepath.Join(dir, "fs", "f")); err != nil {
		return fmt.Errorf("overlay support: copy-up did not reach the upper dir: %w: %w", err, errdefs.ErrNotImplemented)
	}
	return nil
}
