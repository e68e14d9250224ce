//go:build !linux

package logfile

import (
	"fmt"

	"github.com/berth-project/berth/internal/errdefs"
)

// watchInotify is Linux only: elsewhere a follow polls.
func watchInotify(path string, wake func()) (stop func(), err error) {
	return nil, fmt.Errorf("inotify: %w", errdefs.ErrNotImplemented)
}
