package image

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
)

// ImportOptions say how docker import makes an image of a rootfs tarball.
type ImportOptions struct {
	// Ref, if set, names the image.
	Ref string
	// Changes are Dockerfile instructions applied to the empty config.
	Changes []string
	// Message is the history comment; default "Imported from <Source>".
	Message string
	// Source is where the tarball came from ("-" for standard input, a
	// URL); only used in the default message.
	Source string
	// Platform is the image's OS and architecture; nil means the host's.
	Platform *ocispec.Platform
}

// Import makes a single-layer image of the rootfs tarball r (uncompressed,
// gzip or zstd): the tar becomes the layer as it is, stored gzip-compressed,
// with a config holding the changes and one history entry, and is unpacked
// so the image can run. It returns the image's ID.
func (s *Service) Import(ctx context.Context, r io.Reader, opts ImportOptions) (digest.Digest, error) {
	fail := func(err error) (digest.Digest, error) { return "", fmt.Errorf("import: %w", err) }
	changes, err := parseChanges(opts.Changes)
	if err != nil {
		return fail(err)
	}
	tag, err := parseTagRef(opts.Ref)
	if err != nil {
		return fail(err)
	}
	msg := opts.Message
	if msg == "" {
		src := opts.Source
		if src == "" {
			src = "-"
		}
		msg = "Imported from " + src
	}
	unlock, err := s.beginWork(ctx, "import")
	if err != nil {
		return fail(err)
	}
	defer unlock()
	plain, _, err := archive.Decompress(r)
	if err != nil {
		return fail(err)
	}
	defer plain.Close()
	layer, err := s.writeLayer(ctx, "import", func(w io.Writer) error {
		_, err := io.Copy(w, plain)
		return err
	})
	if err != nil {
		return fail(fmt.Errorf("read tarball: %w", err))
	}
	if layer.Size == 0 {
		return fail(fmt.Errorf("the tarball is empty: %w", errdefs.ErrInvalidArgument))
	}
	// A tar without entries is still the image's one layer, as in Docker.
	img, err := s.createImage(ctx, ImageSpec{Layer: &layer, Comment: msg, Platform: opts.Platform}, changes, tag, true)
	if err != nil {
		return fail(err)
	}
	return img.ID, nil
}
