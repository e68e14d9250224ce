package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// pushSession returns a session allowed to push to r (and pull from the
// repositories in also).
func (c *Client) pushSession(ctx context.Context, r repoRef, also ...repoRef) (*session, error) {
	scopes := []string{scopeFor(r.path, "pull,push")}
	for _, a := range also {
		if a.path != r.path {
			scopes = append(scopes, scopeFor(a.path, "pull"))
		}
	}
	ep := c.endpointFor(r.domain)
	s, err := c.session(ctx, ep, scopes...)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && errdefs.IsUnauthorized(err) {
			e.Msg = fmt.Sprintf("push access denied for %s on registry %s", r.name, ep)
		}
		return nil, err
	}
	return s, nil
}

// MountBlob asks the registry to link blob d from repository from into repo
// without uploading it. It returns false, and cancels the upload the
// registry started instead, when the registry did not mount it (blob
// unknown, no access to from, or from is on another registry).
func (c *Client) MountBlob(ctx context.Context, repo, from reference.Named, d digest.Digest) (bool, error) {
	r, f := splitRepo(repo), splitRepo(from)
	if err := d.Validate(); err != nil {
		return false, invalid("mount blob %q into %s: bad digest: %v", d, r.name, err)
	}
	if c.endpointFor(r.domain).host != c.endpointFor(f.domain).host {
		return false, nil
	}
	s, err := c.pushSession(ctx, r, f)
	if err != nil {
		return false, err
	}
	q := url.Values{"mount": {d.String()}, "from": {f.path}}
	what := fmt.Sprintf("mount blob %s from %s into %s on registry %s", d, f.name, r.name, s.ep)
	resp, err := s.do(ctx, request{
		method: http.MethodPost,
		url:    s.url("/v2/" + r.path + "/blobs/uploads/?" + q.Encode()),
		retry:  true,
		what:   what,
	})
	if err != nil {
		return false, err
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		resp.Body.Close()
		return true, nil
	case http.StatusAccepted:
		resp.Body.Close()
		if loc, err := location(resp); err == nil {
			s.cancelUpload(ctx, loc)
		}
		return false, nil
	}
	return false, responseError(resp, what)
}

// PushBlob uploads blob desc, read from r, to repo: nothing if the registry
// already has it, else in PATCH chunks of Options.ChunkSize and a final PUT
// with the digest. progress, if not nil, is called with the number of bytes
// sent so far (desc.Size at once when the blob exists). r must yield exactly
// desc.Size bytes with digest desc.Digest, or the upload is cancelled with
// an errdefs.ErrDataLoss error.
func (c *Client) PushBlob(ctx context.Context, repo reference.Named, desc ocispec.Descriptor, r io.Reader, progress func(n int64)) error {
	rr := splitRepo(repo)
	if err := desc.Digest.Validate(); err != nil {
		return invalid("push blob %q to %s: bad digest: %v", desc.Digest, rr.name, err)
	}
	if desc.Size < 0 {
		return invalid("push blob %s to %s: negative size %d", desc.Digest, rr.name, desc.Size)
	}
	if progress == nil {
		progress = func(int64) {}
	}
	s, err := c.pushSession(ctx, rr)
	if err != nil {
		return err
	}
	exists, err := s.blobExists(ctx, rr, desc.Digest)
	if err != nil {
		return err
	}
	if exists {
		progress(desc.Size)
		return nil
	}
	what := fmt.Sprintf("push blob %s to %s on registry %s", desc.Digest, rr.name, s.ep)
	return s.pushBlob(ctx, rr, desc, r, progress, what)
}

// cancelUpload deletes an unfinished upload, even if ctx has ended.
func (s *session) cancelUpload(ctx context.Context, loc *url.URL) {
	if loc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	resp, err := s.do(ctx, request{method: http.MethodDelete, url: loc.String(), what: "cancel upload"})
	if err != nil {
		log.G(ctx).Debug("cancel blob upload", "error", err)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// location returns the Location of resp resolved against its request.
func location(resp *http.Response) (*url.URL, error) {
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("registry sent no upload location: %w", err)
	}
	return loc, nil
}

// PushManifest uploads the manifest or index raw with mediaType as ref: by
// digest if ref has one (which must be raw's), else by tag ("latest" if
// none). It returns raw's digest.
func (c *Client) PushManifest(ctx context.Context, ref reference.Named, mediaType string, raw []byte) (digest.Digest, error) {
	r := splitRepo(ref)
	if mediaType == "" {
		return "", invalid("push manifest to %s: no media type", reference.FamiliarString(ref))
	}
	if len(raw) > maxManifestSize {
		return "", invalid("push manifest to %s: larger than %d bytes", reference.FamiliarString(ref), maxManifestSize)
	}
	dgst := digest.Canonical.FromBytes(raw)
	ident := "latest"
	if d, ok := ref.(reference.Digested); ok {
		if err := d.Digest().Validate(); err != nil {
			return "", invalid("push manifest to %s: bad digest: %v", reference.FamiliarString(ref), err)
		}
		dgst = d.Digest().Algorithm().FromBytes(raw)
		if dgst != d.Digest() {
			return "", invalid("push manifest to %s: content has digest %s", reference.FamiliarString(ref), dgst)
		}
		ident = dgst.String()
	} else if t, ok := ref.(reference.Tagged); ok {
		ident = t.Tag()
	}
	s, err := c.pushSession(ctx, r)
	if err != nil {
		return "", err
	}
	what := fmt.Sprintf("push manifest %s on registry %s", identName(r, ident), s.ep)
	resp, err := s.do(ctx, request{
		method: http.MethodPut,
		url:    s.url("/v2/" + r.path + "/manifests/" + ident),
		header: http.Header{"Content-Type": {mediaType}},
		body:   raw,
		retry:  true,
		what:   what,
	})
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return "", responseError(resp, what)
	}
	resp.Body.Close()
	if h := digest.Digest(resp.Header.Get("Docker-Content-Digest")); h != "" && h.Validate() == nil &&
		h.Algorithm() == dgst.Algorithm() && h != dgst {
		return "", dataLoss("%s: registry stored digest %s, content has %s", what, h, dgst)
	}
	return dgst, nil
}
