package seccomp

import (
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// invalidf returns an error of class errdefs.ErrInvalidArgument whose
// message is exactly the formatted text (which may wrap a cause with %w).
func invalidf(format string, args ...any) error {
	return &classified{err: fmt.Errorf(format, args...), class: errdefs.ErrInvalidArgument}
}
