package registry

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/distribution/reference"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BlobReader streams a blob from a registry. When the connection drops it
// reconnects and resumes where it stopped with a Range request, up to
// Options.Retries times in a row without progress. It does not verify the
// digest (the content store does) but fails with errdefs.ErrDataLoss if the
// registry sends more than the descriptor's size, and with
// errdefs.ErrUnavailable if the stream cannot be completed. Like most
// readers it is not safe for concurrent use: to abort a blocked Read, cancel
// the context given to OpenBlob.
type BlobReader struct {
	ctx     context.Context
	s       *session
	r       repoRef
	desc    ocispec.Descriptor
	timeout time.Duration
	retries int

	start     int64 // offset of the first byte this reader delivers
	pos       int64 // offset of the next byte to deliver
	restarted bool
	failures  int // reconnects in a row without progress

	body   io.ReadCloser
	cancel context.CancelFunc // ends the current request
	idle   *time.Timer        // cancels the current request when a read blocks too long
	err    error              // sticky error
	once   sync.Once
}

// Restarted reports whether the registry ignored the Range request of
// OpenBlob with a non-zero offset, so that the stream starts at byte 0
// instead: the caller must then discard what it had (truncate) and write
// from the start. Later reconnects never restart the caller's stream: when
// the server ignores Range then, the bytes already delivered are skipped.
func (b *BlobReader) Restarted() bool { return b.restarted }

// Offset returns the offset in the blob of the first byte the reader
// delivers: the offset given to OpenBlob, or 0 after a restart.
func (b *BlobReader) Offset() int64 { return b.start }

// OpenBlob streams blob desc of repo starting at offset (0 <= offset <=
// desc.Size). For docker.io the mirrors are tried first. The returned
// io.ReadCloser is a *BlobReader; see its doc for resume and restart.
func (c *Client) OpenBlob(ctx context.Context, repo reference.Named, desc ocispec.Descriptor, offset int64) (io.ReadCloser, error) {
	r := splitRepo(repo)
	if err := desc.Digest.Validate(); err != nil {
		return nil, invalid("open blob %q of %s: bad digest: %v", desc.Digest, r.name, err)
	}
	if desc.Size < 0 || offset < 0 || offset > desc.Size {
		return nil, invalid("open blob %s of %s at offset %d: size is %d", desc.Digest, r.name, offset, desc.Size)
	}
	var firstErr error
	for _, ep := range c.pullEndpoints(r.domain) {
		b := &BlobReader{ctx: ctx, r: r, desc: desc, timeout: c.opts.Timeout, retries: c.opts.Retries, start: offset, pos: offset}
		err := b.open(c, ep)
		if err == nil {
			return b, nil
		}
		if !ep.mirror || ctx.Err() != nil {
			return nil, err
		}
		log.G(ctx).Info("registry mirror failed, trying the next endpoint", "mirror", ep.host, "error", err)
		if firstErr == nil {
			firstErr = err
		}
	}
	return nil, firstErr
}

// open makes the first connection through ep.
func (b *BlobReader) open(c *Client, ep endpoint) error {
	s, err := c.session(b.ctx, ep, scopeFor(b.r.path, "pull"))
	if err != nil {
		return pullError(err, b.r, ep)
	}
	b.s = s
	if b.pos == b.desc.Size {
		return nil // nothing to read
	}
	return b.connect(true)
}

func (b *BlobReader) what() string {
	return fmt.Sprintf("fetch blob %s of %s from registry %s", b.desc.Digest, b.r.name, b.s.ep)
}

// connect GETs the blob from b.pos. first is true for OpenBlob's request.
func (b *BlobReader) connect(first bool) error {
	ctx, cancel := context.WithCancel(b.ctx)
	header := http.Header{}
	if b.pos > 0 {
		header.Set("Range", "bytes="+strconv.FormatInt(b.pos, 10)+"-")
	}
	resp, err := b.s.do(ctx, request{
		method: http.MethodGet,
		url:    b.s.url("/v2/" + b.r.path + "/blobs/" + b.desc.Digest.String()),
		header: header,
		retry:  true,
		what:   b.what(),
	})
	if err != nil {
		cancel()
		return err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		if resp.ContentLength > b.desc.Size {
			resp.Body.Close()
			cancel()
			return dataLoss("%s: registry sends %d bytes for a blob of %d", b.what(), resp.ContentLength, b.desc.Size)
		}
		b.setBody(resp.Body, cancel)
		if b.pos == 0 {
			return nil
		}
		if first {
			log.G(b.ctx).Info("registry ignored the range request, restarting the blob", "blob", b.desc.Digest, "offset", b.pos)
			b.restarted, b.start, b.pos = true, 0, 0
			return nil
		}
		// Skip what the caller already has.
		skip := b.pos
		b.pos = 0
		buf := make([]byte, 32<<10)
		for b.pos < skip {
			n, err := b.readBody(buf[:min(int64(len(buf)), skip-b.pos)])
			b.pos += int64(n)
			if err != nil {
				b.pos = skip
				b.drop()
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return err
			}
		}
		return nil
	case http.StatusPartialContent:
		start, ok := contentRangeStart(resp.Header.Get("Content-Range"))
		if !ok || start != b.pos {
			resp.Body.Close()
			cancel()
			return dataLoss("%s: asked for bytes from %d, got Content-Range %q", b.what(), b.pos, resp.Header.Get("Content-Range"))
		}
		b.setBody(resp.Body, cancel)
		return nil
	default:
		cancel()
		e := responseError(resp, b.what())
		if e.Status == http.StatusNotFound {
			e.Msg = fmt.Sprintf("blob %s of %s not found on registry %s", b.desc.Digest, b.r.name, b.s.ep)
		}
		return pullError(e, b.r, b.s.ep)
	}
}

