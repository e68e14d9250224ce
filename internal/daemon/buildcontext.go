package daemon

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
)

// Magic numbers of the build context compressions archive.Decompress does
// not know (it knows gzip and zstd).
var (
	bzip2Magic = []byte{'B', 'Z', 'h'}
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// extractContext unpacks the build context tar r (plain, or compressed
// with gzip, bzip2, xz or zstd, told by its first bytes) into a new
// directory under tmpDir and returns that directory. On error nothing is
// left behind.
//
// The tar comes from a client and is hostile: a name that climbs out of
// the context ("../x") or a hard link to something outside it is refused,
// an absolute name is taken relative to the context, no entry is written
// through a symlink (an entry whose path goes through one is refused),
// symlinks are kept as links and never followed, and device nodes and
// fifos are refused.
func extractContext(ctx context.Context, tmpDir string, r io.Reader) (_ string, err error) {
	dir, err := os.MkdirTemp(tmpDir, "build-context-")
	if err != nil {
		return "", fmt.Errorf("build context: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if err := unpackContext(ctx, dir, false, r); err != nil {
		return "", err
	}
	return dir, nil
}

// unpackContext unpacks the build context tar r into dir, as
// extractContext does. With reused set, dir may hold an earlier context,
// which is brought in line with this one: what matches is kept, what
// differs rewritten, what this one does not name removed. On error dir
// is left in between.
func unpackContext(ctx context.Context, dir string, reused bool, r io.Reader) error {
	tr, err := decompressContext(ctx, r)
	if err != nil {
		return err
	}
	defer tr.Close()
	return untarContext(ctx, dir, reused, tr)
}

// decompressContext returns the tar stream of r, decompressed when its
// first bytes name a compression.
func decompressContext(ctx context.Context, r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(xzMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read build context: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	switch {
	case bytes.HasPrefix(head, bzip2Magic):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, xzMagic):
		return xzReader(ctx, br)
	}
	rc, _, err := archive.Decompress(br)
	if err != nil {
		return nil, fmt.Errorf("read build context: %w", err)
	}
	return rc, nil
}

// xzReader decompresses r with the xz program, as dockerd does: Go's
// standard library has no xz decoder.
func xzReader(ctx context.Context, r io.Reader) (io.ReadCloser, error) {
	if _, err := exec.LookPath("xz"); err != nil {
		return nil, fmt.Errorf("build context is xz-compressed and the xz program is not installed: %w", errdefs.ErrNotImplemented)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	cmd := exec.CommandContext(ctx, "xz", "-d", "-c", "-q")
	var stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = r, pw, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("build context: start xz: %w", err)
	}
	go func() {
		err := cmd.Wait()
		if err != nil {
			err = fmt.Errorf("decompress build context: xz: %v: %s: %w", err, strings.TrimSpace(stderr.String()), errdefs.ErrInvalidArgument)
		}
		pw.CloseWithError(err)
	}()
	return &cancelReader{ReadCloser: pr, cancel: cancel}, nil
}

// cancelReader cancels its context (ending a helper process) when closed.
type cancelReader struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelReader) Close() error {
	c.cancel()
	return c.ReadCloser.Close()
}

// untarContext writes the entries of the tar r under dir (see
// unpackContext).
func untarContext(ctx context.Context, dir string, reused bool, r io.Reader) error {
	w, err := newContextWriter(dir, reused)
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	defer w.close()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read build context: %w", contextReadError(err))
		}
		rel, err := contextName(hdr.Name)
		if err != nil {
			return fmt.Errorf("build context: %w", err)
		}
		if err := extractEntry(w, tr, hdr, rel); err != nil {
			return fmt.Errorf("build context: entry %q: %w", hdr.Name, err)
		}
	}
	if err := w.finish(); err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	return nil
}

// contextReadError classifies a failure to read the tar: the client sent
// something that is not a whole tar archive.
func contextReadError(err error) error {
	if errdefs.IsInvalidArgument(err) || errdefs.IsDataLoss(err) {
		return err
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("the build context tar is truncated: %w", errdefs.ErrInvalidArgument)
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
}

// contextName turns a tar entry name into a clean path relative to the
// context ("." for the context itself). Names that climb out are refused;
// absolute ones are taken relative to the context, as dockerd does.
func contextName(name string) (string, error) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("invalid entry name %q: %w", name, errdefs.ErrInvalidArgument)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("entry %q is outside of the build context: %w", name, errdefs.ErrInvalidArgument)
	}
	c = strings.TrimLeft(c, "/")
	if c == "" {
		c = "."
	}
	return c, nil
}

// extractEntry checks one entry and has w write it at rel.
func extractEntry(w *contextWriter, tr *tar.Reader, hdr *tar.Header, rel string) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("device nodes and fifos are not allowed in a build context: %w", errdefs.ErrInvalidArgument)
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	default:
		return fmt.Errorf("unsupported entry type %q: %w", string(hdr.Typeflag), errdefs.ErrInvalidArgument)
	}
	if rel == "." && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("names the context itself but is not a directory: %w", errdefs.ErrInvalidArgument)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return w.dir(rel, hdr)
	case tar.TypeReg:
		return w.file(rel, hdr, tr)
	case tar.TypeSymlink:
		if strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return fmt.Errorf("link name contains a NUL byte: %w", errdefs.ErrInvalidArgument)
		}
		return w.symlink(rel, hdr)
	default: // tar.TypeLink
		target, err := contextName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link: %w", err)
		}
		return w.link(rel, target)
	}
}

// entryMode is the permission and special bits of an entry.
func entryMode(hdr *tar.Header) uint32 {
	return uint32(hdr.Mode) & 0o7777
}
