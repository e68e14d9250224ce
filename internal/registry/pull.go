package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Docker's manifest media types (OCI's are in ocispec).
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// manifestAccept is the Accept header of manifest requests.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList,
	MediaTypeDockerManifest,
}, ", ")

// Resolve returns the descriptor and raw bytes of the manifest or index that
// ref names: by digest if it has one, else by tag ("latest" if none). For
// docker.io the mirrors are tried first. Content fetched by digest is
// verified; content fetched by tag is checked against the registry's
// Docker-Content-Digest header when it sends one.
func (c *Client) Resolve(ctx context.Context, ref reference.Named) (ocispec.Descriptor, []byte, error) {
	r := splitRepo(ref)
	ident, want := "latest", digest.Digest("")
	if d, ok := ref.(reference.Digested); ok {
		want = d.Digest()
		if err := want.Validate(); err != nil {
			return ocispec.Descriptor{}, nil, invalid("resolve %s: bad digest: %v", reference.FamiliarString(ref), err)
		}
		ident = want.String()
	} else if t, ok := ref.(reference.Tagged); ok {
		ident = t.Tag()
	}
	return c.pullManifest(ctx, r, ident, want)
}

// FetchManifest returns the manifest or index d in repo and its
// descriptor, after checking that its bytes have digest d.
func (c *Client) FetchManifest(ctx context.Context, repo reference.Named, d digest.Digest) ([]byte, ocispec.Descriptor, error) {
	if err := d.Validate(); err != nil {
		return nil, ocispec.Descriptor{}, invalid("fetch manifest %q of %s: bad digest: %v", d, reference.FamiliarName(repo), err)
	}
	desc, raw, err := c.pullManifest(ctx, splitRepo(repo), d.String(), d)
	return raw, desc, err
}

// pullManifest tries each pull endpoint of r in turn.
func (c *Client) pullManifest(ctx context.Context, r repoRef, ident string, want digest.Digest) (ocispec.Descriptor, []byte, error) {
	var firstErr error
	for _, ep := range c.pullEndpoints(r.domain) {
		desc, raw, err := c.fetchManifest(ctx, ep, r, ident, want)
		if err == nil {
			return desc, raw, nil
		}
		if !ep.mirror || ctx.Err() != nil {
			return ocispec.Descriptor{}, nil, err
		}
		log.G(ctx).Info("registry mirror failed, trying the next endpoint", "mirror", ep.host, "error", err)
		if firstErr == nil {
			firstErr = err
		}
	}
	return ocispec.Descriptor{}, nil, firstErr
}

// identName is how messages name a manifest: "repo:tag" or "repo@digest".
func identName(r repoRef, ident string) string {
	if strings.Contains(ident, ":") {
		return r.name + "@" + ident
	}
	return r.name + ":" + ident
}

// fetchManifest GETs a manifest from one endpoint and checks it.
func (c *Client) fetchManifest(ctx context.Context, ep endpoint, r repoRef, ident string, want digest.Digest) (ocispec.Descriptor, []byte, error) {
	s, err := c.session(ctx, ep, scopeFor(r.path, "pull"))
	if err != nil {
		return ocispec.Descriptor{}, nil, pullError(err, r, ep)
	}
	what := fmt.Sprintf("fetch manifest %s from registry %s", identName(r, ident), ep)
	resp, err := s.do(ctx, request{
		method: http.MethodGet,
		url:    s.url("/v2/" + r.path + "/manifests/" + ident),
		header: http.Header{"Accept": {manifestAccept}},
		retry:  true,
		what:   what,
	})
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		e := responseError(resp, what)
		if e.Status == http.StatusNotFound {
			e.Msg = fmt.Sprintf("manifest for %s not found", identName(r, ident))
			e.Detail = "registry " + ep.String() + ": " + e.Detail
		}
		return ocispec.Descriptor{}, nil, pullError(e, r, ep)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, transportError(ctx, err, what)
	}
	if len(raw) > maxManifestSize {
		return ocispec.Descriptor{}, nil, invalid("%s: manifest larger than %d bytes", what, maxManifestSize)
	}
	alg := digest.Canonical
	if want != "" {
		alg = want.Algorithm()
	}
	got := alg.FromBytes(raw)
	if want != "" && got != want {
		return ocispec.Descriptor{}, nil, dataLoss("%s: content has digest %s", what, got)
	}
	if h := digest.Digest(resp.Header.Get("Docker-Content-Digest")); want == "" && h != "" && h.Validate() == nil {
		if h.Algorithm() != alg {
			got = h.Algorithm().FromBytes(raw)
		}
		if got != h {
			return ocispec.Descriptor{}, nil, dataLoss("%s: content has digest %s but the registry says %s", what, got, h)
		}
	}
	mt, err := manifestMediaType(resp.Header.Get("Content-Type"), raw)
	if err != nil {
		return ocispec.Descriptor{}, nil, invalid("%s: %v", what, err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(raw))}, raw, nil
}

// manifestMediaType returns the media type of a manifest: its Content-Type,
// or if that is missing or generic, the mediaType field of its JSON.
func manifestMediaType(contentType string, raw []byte) (string, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err == nil && mt != "" && mt != "application/json" && mt != "text/plain" && mt != "application/octet-stream" {
		return mt, nil
	}
	var m struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Config    json.RawMessage   `json:"config"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("manifest is not JSON: %v", err)
	}
	switch {
	case m.MediaType != "":
		return m.MediaType, nil
	case m.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	case m.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", errors.New("cannot tell the manifest's media type")
}

// pullError turns an authorization failure into Docker's message for pulls.
func pullError(err error, r repoRef, ep endpoint) error {
	var e *Error
	if errors.As(err, &e) && errors.Is(e.class, errdefs.ErrUnauthorized) {
		return &Error{
			Msg:    fmt.Sprintf("pull access denied for %s, repository does not exist or may require authorization", r.name),
			Status: e.Status,
			Detail: "registry " + ep.String() + ": " + e.Detail,
			class:  errdefs.ErrUnauthorized,
			cause:  e.cause,
		}
	}
	return err
}

// BlobExists reports whether blob d is in repo.
func (c *Client) BlobExists(ctx context.Context, repo reference.Named, d digest.Digest) (bool, error) {
	r := splitRepo(repo)
	ep := c.endpointFor(r.domain)
	s, err := c.session(ctx, ep, scopeFor(r.path, "pull"))
	if err != nil {
		return false, pullError(err, r, ep)
	}
	return s.blobExists(ctx, r, d)
}

func (s *session) blobExists(ctx context.Context, r repoRef, d digest.Digest) (bool, error) {
	if err := d.Validate(); err != nil {
		return false, invalid("check blob %q in %s: bad digest: %v", d, r.name, err)
	}
	what := fmt.Sprintf("check blob %s in %s on registry %s", d, r.name, s.ep)
	resp, err := s.do(ctx, request{
		method: http.MethodHead,
		url:    s.url("/v2/" + r.path + "/blobs/" + d.String()),
		retry:  true,
		what:   what,
	})
	if err != nil {
		return false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		resp.Body.Close()
		return true, nil
	case http.StatusNotFound:
		resp.Body.Close()
		return false, nil
	}
	return false, responseError(resp, what)
}
