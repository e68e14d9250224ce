// Package native is the snapshotter for hosts without overlayfs: every
// active snapshot and view is a full copy of its parent's tree (ownership,
// modes, times, xattrs, devices, symlinks and hard links preserved),
// exposed with a bind mount. Commit keeps the tree as it is. It costs a
// copy per snapshot and disk per layer, but needs nothing of the kernel
// beyond bind mounts.
//
// On disk, under root: <id>/fs, the snapshot's whole tree.
package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/snapshot/dirstore"
)

// Bucket is the top-level bbolt bucket the native snapshotter keeps its
// records in.
const Bucket = "snapshots/native"

// Snapshotter is the native snapshotter; its methods are those of
// snapshot.Snapshotter.
type Snapshotter struct {
	*dirstore.Store
}

var _ snapshot.Snapshotter = (*Snapshotter)(nil)

// New opens the native snapshotter whose data lives in root and whose
// records live in db, which stays the caller's to close. It removes what
// a crash left in root.
func New(root string, db *bolt.DB) (*Snapshotter, error) {
	s, err := dirstore.Open(context.Background(), root, db, Bucket, driver{})
	if err != nil {
		return nil, fmt.Errorf("native snapshotter: %w", err)
	}
	return &Snapshotter{s}, nil
}

type driver struct{}

func (driver) Create(ctx context.Context, dir string, kind snapshot.Kind, parents []string) error {
	fs := filepath.Join(dir, "fs")
	if len(parents) == 0 {
		return os.Mkdir(fs, 0o755)
	}
	if err := CopyTree(ctx, fs, parents[0]); err != nil {
		return fmt.Errorf("copy parent: %w", err)
	}
	return nil
}

func (driver) Mounts(dir string, kind snapshot.Kind, parents []string) ([]snapshot.Mount, error) {
	opts := []string{"rbind", "rw"}
	if kind != snapshot.KindActive {
		opts = []string{"rbind", "ro"}
	}
	return []snapshot.Mount{{Type: "bind", Source: filepath.Join(dir, "fs"), Options: opts}}, nil
}

func (driver) Committed(ctx context.Context, dir string) error { return nil }
