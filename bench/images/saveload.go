//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/image"
)

// berthSave is berth's side of save-10-layers: Service.Save of the
// 10-layer image, pulled once into a data root kept for the scenario, to a
// new file per run (removed after it).
func (b *bench) berthSave(ctx context.Context) (*impl, error) {
	if b.saved == nil {
		root, err := openBerth(b.path("berth-save"))
		if err != nil {
			return nil, err
		}
		b.saved = root
		if _, err := root.svc.Pull(ctx, b.ten.ref, image.PullOptions{}); err != nil {
			return nil, err
		}
	}
	var file string
	return &impl{
		name:   "berth",
		before: func(ctx context.Context) error { file = b.path("berth-save") + ".tar"; return nil },
		op: func(ctx context.Context) error {
			f, err := os.Create(file)
			if err != nil {
				return err
			}
			err = b.saved.svc.Save(ctx, f, []string{b.ten.ref})
			return errors.Join(err, f.Close())
		},
		after: func(ctx context.Context) error { return os.Remove(file) },
		cpu:   selfCPU,
	}, nil
}

// berthLoad is berth's side of load-10-layers: Service.Load of docker
// save's archive into a fresh data root per run.
func (b *bench) berthLoad() *impl {
	var root *berthRoot
	return &impl{
		name: "berth",
		before: func(ctx context.Context) (err error) {
			root, err = openBerth(b.path("berth-load"))
			return err
		},
		op: func(ctx context.Context) error {
			f, err := os.Open(b.archive)
			if err != nil {
				return err
			}
			defer f.Close()
			imgs, err := root.svc.Load(ctx, f, nil)
			if err == nil && len(imgs) != 1 {
				err = fmt.Errorf("loaded %d images, want 1", len(imgs))
			}
			return err
		},
		after: func(ctx context.Context) error {
			err := root.close()
			root = nil
			return err
		},
		cpu: selfCPU,
	}
}
