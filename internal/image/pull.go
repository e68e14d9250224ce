package image

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/registry"
)

// maxConcurrentDownloads is how many layers of one pull download at once (Docker's default).
const maxConcurrentDownloads = 3

// PullOptions tune a pull.
type PullOptions struct {
	// Platform to select from an index; nil means the service's default.
	Platform *ocispec.Platform
	Progress ProgressFunc
}

// PullResult says what a pull did.
type PullResult struct {
	Image metadata.Image
	// Digest is what the reference resolved to in the registry (the
	// index's digest for a multi-platform image), Docker's "Digest:" line.
	Digest digest.Digest
	// Updated is false when the image was already there under that name.
	Updated bool
}

// Pull downloads the image name from its registry, unpacks its layers and
// records it under that name. Layers download in parallel and the first
// (and every layer whose parent is ready) is unpacked while it downloads.
// On error nothing new is visible: no image record, no tag, and no half
// unpacked snapshot (completed layers stay for the retry).
func (s *Service) Pull(ctx context.Context, name string, opts PullOptions) (PullResult, error) {
	reg, err := s.registry("pull", name)
	if err != nil {
		return PullResult{}, err
	}
	ref, err := ParseReference(name)
	if err != nil {
		return PullResult{}, err
	}
	platform := *s.cfg.Platform
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	prog := opts.Progress
	fail := func(err error) (PullResult, error) {
		return PullResult{}, fmt.Errorf("pull %s: %w", FamiliarString(ref), err)
	}
	unlock, err := s.beginWork(ctx, "pull")
	if err != nil {
		return fail(err)
	}
	defer unlock()

	top, raw, err := reg.Resolve(ctx, ref)
	if err != nil {
		return fail(err)
	}
	if tagged, ok := ref.(reference.Tagged); ok {
		prog.report(tagged.Tag(), "Pulling from "+reference.Path(ref), 0, 0)
	}
	var index *ocispec.Descriptor
	mdesc, mraw := top, raw
	kind, err := manifestKind(top.MediaType, raw)
	if err != nil {
		return fail(err)
	}
	top.MediaType = kind
	blobs := []blobToStore{}
	if isIndex(kind) {
		idx, err := parseIndex(raw)
		if err != nil {
			return fail(err)
		}
		sel, err := SelectManifest(idx.Manifests, platform)
		if err != nil {
			return fail(err)
		}
		mraw, mdesc, err = reg.FetchManifest(ctx, ref, sel.Digest)
		if err != nil {
			return fail(err)
		}
		if mdesc.MediaType == "" {
			mdesc.MediaType = sel.MediaType
		}
		mdesc.Platform = sel.Platform
		t := top
		index = &t
		blobs = append(blobs, blobToStore{top, raw})
	}
	mkind, err := manifestKind(mdesc.MediaType, mraw)
	if err != nil {
		return fail(err)
	}
	if !isManifest(mkind) {
		return fail(fmt.Errorf("index entry %s is not an image manifest (%s): %w", mdesc.Digest, mkind, errdefs.ErrInvalidArgument))
	}
	mdesc.MediaType = mkind
	m, err := parseManifest(mraw)
	if err != nil {
		return fail(err)
	}
	cfgRaw, err := s.fetchSmallBlob(ctx, reg, ref, m.Config)
	if err != nil {
		return fail(fmt.Errorf("config %s: %w", m.Config.Digest, err))
	}
	conf, err := parseConfig(cfgRaw, len(m.Layers))
	if err != nil {
		return fail(err)
	}
	if index == nil && conf.OS != "" && conf.OS != platform.OS {
		return fail(fmt.Errorf("image is for %s/%s, not %s: %w", conf.OS, conf.Architecture, FormatPlatform(platform), errdefs.ErrInvalidArgument))
	}
	if mdesc.Platform == nil {
		mdesc.Platform = &ocispec.Platform{OS: conf.OS, Architecture: conf.Architecture, Variant: conf.Variant}
	}
	for _, l := range m.Layers {
		if _, err := layerCompression(l.MediaType); err != nil {
			return fail(fmt.Errorf("layer %s: %w", l.Digest, err))
		}
	}
	if err := s.pullLayers(ctx, reg, ref, m.Layers, conf.RootFS.DiffIDs, prog); err != nil {
		return fail(err)
	}
	blobs = append(blobs, blobToStore{mdesc, mraw}, blobToStore{m.Config, cfgRaw})
	for _, b := range blobs {
		if err := s.cfg.Content.WriteBlob(ctx, bytesReader(b.data), b.desc); err != nil {
			return fail(fmt.Errorf("store %s: %w", b.desc.Digest, err))
		}
	}
	img, updated, err := s.record(ctx, m.Config.Digest, mdesc, index, ref, top.Digest)
	if err != nil {
		return fail(err)
	}
	return PullResult{Image: img, Digest: top.Digest, Updated: updated}, nil
}

