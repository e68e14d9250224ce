package daemon

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// TestExtractContextDiskFull extracts a context larger than the file
// system it lands on (a 256 KiB tmpfs): the error says the device is full
// and nothing is left behind.
func TestExtractContextDiskFull(t *testing.T) {
	tmp := t.TempDir()
	if err := unix.Mount("tmpfs", tmp, "tmpfs", 0, "size=256k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(tmp, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", tmp, err)
		}
	})
	data := tarOf(t, file("Dockerfile", "FROM busybox\n", 0o644), file("big", strings.Repeat("x", 1<<20), 0o644))
	dir, err := extractContext(context.Background(), tmp, bytes.NewReader(data))
	if err == nil {
		t.Fatalf("a 1 MiB context fit in a 256 KiB file system at %s", dir)
	}
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), `"big"`) {
		t.Errorf("error does not say the disk is full writing big: %v", err)
	}
	if errdefs.IsInvalidArgument(err) {
		t.Errorf("a full disk is blamed on the client's input: %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("a failed extraction left %v in %s", left, filepath.Base(tmp))
	}
}
