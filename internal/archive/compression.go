package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/berth-project/berth/internal/errdefs"
)

// Compression is the compression of a layer stream.
type Compression int

// The compressions berth reads and writes.
const (
	Uncompressed Compression = iota
	Gzip
	Zstd
)

// String returns "uncompressed", "gzip" or "zstd".
func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// DetectCompression tells the compression of a stream from its first bytes
// (at least 4 are needed to recognise zstd).
func DetectCompression(header []byte) Compression {
	switch {
	case bytes.HasPrefix(header, gzipMagic):
		return Gzip
	case bytes.HasPrefix(header, zstdMagic):
		return Zstd
	}
	return Uncompressed
}

// Decompress sniffs the compression of r and returns a reader of the
// decompressed stream. Read errors from a corrupt stream are classified
// errdefs.ErrDataLoss. Close releases the decoder; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(zstdMagic))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, Uncompressed, fmt.Errorf("detect compression: %w", err)
	}
	c := DetectCompression(head)
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, dataLoss(fmt.Errorf("open gzip stream: %w", err))
		}
		return &classifyReader{r: zr, close: zr.Close}, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, c, dataLoss(fmt.Errorf("open zstd stream: %w", err))
		}
		return &classifyReader{r: zr, close: func() error { zr.Close(); return nil }}, c, nil
	}
	return io.NopCloser(br), c, nil
}

// classifyReader marks read errors of a decoder as data loss.
type classifyReader struct {
	r     io.Reader
	close func() error
}

func (c *classifyReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && err != io.EOF {
		err = dataLoss(fmt.Errorf("decompress: %w", err))
	}
	return n, err
}

func (c *classifyReader) Close() error { return c.close() }

// Compress returns a writer that compresses into w with c. Close flushes
// the compressed stream; it does not close w.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		return gzip.NewWriter(w), nil
	case Zstd:
		zw, err := zstd.NewWriter(w)
		if err != nil {
			return nil, fmt.Errorf("open zstd writer: %w", err)
		}
		return zw, nil
	}
	return nil, fmt.Errorf("compress: unknown compression %d: %w", int(c), errdefs.ErrInvalidArgument)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// classified is an error that keeps its own message and also matches an
// errdefs class with errors.Is.
type classified struct {
	err   error
	class error
}

func (c *classified) Error() string   { return c.err.Error() }
func (c *classified) Unwrap() []error { return []error{c.err, c.class} }

func dataLoss(err error) error {
	if errors.Is(err, errdefs.ErrDataLoss) {
		return err
	}
	return &classified{err: err, class: errdefs.ErrDataLoss}
}

func invalid(format string, args ...any) error {
	return &classified{err: fmt.Errorf(format, args...), class: errdefs.ErrInvalidArgument}
}
