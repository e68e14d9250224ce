package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// errUploadLost says the registry no longer has an upload we can resume
// (distribution drops an upload whose chunk arrived only in part).
var errUploadLost = errors.New("the registry lost the upload")

// pushBlob starts an upload and sends r through it. When a chunk fails the
// upload is resumed where the registry says it stopped; when the registry
// lost the upload and r can seek, a new upload starts from the beginning.
// Either way at most Options.Retries times in all.
func (s *session) pushBlob(ctx context.Context, rr repoRef, desc ocispec.Descriptor, r io.Reader, progress func(int64), what string) error {
	u := &uploader{s: s, rr: rr, desc: desc, r: r, progress: progress, what: what}
	for {
		loc, err := s.startUpload(ctx, rr, what)
		if err != nil {
			return err
		}
		loc, err = u.run(ctx, loc)
		if err == nil {
			return nil
		}
		s.cancelUpload(ctx, loc)
		seeker, canSeek := r.(io.Seeker)
		if !errors.Is(err, errUploadLost) || !canSeek || u.retries >= s.c.opts.Retries {
			return err
		}
		u.retries++
		log.G(ctx).Info("registry lost the blob upload, starting again", "blob", desc.Digest, "attempt", u.retries)
		if _, serr := seeker.Seek(0, io.SeekStart); serr != nil {
			return fmt.Errorf("%s: rewind content: %w", what, serr)
		}
		if serr := sleep(ctx, backoff(u.retries-1)); serr != nil {
			return transportError(ctx, serr, what)
		}
	}
}

// startUpload POSTs a new upload and returns its location.
func (s *session) startUpload(ctx context.Context, rr repoRef, what string) (*url.URL, error) {
	resp, err := s.do(ctx, request{
		method: http.MethodPost,
		url:    s.url("/v2/" + rr.path + "/blobs/uploads/"),
		retry:  true,
		what:   what,
	})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusAccepted {
		return nil, responseError(resp, what)
	}
	resp.Body.Close()
	loc, err := location(resp)
	if err != nil {
		return nil, &Error{Msg: what, Detail: err.Error(), class: errdefs.ErrUnavailable}
	}
	return loc, nil
}

// uploader sends one blob in chunks, resuming failed chunks.
type uploader struct {
	s        *session
	rr       repoRef
	desc     ocispec.Descriptor
	r        io.Reader
	progress func(int64)
	what     string
	retries  int // failed requests retried so far, across restarts
}

// run sends the content from the start of r through the upload at loc and
// finishes it with the digest. It returns the last upload location, to
// cancel it on error.
func (u *uploader) run(ctx context.Context, loc *url.URL) (*url.URL, error) {
	digester := u.desc.Digest.Algorithm().Digester()
	buf := make([]byte, min(u.s.c.opts.ChunkSize, max(u.desc.Size, 1)))
	var sent int64
	for {
		n, rerr := io.ReadFull(u.r, buf)
		if n > 0 {
			if sent+int64(n) > u.desc.Size {
				return loc, dataLoss("%s: content is larger than its size %d", u.what, u.desc.Size)
			}
			digester.Hash().Write(buf[:n])
			var err error
			if loc, err = u.sendChunk(ctx, loc, sent, buf[:n]); err != nil {
				return loc, err
			}
			sent += int64(n)
			u.progress(sent)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return loc, fmt.Errorf("%s: read content: %w", u.what, rerr)
		}
	}
	if sent != u.desc.Size {
		return loc, dataLoss("%s: content has %d bytes, its size is %d", u.what, sent, u.desc.Size)
	}
	if got := digester.Digest(); got != u.desc.Digest {
		return loc, dataLoss("%s: content has digest %s", u.what, got)
	}
	return u.finish(ctx, loc, sent)
}

