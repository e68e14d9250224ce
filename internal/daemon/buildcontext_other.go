//go:build !linux

package daemon

import (
	"archive/tar"
	"fmt"
	"io"

	"github.com/berth-project/berth/internal/errdefs"
)

// contextWriter is Linux's: elsewhere build contexts are not extracted.
type contextWriter struct{}

func newContextWriter(string, bool) (*contextWriter, error) {
	return nil, fmt.Errorf("build contexts are extracted on Linux only: %w", errdefs.ErrNotImplemented)
}

func (*contextWriter) close()                                    {}
func (*contextWriter) finish() error                             { return nil }
func (*contextWriter) dir(string, *tar.Header) error             { return nil }
func (*contextWriter) file(string, *tar.Header, io.Reader) error { return nil }
func (*contextWriter) symlink(string, *tar.Header) error         { return nil }
func (*contextWriter) link(string, string) error                 { return nil }
