//go:build !linux

package shim

import (
	"context"
	"fmt"
	"os"

	"github.com/berth-project/berth/internal/errdefs"
)

var errNotLinux = fmt.Errorf("berth-shim runs on Linux only: %w", errdefs.ErrNotImplemented)

// Serve is not implemented on this platform.
func Serve(ctx context.Context, opts Options) error { return errNotLinux }

// Start is not implemented on this platform.
func Start(ctx context.Context, opts StartOptions) (*Client, error) { return nil, errNotLinux }

func dial(path string) (*os.File, error) { return nil, errNotLinux }

func (c *Client) watchShim() (func(context.Context) error, func()) {
	return func(context.Context) error { return nil }, func() {}
}

const maxSocketPath = 107
