//go:build !linux

package daemon

import (
	"context"
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

func mountShm(dir string, size int64) error {
	return fmt.Errorf("shareable IPC needs Linux: %w", errdefs.ErrNotImplemented)
}

func unmountShm(ctx context.Context, dir string) {}
