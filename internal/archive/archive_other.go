//go:build !linux

package archive

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/errdefs"
)

var errNotLinux = fmt.Errorf("archive: layers need Linux: %w", errdefs.ErrNotImplemented)

// Apply is only implemented on Linux.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (int64, error) {
	return 0, errNotLinux
}

// WriteDiff is only implemented on Linux.
func WriteDiff(ctx context.Context, w io.Writer, lower, upper string) error { return errNotLinux }

// WriteOverlayDiff is only implemented on Linux.
func WriteOverlayDiff(ctx context.Context, w io.Writer, upper string) error { return errNotLinux }

// WriteTree is only implemented on Linux.
func WriteTree(ctx context.Context, w io.Writer, root string) error { return errNotLinux }

// Changes is only implemented on Linux.
func Changes(ctx context.Context, lower, upper string) ([]Change, error) { return nil, errNotLinux }

// OverlayChanges is only implemented on Linux.
func OverlayChanges(ctx context.Context, upper string, lowers []string) ([]Change, error) {
	return nil, errNotLinux
}
