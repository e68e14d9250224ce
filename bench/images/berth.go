//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-project/berth/bench/internal/workdir"
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
	if err := workdir.UnmountUnder(b.dir); err != nil {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, fmt.Errorf("remove berth root: %w", err))
	}
	return errors.Join(errs...)
}
