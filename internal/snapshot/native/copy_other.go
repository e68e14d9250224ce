//go:build !linux

package native

import (
	"context"
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// CopyTree copies the tree at src to dst; it needs Linux.
func CopyTree(ctx context.Context, dst, src string) error {
	return fmt.Errorf("copy %s: %w", src, errdefs.ErrNotImplemented)
}
