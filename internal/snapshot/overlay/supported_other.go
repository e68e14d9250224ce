//go:build !linux

package overlay

import (
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// Supported reports that overlayfs needs Linux.
func Supported(root string) error {
	return fmt.Errorf("overlay: %w", errdefs.ErrNotImplemented)
}