type blobToStore struct {
	desc ocispec.Descriptor
	data []byte
}

// record adds or updates the image record id after a pull and points the
// tag of ref at it, in one transaction.
func (s *Service) record(ctx context.Context, id digest.Digest, mdesc ocispec.Descriptor, index *ocispec.Descriptor, ref reference.Named, repoDigest digest.Digest) (metadata.Image, bool, error) {
	var img metadata.Image
	updated := false
	err := s.cfg.DB.Update(func(tx *metadata.Tx) error {
		var err error
		img, err = tx.GetImage(id)
		switch {
		case errdefs.IsNotFound(err):
			img = metadata.Image{ID: id, Manifest: mdesc, Index: index, Created: time.Now().UTC()}
			updated = true
		case err != nil:
			return err
		}
		if index != nil {
			img.Index = index
		}
		rd := DigestedName(ref, repoDigest)
		if !contains(img.RepoDigests, rd) {
			img.RepoDigests = append(img.RepoDigests, rd)
		}
		tagged, isTagged := ref.(reference.NamedTagged)
		if isTagged {
			old, err := tx.Tag(TaggedString(tagged))
			if err != nil && !errdefs.IsNotFound(err) {
				return err
			}
			if old != id {
				updated = true
				img.LastTagTime = time.Now().UTC()
			}
		}
		if err := tx.PutImage(img); err != nil {
			return err
		}
		if isTagged {
			return tx.SetTag(TaggedString(tagged), id)
		}
		return nil
	})
	if err != nil {
		return img, false, fmt.Errorf("record image %s: %w", shortID(id), err)
	}
	return img, updated, nil
}

// pullLayers makes sure every layer is in the content store and unpacked.
func (s *Service) pullLayers(ctx context.Context, reg *registry.Client, ref reference.Named, layers []ocispec.Descriptor, diffIDs []digest.Digest, prog ProgressFunc) error {
	chain := ChainIDs(diffIDs)
	done := make([]chan struct{}, len(layers))
	for i := range done {
		done[i] = make(chan struct{})
	}
	for i, l := range layers {
		have, err := s.haveSnapshot(ctx, chain[i])
		if err != nil {
			return err
		}
		_, infoErr := s.cfg.Content.Info(ctx, l.Digest)
		if have && infoErr == nil {
			prog.report(shortID(l.Digest), "Already exists", 0, 0)
		} else {
			prog.report(shortID(l.Digest), "Pulling fs layer", 0, 0)
		}
	}
	sem := make(chan struct{}, maxConcurrentDownloads)
	g, gctx := errgroup.WithContext(ctx)
	for i := range layers {
		i := i
		g.Go(func() error {
			l := layerToUnpack{chainID: chain[i], diffID: diffIDs[i]}
			var parentDone chan struct{}
			if i > 0 {
				l.parent = chain[i-1]
				parentDone = done[i-1]
			}
			err := s.pullLayer(gctx, reg, ref, layers[i], l, parentDone, sem, prog)
			if err != nil {
				return fmt.Errorf("layer %s: %w", layers[i].Digest, err)
			}
			close(done[i])
			return nil
		})
	}
	return g.Wait()
}

