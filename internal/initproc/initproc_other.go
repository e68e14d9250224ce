//go:build !linux

package initproc

import (
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/errdefs"
)

// Run is berth-init's job (see the package doc); it needs Linux.
func Run(argv []string, stderr io.Writer) int {
	fmt.Fprintf(stderr, "berth-init: %v\n", fmt.Errorf("init on this platform: %w", errdefs.ErrNotImplemented))
	return ExitCannotExec
}
