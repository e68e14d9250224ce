package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"

	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
)

// cleanStale removes what builds cut short by a crash left: build
// containers in the runtime root, mounts and files in the state dir,
// active build snapshots and build leases. New calls it before any build can run.
func (b *Builder) cleanStale(ctx context.Context) error {
	var errs []error
	entries, err := os.ReadDir(b.cfg.RuntimeRoot)
	if err != nil {
		return fmt.Errorf("clean stale builds: %w", err)
	}
	for _, de := range entries {
		name := de.Name()
		if !de.IsDir() || strings.HasPrefix(name, "@") || strings.HasPrefix(name, ".") {
			continue
		}
		out, err := exec.Command(b.cfg.RuntimePath, "--root", b.cfg.RuntimeRoot, "delete", "--force", name).CombinedOutput()
		if err != nil {
			errs = append(errs, fmt.Errorf("delete stale build container %s: %v: %s", name, err, strings.TrimSpace(string(out))))
		}
	}
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(b.cfg.StateDir))
	if err != nil {
		return fmt.Errorf("clean stale builds: %w", err)
	}
	// Deepest first, so nothing is unmounted from under another mount.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	mounted := false
	for _, m := range mounts {
		if m.Mountpoint == b.cfg.StateDir {
			continue
		}
		if err := snapshot.UnmountAll(m.Mountpoint); err != nil {
			errs = append(errs, err)
			mounted = true
		}
	}
	// Never remove files while something may still be mounted there: a
	// snapshot's contents would go with them.
	if !mounted {
		entries, err := os.ReadDir(b.cfg.StateDir)
		if err != nil {
			return fmt.Errorf("clean stale builds: %w", err)
		}
		for _, de := range entries {
			if err := os.RemoveAll(filepath.Join(b.cfg.StateDir, de.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	var stale []string
	err = b.cfg.Snapshotter.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		if info.Kind == snapshot.KindActive && strings.HasPrefix(info.Name, "build-") {
			stale = append(stale, info.Name)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	for _, key := range stale {
		if err := b.cfg.Snapshotter.Remove(ctx, key); err != nil {
			errs = append(errs, fmt.Errorf("remove stale build snapshot %s: %w", key, err))
		}
	}
	err = b.cfg.DB.Update(func(tx *metadata.Tx) error {
		leases, err := tx.Leases()
		if err != nil {
			return err
		}
		for _, l := range leases {
			if strings.HasPrefix(l.ID, "build-") {
				if err := tx.DeleteLease(l.ID); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("clean stale builds: %w", err)
	}
	return nil
}
