//go:build !linux

package loopback

import (
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// Up sets "lo" up in the calling thread's network namespace.
func Up() error { return fmt.Errorf("loopback: %w", errdefs.ErrNotImplemented) }
