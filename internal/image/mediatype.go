package image

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
)

// Docker's media types, which registries and archives use beside the OCI ones.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
	mediaTypeDockerSchema1      = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mediaTypeDockerSchema1Plain = "application/vnd.docker.distribution.manifest.v1+json"
)

// isIndex reports whether mt is an image index or manifest list.
func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// isManifest reports whether mt is a single-platform image manifest.
func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// layerCompression returns how a layer of media type mt is compressed, or an
// errdefs.ErrNotImplemented error for media types berth cannot unpack.
func layerCompression(mt string) (archive.Compression, error) {
	switch mt {
	case ocispec.MediaTypeImageLayerGzip, MediaTypeDockerLayer, ocispec.MediaTypeImageLayerNonDistributableGzip: //nolint:staticcheck
		return archive.Gzip, nil
	case ocispec.MediaTypeImageLayerZstd, ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck
		return archive.Zstd, nil
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerNonDistributable: //nolint:staticcheck
		return archive.Uncompressed, nil
	}
	return 0, fmt.Errorf("unsupported layer media type %q: %w", mt, errdefs.ErrNotImplemented)
}

// manifestKind sniffs the media type of raw manifest bytes whose declared
// type is mt (which registries sometimes leave empty or generic).
func manifestKind(mt string, raw []byte) (string, error) {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     []json.RawMessage `json:"manifests"`
		Config        json.RawMessage   `json:"config"`
		FSLayers      json.RawMessage   `json:"fsLayers"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return "", fmt.Errorf("parse manifest: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if probe.MediaType != "" {
		mt = probe.MediaType
	}
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	switch {
	case mt == mediaTypeDockerSchema1 || mt == mediaTypeDockerSchema1Plain || probe.FSLayers != nil || probe.SchemaVersion == 1:
		return "", fmt.Errorf("docker image manifest schema 1 is not supported: push the image again with a current client: %w", errdefs.ErrNotImplemented)
	case isIndex(mt) || isManifest(mt):
		return mt, nil
	case mt == "" && probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex, nil
	case mt == "" && probe.Config != nil:
		return ocispec.MediaTypeImageManifest, nil
	}
	return "", fmt.Errorf("unsupported manifest media type %q: %w", mt, errdefs.ErrNotImplemented)
}

// parseManifest decodes and checks a single-platform manifest.
func parseManifest(raw []byte) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("parse manifest: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return m, fmt.Errorf("manifest config digest %q: %w: %w", m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	for i, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil {
			return m, fmt.Errorf("manifest layer %d digest %q: %w: %w", i, l.Digest, err, errdefs.ErrInvalidArgument)
		}
	}
	return m, nil
}

// parseIndex decodes an index or manifest list.
func parseIndex(raw []byte) (ocispec.Index, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return idx, fmt.Errorf("parse index: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return idx, nil
}

// parseConfig decodes an image config and checks it against the manifest's layers.
func parseConfig(raw []byte, layers int) (ocispec.Image, error) {
	var c ocispec.Image
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("parse image config: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if layers >= 0 && len(c.RootFS.DiffIDs) != layers {
		return c, fmt.Errorf("image config has %d diff ids for %d layers: %w", len(c.RootFS.DiffIDs), layers, errdefs.ErrInvalidArgument)
	}
	for i, d := range c.RootFS.DiffIDs {
		if err := d.Validate(); err != nil {
			return c, fmt.Errorf("image config diff id %d %q: %w: %w", i, d, err, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}

// ChainIDs returns the chain ID of each layer prefix: the first is the first
// diff ID, each next one is the digest of "<previous chain ID> <diff ID>".
// Snapshots of unpacked layers are named by chain ID, so images that share a
// base share its snapshots.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}
