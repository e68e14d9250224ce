package image

import (
	"context"
	"fmt"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/registry"
)

// maxConcurrentUploads is how many layers of one push upload at once (Docker's default is 5).
const maxConcurrentUploads = 5

// PushOptions tune a push.
type PushOptions struct {
	Progress ProgressFunc
}

// PushResult is docker push's last line: "<tag>: digest: <digest> size: <size>".
type PushResult struct {
	Tag    string
	Digest digest.Digest
	Size   int64
}

// Push uploads the image name (a tag, or a repository to push all its
// tags) to its registry: blobs the registry has are skipped, blobs in
// another repository of the same registry are mounted, the rest uploaded
// in chunks, and the manifest put last under the tag.
func (s *Service) Push(ctx context.Context, name string, opts PushOptions) ([]PushResult, error) {
	reg, err := s.registry("push", name)
	if err != nil {
		return nil, err
	}
	repo, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w: %w", name, err, errdefs.ErrInvalidArgument)
	}
	if _, ok := repo.(reference.Digested); ok {
		return nil, fmt.Errorf("push %s: cannot push a digest reference: %w", name, errdefs.ErrInvalidArgument)
	}
	var tags []reference.NamedTagged
	if t, ok := repo.(reference.NamedTagged); ok {
		tags = append(tags, t)
	} else {
		// A bare repository pushes all its tags, as docker push does.
		all := map[string]digest.Digest{}
		err := s.cfg.DB.View(func(tx *metadata.Tx) error {
			var err error
			all, err = tx.Tags()
			return err
		})
		if err != nil {
			return nil, err
		}
		for n := range all {
			r, err := reference.ParseNormalizedNamed(n)
			if err != nil {
				continue
			}
			if t, ok := r.(reference.NamedTagged); ok && r.Name() == repo.Name() {
				tags = append(tags, t)
			}
		}
		if len(tags) == 0 {
			return nil, noSuchTag(repo)
		}
	}
	opts.Progress.report("", "The push refers to repository ["+repo.Name()+"]", 0, 0)
	var out []PushResult
	for _, t := range tags {
		res, err := s.pushTag(ctx, reg, t, opts.Progress)
		if err != nil {
			return out, fmt.Errorf("push %s: %w", FamiliarString(t), err)
		}
		out = append(out, res)
	}
	return out, nil
}

func (s *Service) pushTag(ctx context.Context, reg *registry.Client, ref reference.NamedTagged, prog ProgressFunc) (PushResult, error) {
	img, err := s.Resolve(ctx, TaggedString(ref))
	if err != nil {
		return PushResult{}, noSuchTag(ref)
	}
	mraw, err := s.cfg.Content.ReadBlob(ctx, img.Manifest.Digest)
	if err != nil {
		return PushResult{}, fmt.Errorf("read manifest: %w", err)
	}
	m, err := parseManifest(mraw)
	if err != nil {
		return PushResult{}, err
	}
	// Repositories of the same registry that hold these blobs already, for
	// cross-repository mounts.
	var sources []reference.Named
	for _, rd := range img.RepoDigests {
		if r, err := reference.ParseNormalizedNamed(rd); err == nil && reference.Domain(r) == reference.Domain(ref) && r.Name() != ref.Name() {
			sources = append(sources, reference.TrimNamed(r))
		}
	}
	for _, l := range m.Layers {
		prog.report(shortID(l.Digest), "Preparing", 0, 0)
	}
	sem := make(chan struct{}, maxConcurrentUploads)
	g, gctx := errgroup.WithContext(ctx)
	for _, l := range m.Layers {
		l := l
		g.Go(func() error {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return gctx.Err()
			}
			defer func() { <-sem }()
			if err := s.pushBlob(gctx, reg, ref, l, sources, prog); err != nil {
				return fmt.Errorf("layer %s: %w", l.Digest, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return PushResult{}, err
	}
	if err := s.pushBlob(ctx, reg, ref, m.Config, sources, nil); err != nil {
		return PushResult{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	mt := img.Manifest.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	d, err := reg.PushManifest(ctx, ref, mt, mraw)
	if err != nil {
		return PushResult{}, err
	}
	// Record where the image now lives, as Docker adds a repo digest on push.
	rd := DigestedName(ref, d)
	err = s.cfg.DB.Update(func(tx *metadata.Tx) error {
		cur, err := tx.GetImage(img.ID)
		if err != nil {
			return err
		}
		if !contains(cur.RepoDigests, rd) {
			cur.RepoDigests = append(cur.RepoDigests, rd)
			return tx.PutImage(cur)
		}
		return nil
	})
	if err != nil {
		return PushResult{}, err
	}
	res := PushResult{Tag: ref.Tag(), Digest: d, Size: int64(len(mraw))}
	prog.report("", fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size), 0, 0)
	return res, nil
}

// pushBlob uploads one blob unless the registry has it or can mount it.
func (s *Service) pushBlob(ctx context.Context, reg *registry.Client, ref reference.Named, desc ocispec.Descriptor, sources []reference.Named, prog ProgressFunc) error {
	id := shortID(desc.Digest)
	repo := reference.TrimNamed(ref)
	ok, err := reg.BlobExists(ctx, repo, desc.Digest)
	if err != nil {
		return err
	}
	if ok {
		prog.report(id, "Layer already exists", 0, 0)
		return nil
	}
	for _, from := range sources {
		ok, err := reg.MountBlob(ctx, repo, from, desc.Digest)
		if err == nil && ok {
			prog.report(id, "Mounted from "+reference.FamiliarName(from), 0, 0)
			return nil
		}
	}
	f, err := s.cfg.Content.Open(ctx, desc.Digest)
	if err != nil {
		return fmt.Errorf("read blob: %w", err)
	}
	defer f.Close()
	err = reg.PushBlob(ctx, repo, desc, f, func(n int64) { prog.report(id, "Pushing", n, desc.Size) })
	if err != nil {
		return err
	}
	prog.report(id, "Pushed", 0, 0)
	return nil
}

// noSuchTag is Docker's error for pushing a name that is not tagged here.
func noSuchTag(ref reference.Named) error {
	return fmt.Errorf("%s: %w", "An image does not exist locally with the tag: "+reference.FamiliarName(ref), errdefs.ErrNotFound)
}
