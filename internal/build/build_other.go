//go:build !linux

package build

import (
	"context"
	"fmt"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
)

var errNotLinux = fmt.Errorf("builds need Linux: %w", errdefs.ErrNotImplemented)

func (bd *build) layer(context.Context, *stageState, func(context.Context, string) error) (image.LayerBlob, func(), error) {
	return image.LayerBlob{}, nil, errNotLinux
}

func mkdirInRoot(string, string) error { return errNotLinux }

func (bd *build) runStep(context.Context, *stageState, *instructions.RunCommand) error {
	return errNotLinux
}

func (bd *build) copyStep(context.Context, *stageState, copyArgs) error { return errNotLinux }

func (b *Builder) cleanStale(context.Context) error { return nil }

func (b *Builder) pruneCacheMounts(context.Context) (int64, error) { return 0, nil }
