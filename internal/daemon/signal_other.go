//go:build !linux

package daemon

import (
	"fmt"
	"syscall"

	"github.com/berth-project/berth/internal/errdefs"
)

func parseSignal(s string) (syscall.Signal, error) {
	return 0, fmt.Errorf("signal %s: %w", s, errdefs.ErrNotImplemented)
}
