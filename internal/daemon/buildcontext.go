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
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
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
// through a symlink leading out of it (os.Root), symlinks are kept as
// links and never followed, and device nodes and fifos are refused.
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
	tr, err := decompressContext(ctx, r)
	if err != nil {
		return "", err
	}
	defer tr.Close()
	if err := untarContext(ctx, dir, tr); err != nil {
		return "", err
	}
	return dir, nil
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

// untarContext writes the entries of the tar r under dir.
func untarContext(ctx context.Context, dir string, r io.Reader) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	defer root.Close()
	var dirs []*tar.Header // their times are set last, deepest first
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
		if err := extractEntry(root, tr, hdr, rel); err != nil {
			return fmt.Errorf("build context: entry %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir && rel != "." {
			h := *hdr
			h.Name = rel
			dirs = append(dirs, &h)
		}
	}
	slices.SortStableFunc(dirs, func(a, b *tar.Header) int { return strings.Count(b.Name, "/") - strings.Count(a.Name, "/") })
	for _, h := range dirs {
		if err := root.Chtimes(h.Name, h.AccessTime, h.ModTime); err != nil {
			return fmt.Errorf("build context: entry %q: %w", h.Name, err)
		}
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

// extractEntry writes one entry at rel.
func extractEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, rel string) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("device nodes and fifos are not allowed in a build context: %w", errdefs.ErrInvalidArgument)
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	default:
		return fmt.Errorf("unsupported entry type %q: %w", string(hdr.Typeflag), errdefs.ErrInvalidArgument)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("names the context itself but is not a directory: %w", errdefs.ErrInvalidArgument)
		}
		return setMeta(root, rel, hdr)
	}
	if parent := path.Dir(rel); parent != "." {
		if err := root.MkdirAll(parent, 0o755); err != nil {
			return confined(err)
		}
	}
	if err := clearPath(root, rel, hdr.Typeflag == tar.TypeDir); err != nil {
		return confined(err)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := root.Mkdir(rel, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return confined(err)
		}
	case tar.TypeReg:
		f, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return confined(err)
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		var pe *fs.PathError
		switch {
		case errors.As(err, &pe):
			return fmt.Errorf("write: %w", err) // the disk, not the client
		case err != nil:
			return fmt.Errorf("read: %w", contextReadError(err))
		}
	case tar.TypeSymlink:
		if strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return fmt.Errorf("link name contains a NUL byte: %w", errdefs.ErrInvalidArgument)
		}
		if err := root.Symlink(hdr.Linkname, rel); err != nil {
			return confined(err)
		}
		return root.Lchown(rel, hdr.Uid, hdr.Gid)
	case tar.TypeLink:
		target, err := contextName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link: %w", err)
		}
		if err := root.Link(target, rel); err != nil {
			return confined(err)
		}
		return nil // the target's metadata is the link's
	}
	return setMeta(root, rel, hdr)
}

// clearPath removes what an earlier entry of the same name left at rel,
// unless both are directories.
func clearPath(root *os.Root, rel string, dir bool) error {
	fi, err := root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if dir && fi.IsDir() {
		return nil
	}
	return root.RemoveAll(rel)
}

// setMeta gives a file or directory the entry's owner, mode and (files)
// times.
func setMeta(root *os.Root, rel string, hdr *tar.Header) error {
	if err := root.Lchown(rel, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if err := root.Chmod(rel, mode); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg {
		return root.Chtimes(rel, hdr.AccessTime, hdr.ModTime)
	}
	return nil
}

// confined classifies os.Root's refusal to leave the root (a path through
// a symlink that leads out) as invalid input.
func confined(err error) error {
	if err != nil && strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return err
}