// sendChunk PATCHes chunk, which starts at offset start of the blob. When
// the request fails it asks the registry how much it has and sends the
// rest of the chunk from there.
func (u *uploader) sendChunk(ctx context.Context, loc *url.URL, start int64, chunk []byte) (*url.URL, error) {
	what := fmt.Sprintf("%s: chunk at %d", u.what, start)
	var off int64 // bytes of chunk the registry has
	for {
		resp, err := u.s.do(ctx, request{
			method: http.MethodPatch,
			url:    loc.String(),
			header: http.Header{
				"Content-Type":  {"application/octet-stream"},
				"Content-Range": {fmt.Sprintf("%d-%d", start+off, start+int64(len(chunk))-1)},
			},
			body: chunk[off:],
			what: what,
		})
		if err == nil && resp.StatusCode == http.StatusAccepted {
			resp.Body.Close()
			next, err := location(resp)
			if err != nil {
				return loc, &Error{Msg: u.what, Detail: err.Error(), class: errdefs.ErrUnavailable}
			}
			return next, nil
		}
		if err == nil {
			err = responseError(resp, what)
		}
		if !u.retryable(ctx, err) {
			return loc, err
		}
		u.retries++
		log.G(ctx).Debug("blob chunk failed, resuming", "blob", u.desc.Digest, "offset", start+off, "attempt", u.retries, "error", err)
		if serr := sleep(ctx, backoff(u.retries-1)); serr != nil {
			return loc, transportError(ctx, serr, what)
		}
		have, next, serr := u.s.uploadStatus(ctx, loc, what)
		if serr != nil {
			return loc, serr
		}
		loc = next
		if have < start || have > start+int64(len(chunk)) {
			return loc, fmt.Errorf("%s: registry has %d bytes, expected %d to %d: %w", what, have, start, start+int64(len(chunk)), errUploadLost)
		}
		off = have - start
		if off == int64(len(chunk)) {
			return loc, nil
		}
	}
}

// retryable says whether a failed upload request may be resumed: a
// dropped connection, 429 or 5xx, and retries left.
func (u *uploader) retryable(ctx context.Context, err error) bool {
	if u.retries >= u.s.c.opts.Retries || ctx.Err() != nil {
		return false
	}
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	if e.Status != 0 {
		return retryableStatus(e.Status)
	}
	return e.cause != nil && retryableError(ctx, e.cause)
}

// uploadStatus asks the registry how many bytes of the upload at loc it
// has (GET on the upload URL: 204 with Range "0-LAST"), and returns them
// with the upload's new location. An upload the registry no longer knows
// is errUploadLost.
func (s *session) uploadStatus(ctx context.Context, loc *url.URL, what string) (int64, *url.URL, error) {
	resp, err := s.do(ctx, request{method: http.MethodGet, url: loc.String(), retry: true, what: what + ": upload status"})
	if err != nil {
		return 0, loc, err
	}
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		e := responseError(resp, what+": upload status")
		if e.Status == http.StatusNotFound || e.Status == http.StatusBadRequest {
			return 0, loc, fmt.Errorf("%w: %w", e, errUploadLost)
		}
		return 0, loc, e
	}
	resp.Body.Close()
	have, ok := parseUploadRange(resp.Header.Get("Range"))
	if !ok {
		return 0, loc, &Error{Msg: what, Detail: fmt.Sprintf("upload status has a bad Range %q", resp.Header.Get("Range")), class: errdefs.ErrUnavailable}
	}
	if next, err := location(resp); err == nil {
		loc = next
	}
	return have, loc, nil
}

// parseUploadRange returns the byte count of an upload's Range header
// ("0-LAST", optionally "bytes=0-LAST"); no header means nothing received.
func parseUploadRange(v string) (int64, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "bytes=")
	if v == "" {
		return 0, true
	}
	first, last, ok := strings.Cut(v, "-")
	if !ok || first != "0" {
		return 0, false
	}
	n, err := strconv.ParseInt(last, 10, 64)
	if err != nil || n < -1 {
		return 0, false
	}
	return n + 1, true
}

// finish PUTs the digest to complete the upload of size bytes. If the PUT
// fails in a way a retry may fix, the blob may have been stored all the
// same: it is looked for before the PUT is sent again.
func (u *uploader) finish(ctx context.Context, loc *url.URL, size int64) (*url.URL, error) {
	for {
		final := *loc
		q := final.Query()
		q.Set("digest", u.desc.Digest.String())
		final.RawQuery = q.Encode()
		resp, err := u.s.do(ctx, request{
			method: http.MethodPut,
			url:    final.String(),
			header: http.Header{"Content-Type": {"application/octet-stream"}},
			body:   []byte{},
			what:   u.what,
		})
		if err == nil && resp.StatusCode == http.StatusCreated {
			resp.Body.Close()
			return loc, nil
		}
		if err == nil {
			err = responseError(resp, u.what)
		}
		if !u.retryable(ctx, err) {
			return loc, err
		}
		u.retries++
		if serr := sleep(ctx, backoff(u.retries-1)); serr != nil {
			return loc, transportError(ctx, serr, u.what)
		}
		have, next, serr := u.s.uploadStatus(ctx, loc, u.what)
		if errors.Is(serr, errUploadLost) {
			// The PUT may have completed the upload before the answer was lost.
			if ok, herr := u.s.blobExists(ctx, u.rr, u.desc.Digest); herr == nil && ok {
				return nil, nil
			}
		}
		if serr != nil {
			return loc, serr
		}
		if have != size {
			return next, fmt.Errorf("%s: registry has %d bytes of %d: %w", u.what, have, size, errUploadLost)
		}
		loc = next
	}
}