// pullLayer downloads and unpacks one layer. When its parent is ready as
// the download starts, the layer streams from the network through the
// content store into its snapshot in one pass; otherwise it downloads into
// the content store and unpacks from there once the parent is ready.
func (s *Service) pullLayer(ctx context.Context, reg *registry.Client, ref reference.Named, desc ocispec.Descriptor, l layerToUnpack, parentDone chan struct{}, sem chan struct{}, prog ProgressFunc) error {
	id := shortID(desc.Digest)
	waitParent := func() error {
		if parentDone == nil {
			return nil
		}
		select {
		case <-parentDone:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	have, err := s.haveSnapshot(ctx, l.chainID)
	if err != nil {
		return err
	}
	if _, err := s.cfg.Content.Info(ctx, desc.Digest); err == nil {
		if have {
			return nil
		}
		if err := waitParent(); err != nil {
			return err
		}
		return s.unpackBlob(ctx, desc, l, prog)
	}
	select {
	case sem <- struct{}{}:
	default:
		prog.report(id, "Waiting", 0, 0)
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	released := false
	release := func() {
		if !released {
			released = true
			<-sem
		}
	}
	defer release()

	unlockBlob := s.lockBlob(desc.Digest)
	defer unlockBlob()
	if _, err := s.cfg.Content.Info(ctx, desc.Digest); err == nil {
		release()
		if have {
			return nil
		}
		if err := waitParent(); err != nil {
			return err
		}
		return s.unpackBlob(ctx, desc, l, prog)
	}
	w, err := s.cfg.Content.Writer(ctx, "pull-"+desc.Digest.String())
	if err != nil {
		return err
	}
	defer w.Close()
	parentReady := parentDone == nil
	if !parentReady {
		select {
		case <-parentDone:
			parentReady = true
		default:
		}
	}
	offset := w.Offset()
	if offset > desc.Size {
		if err := w.Truncate(0); err != nil {
			return err
		}
		offset = 0
	}
	rc, err := reg.OpenBlob(ctx, ref, desc, offset)
	if err != nil {
		return err
	}
	defer rc.Close()
	if br, ok := rc.(interface{ Restarted() bool }); ok && br.Restarted() {
		// The registry ignored the Range request: start over.
		if err := w.Truncate(0); err != nil {
			return err
		}
		offset = 0
	}
	body := io.TeeReader(rc, w)
	if have || !parentReady || offset > 0 {
		// Download only; unpack (if needed) from the store afterwards.
		cr := &countingReader{r: body, n: offset, fn: func(n int64) { prog.report(id, "Downloading", n, desc.Size) }}
		if _, err := io.Copy(io.Discard, cr); err != nil {
			return err
		}
		prog.report(id, "Verifying Checksum", 0, 0)
		if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
			return err
		}
		prog.report(id, "Download complete", 0, 0)
		release()
		unlockBlob()
		if have {
			prog.report(id, "Pull complete", 0, 0)
			return nil
		}
		if err := waitParent(); err != nil {
			return err
		}
		return s.unpackBlob(ctx, desc, l, prog)
	}
	// Stream: network -> content store, and -> decompress -> apply.
	if _, err := s.unpack(ctx, l, body, func(n int64) { prog.report(id, "Downloading", n, desc.Size) }); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, body); err != nil {
		return err
	}
	prog.report(id, "Verifying Checksum", 0, 0)
	if err := w.Commit(ctx, desc.Size, desc.Digest); err != nil {
		// The snapshot is already committed under the chain ID, but its
		// content was checked against the config's diff ID, so it is right
		// even though the compressed blob was not.
		return err
	}
	prog.report(id, "Download complete", 0, 0)
	prog.report(id, "Pull complete", 0, 0)
	return nil
}

// unpackBlob unpacks a layer that is in the content store.
func (s *Service) unpackBlob(ctx context.Context, desc ocispec.Descriptor, l layerToUnpack, prog ProgressFunc) error {
	id := shortID(desc.Digest)
	f, err := s.cfg.Content.Open(ctx, desc.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := s.unpack(ctx, l, f, func(n int64) { prog.report(id, "Extracting", n, desc.Size) }); err != nil {
		return err
	}
	prog.report(id, "Pull complete", 0, 0)
	return nil
}

// fetchSmallBlob returns a config-sized blob from the store, or downloads,
// verifies and returns it.
func (s *Service) fetchSmallBlob(ctx context.Context, reg *registry.Client, ref reference.Named, desc ocispec.Descriptor) ([]byte, error) {
	if data, err := s.cfg.Content.ReadBlob(ctx, desc.Digest); err == nil {
		return data, nil
	}
	const limit = 32 << 20
	if desc.Size > limit {
		return nil, fmt.Errorf("blob %s is %d bytes, more than %d: %w", desc.Digest, desc.Size, limit, errdefs.ErrInvalidArgument)
	}
	rc, err := reg.OpenBlob(ctx, ref, desc, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) != desc.Size || digest.FromBytes(data) != desc.Digest {
		return nil, fmt.Errorf("blob %s: got %d bytes with digest %s, want %d bytes: %w", desc.Digest, len(data), digest.FromBytes(data), desc.Size, errdefs.ErrDataLoss)
	}
	return data, nil
}

// lockBlob serialises downloads of one blob across concurrent pulls.
func (s *Service) lockBlob(d digest.Digest) func() {
	s.layerMu.Lock()
	if s.blobs == nil {
		s.blobs = map[digest.Digest]*sync.Mutex{}
	}
	mu, ok := s.blobs[d]
	if !ok {
		mu = &sync.Mutex{}
		s.blobs[d] = mu
	}
	s.layerMu.Unlock()
	mu.Lock()
	once := sync.Once{}
	return func() { once.Do(mu.Unlock) }
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
