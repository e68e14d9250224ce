//go:build !linux

package daemon

import (
	"context"
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
)

// ctrView is the view of a container's file system that docker cp works
// on; it needs Linux.
type ctrView struct{}

var errViewNotLinux = fmt.Errorf("container file system access needs Linux: %w", errdefs.ErrNotImplemented)

func (d *Daemon) openView(ctx context.Context, c *container.Container, running bool) (*ctrView, error) {
	return nil, errViewNotLinux
}

func (v *ctrView) Close() {}

func (v *ctrView) stat(p string) (PathStat, string, error) { return PathStat{}, "", errViewNotLinux }

func (v *ctrView) archive(ctx context.Context, w io.Writer, loc, name string) error {
	return errViewNotLinux
}

func (v *ctrView) extractionDir(p string) (string, error) { return "", errViewNotLinux }

func (v *ctrView) user(spec string) (int, int, error) { return 0, 0, errViewNotLinux }

func (v *ctrView) extract(ctx context.Context, dir string, r io.Reader, opts extractOpts) error {
	return errViewNotLinux
}