// contentRangeStart parses the first byte of "bytes START-END/TOTAL".
func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	s, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n, err == nil
}

func (b *BlobReader) setBody(body io.ReadCloser, cancel context.CancelFunc) {
	b.body, b.cancel = body, cancel
	b.idle = time.AfterFunc(time.Hour, cancel)
	b.idle.Stop()
}

// readBody reads from the current body, cancelling the request if the read
// blocks longer than the timeout.
func (b *BlobReader) readBody(p []byte) (int, error) {
	b.idle.Reset(b.timeout)
	n, err := b.body.Read(p)
	b.idle.Stop()
	return n, err
}

// drop ends the current request.
func (b *BlobReader) drop() {
	if b.body == nil {
		return
	}
	b.idle.Stop()
	b.cancel()
	b.body.Close()
	b.body = nil
}

// Read implements io.Reader.
func (b *BlobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	for {
		remaining := b.desc.Size - b.pos
		if b.body == nil {
			if remaining == 0 {
				return 0, io.EOF
			}
			if err := b.connect(false); err != nil {
				if !b.retry(err) {
					return 0, b.err
				}
				continue
			}
		}
		// Read one byte more than is left, to notice an oversized blob.
		if int64(len(p)) > remaining+1 {
			p = p[:remaining+1]
		}
		n, err := b.readBody(p)
		if int64(n) > remaining {
			b.fail(dataLoss("%s: registry sent more than the blob's %d bytes", b.what(), b.desc.Size))
			return 0, b.err
		}
		b.pos += int64(n)
		if n > 0 {
			b.failures = 0
		}
		switch {
		case err == nil:
			if n > 0 {
				return n, nil
			}
			continue
		case err == io.EOF && b.pos == b.desc.Size:
			b.drop()
			return n, io.EOF
		}
		// The stream ended early or broke: reconnect on the next round.
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		b.drop()
		if !b.retry(err) {
			if n > 0 {
				return n, nil
			}
			return 0, b.err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// retry decides whether to reconnect after err, waiting before it does. It
// records the final error and returns false when it gives up.
func (b *BlobReader) retry(err error) bool {
	if b.ctx.Err() != nil {
		b.fail(transportError(b.ctx, err, b.what()))
		return false
	}
	if e, ok := err.(*Error); ok && !retryableStatus(e.Status) && !isStreamError(e) {
		b.fail(err)
		return false
	}
	b.failures++
	if b.failures > b.retries {
		e := transportError(b.ctx, err, b.what())
		e.Msg += fmt.Sprintf(": stream broke at byte %d of %d after %d retries", b.pos, b.desc.Size, b.retries)
		b.fail(e)
		return false
	}
	log.G(b.ctx).Debug("blob stream broke, resuming", "blob", b.desc.Digest, "offset", b.pos, "attempt", b.failures, "error", err)
	if err := sleep(b.ctx, backoff(b.failures-1)); err != nil {
		b.fail(transportError(b.ctx, err, b.what()))
		return false
	}
	return true
}

// isStreamError reports whether e comes from a transport failure (no
// response) that a reconnect may fix.
func isStreamError(e *Error) bool {
	return e.Status == 0 && errdefs.IsUnavailable(e) && !isTLSError(e)
}

func (b *BlobReader) fail(err error) {
	b.err = err
	b.drop()
}

// Close ends the stream.
func (b *BlobReader) Close() error {
	b.once.Do(func() {
		b.drop()
		if b.err == nil {
			b.err = fmt.Errorf("%s: read after close: %w", b.what(), errdefs.ErrInvalidArgument)
		}
	})
	return nil
}
