//go:build !linux

package snapshot

import (
	"context"
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// Mount mounts m at target; it needs Linux.
func (m Mount) Mount(target string) error {
	return fmt.Errorf("mount %s at %s: %w", m.Type, target, errdefs.ErrNotImplemented)
}

// MountAll mounts mounts at target, in order; it needs Linux.
func MountAll(mounts []Mount, target string) error {
	return fmt.Errorf("mount at %s: %w", target, errdefs.ErrNotImplemented)
}

// UnmountAll detaches everything mounted at target; it needs Linux.
func UnmountAll(target string) error {
	return fmt.Errorf("unmount %s: %w", target, errdefs.ErrNotImplemented)
}

// WithTempMount mounts mounts in a temporary directory and runs fn; it
// needs Linux.
func WithTempMount(ctx context.Context, mounts []Mount, fn func(root string) error) error {
	return fmt.Errorf("temporary mount: %w", errdefs.ErrNotImplemented)
}
