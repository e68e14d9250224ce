//go:build !linux

package volume

import (
	"fmt"
	"io/fs"

	"github.com/berth-project/berth/internal/errdefs"
)

// Volumes with driver options, copy-up and mount checks need Linux; the
// stubs below keep the tree building elsewhere.

type mountOptions struct{}

func parseMountOptions(string) (mountOptions, error) { return mountOptions{}, nil }

func isMounted(string) (bool, error) { return false, nil }

func mountVolume(dir string, _ map[string]string) error {
	return fmt.Errorf("mount volume %s: %w", dir, errdefs.ErrNotImplemented)
}

func unmountVolume(string) error { return nil }

func unmountUnder(string) error { return nil }

func checkPropagation(string, string) error { return nil }

func recursiveReadOnlySupported() bool { return false }

func copyUp(string, string, string) (bool, error) {
	return false, fmt.Errorf("volume copy-up: %w", errdefs.ErrNotImplemented)
}

func devOf(string) (uint64, bool) { return 0, true }

func statIDs(fs.FileInfo) (dev, ino, nlink uint64) { return 0, 0, 1 }
