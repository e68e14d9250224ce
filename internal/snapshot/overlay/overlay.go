// Package overlay is berth's default snapshotter: every snapshot is a plain
// directory and a snapshot is exposed by stacking its parents' directories
// with overlayfs, so layers are never copied. An active snapshot's upper
// dir becomes the new layer when it is committed.
//
// On disk, under root: <id>/fs (the layer's tree, the upper dir of an
// active snapshot) and <id>/work (overlayfs's work dir, active snapshots
// only). Mounts always use index=off and keep metacopy and redirect_dir off,
// so every upper dir stays a plain tree (whiteouts aside) that can be
// diffed and tarred as a layer.
package overlay

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/snapshot/dirstore"
)

// Bucket is the top-level bbolt bucket the overlay snapshotter keeps its
// records in.
const Bucket = "snapshots/overlay"

// Snapshotter is the overlay snapshotter; its methods are those of
// snapshot.Snapshotter.
type Snapshotter struct {
	*dirstore.Store
}

var _ snapshot.Snapshotter = (*Snapshotter)(nil)

// New opens the overlay snapshotter whose data lives in root and whose
// records live in db, which stays the caller's to close. It removes what
// a crash left in root. It does not check that overlayfs works: see
// Supported.
func New(root string, db *bolt.DB) (*Snapshotter, error) {
	s, err := dirstore.Open(context.Background(), root, db, Bucket, driver{options: baseOptions()})
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter: %w", err)
	}
	return &Snapshotter{s}, nil
}

// baseOptions are the options every overlay mount gets: no inode index,
// and metacopy and redirect_dir turned off when the module defaults them
// on, so that upper dirs hold whole files and real renames.
func baseOptions() []string {
	opts := []string{"index=off"}
	for _, p := range []string{"metacopy", "redirect_dir"} {
		v, err := os.ReadFile(filepath.Join("/sys/module/overlay/parameters", p))
		if err == nil && strings.TrimSpace(string(v)) == "Y" {
			opts = append(opts, p+"=off")
		}
	}
	return opts
}

type driver struct {
	options []string
}

func (d driver) Create(ctx context.Context, dir string, kind snapshot.Kind, parents []string) error {
	if err := os.Mkdir(filepath.Join(dir, "fs"), 0o755); err != nil {
		return err
	}
	if kind == snapshot.KindActive && len(parents) > 0 {
		return os.Mkdir(filepath.Join(dir, "work"), 0o700)
	}
	return nil
}

func (d driver) Mounts(dir string, kind snapshot.Kind, parents []string) ([]snapshot.Mount, error) {
	fs := filepath.Join(dir, "fs")
	if kind == snapshot.KindActive {
		if len(parents) == 0 {
			return []snapshot.Mount{{Type: "bind", Source: fs, Options: []string{"rbind", "rw"}}}, nil
		}
		opts := append([]string{}, d.options...)
		opts = append(opts,
			"workdir="+filepath.Join(dir, "work"),
			"upperdir="+fs,
			"lowerdir="+strings.Join(parents, ":"))
		return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: opts}}, nil
	}
	switch len(parents) {
	case 0:
		return []snapshot.Mount{{Type: "bind", Source: fs, Options: []string{"rbind", "ro"}}}, nil
	case 1:
		return []snapshot.Mount{{Type: "bind", Source: parents[0], Options: []string{"rbind", "ro"}}}, nil
	}
	opts := append([]string{"ro"}, d.options...)
	opts = append(opts, "lowerdir="+strings.Join(parents, ":"))
	return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: opts}}, nil
}

func (d driver) Committed(ctx context.Context, dir string) error {
	work := filepath.Join(dir, "work")
	if err := os.RemoveAll(work); err != nil {
		log.G(ctx).Warn("removing overlay work dir", "dir", work, "error", err)
		return err
	}
	return nil
}
