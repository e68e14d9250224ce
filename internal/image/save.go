package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
)

// Annotations of an index.json entry naming an image.
const (
	annotationImageName = "io.containerd.image.name"
	annotationRefName   = ocispec.AnnotationRefName
)

// labelTarSize is a label on a layer's chain-ID snapshot caching the size
// of the layer's uncompressed tar, which save must know before it writes it.
const labelTarSize = "berth.layer.tarsize"

// dockerManifestEntry is one image in an archive's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// savedImage is one image on its way into a save archive.
type savedImage struct {
	img      metadata.Image
	config   []byte
	conf     ocispec.Image
	manifest ocispec.Manifest
	tags     []reference.NamedTagged
}

// Save writes the images names refer to as one tar, in the layout Docker
// 25 and later write, which old and new docker load, podman and skopeo
// read: an OCI image layout (oci-layout, index.json with one entry per name,
// blobs/sha256/...) whose layers are the uncompressed diffs, plus Docker's
// manifest.json and repositories. A name is a tag, a repository (all its
// tags), or an image ID (saved without a name). Layers stream from the
// content store, decompressed on the way.
func (s *Service) Save(ctx context.Context, w io.Writer, names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("save: no image names: %w", errdefs.ErrInvalidArgument)
	}
	images, err := s.saveList(ctx, names)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	for _, dir := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: 0o755, ModTime: time.Unix(0, 0)}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	var index ocispec.Index
	index.SchemaVersion = 2
	index.MediaType = ocispec.MediaTypeImageIndex
	var manifests []dockerManifestEntry
	repos := map[string]map[string]string{}
	for _, si := range images {
		mdesc, entry, err := s.saveImage(ctx, tw, si, written)
		if err != nil {
			return fmt.Errorf("save %s: %w", saveName(si), err)
		}
		manifests = append(manifests, entry)
		if len(si.tags) == 0 {
			index.Manifests = append(index.Manifests, mdesc)
		}
		for _, t := range si.tags {
			d := mdesc
			d.Annotations = map[string]string{annotationImageName: TaggedString(t), annotationRefName: t.Tag()}
			index.Manifests = append(index.Manifests, d)
			name := reference.FamiliarName(t)
			if repos[name] == nil {
				repos[name] = map[string]string{}
			}
			if diffIDs := si.conf.RootFS.DiffIDs; len(diffIDs) > 0 {
				repos[name][t.Tag()] = diffIDs[len(diffIDs)-1].Encoded()
			}
		}
	}
	files := []struct {
		name string
		v    any
	}{{"index.json", index}, {"manifest.json", manifests}, {"oci-layout", ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}}}
	if len(repos) > 0 {
		files = append(files, struct {
			name string
			v    any
		}{"repositories", repos})
	}
	for _, f := range files {
		b, err := json.Marshal(f.v)
		if err != nil {
			return fmt.Errorf("save: encode %s: %w", f.name, err)
		}
		if err := writeTarFile(tw, f.name, b); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// saveName is how errors name an image being saved.
func saveName(si *savedImage) string {
	if len(si.tags) > 0 {
		return FamiliarString(si.tags[0])
	}
	return shortID(si.img.ID)
}

// saveList resolves names to images, in order of first mention, each with
// the tags it is saved under.
func (s *Service) saveList(ctx context.Context, names []string) ([]*savedImage, error) {
	var out []*savedImage
	byID := map[digest.Digest]*savedImage{}
	add := func(img metadata.Image, tag reference.NamedTagged) {
		si := byID[img.ID]
		if si == nil {
			si = &savedImage{img: img}
			byID[img.ID] = si
			out = append(out, si)
		}
		if tag != nil {
			for _, t := range si.tags {
				if t.String() == tag.String() {
					return
				}
			}
			si.tags = append(si.tags, tag)
		}
	}
	for _, name := range names {
		err := s.cfg.DB.View(func(tx *metadata.Tx) error {
			hex := strings.TrimPrefix(name, "sha256:")
			isID := len(hex) == 64 && LooksLikeID(hex)
			// A bare repository name saves every tag of it, as Docker does.
			if ref, err := reference.ParseNormalizedNamed(name); err == nil && reference.IsNameOnly(ref) && !isID {
				tags, err := tx.Tags()
				if err != nil {
					return err
				}
				var keys []string
				for k := range tags {
					if strings.HasPrefix(k, ref.Name()+":") {
						keys = append(keys, k)
					}
				}
				sort.Strings(keys)
				for _, k := range keys {
					img, err := tx.GetImage(tags[k])
					if err != nil {
						return err
					}
					r, err := reference.ParseNamed(k)
					if err != nil {
						return err
					}
					if t, ok := r.(reference.NamedTagged); ok {
						add(img, t)
					}
				}
				if len(keys) > 0 {
					return nil
				}
			}
			img, err := resolveTx(tx, name)
			if err != nil {
				return err
			}
			var tag reference.NamedTagged
			if ref, err := ParseReference(name); err == nil && !isID {
				if t, ok := ref.(reference.NamedTagged); ok {
					if id, err := tx.Tag(TaggedString(t)); err == nil && id == img.ID {
						tag = t
					}
				}
			}
			add(img, tag)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("save %s: %w", name, err)
		}
	}
	for _, si := range out {
		var err error
		if si.config, err = s.RawConfig(ctx, si.img); err == nil {
			if si.conf, err = parseConfig(si.config, -1); err == nil {
				si.manifest, err = s.Manifest(ctx, si.img)
			}
		}
		if err == nil && len(si.manifest.Layers) != len(si.conf.RootFS.DiffIDs) {
			err = fmt.Errorf("manifest has %d layers for %d diff ids: %w", len(si.manifest.Layers), len(si.conf.RootFS.DiffIDs), errdefs.ErrDataLoss)
		}
		if err != nil {
			return nil, fmt.Errorf("save %s: %w", saveName(si), err)
		}
	}
	return out, nil
}

// saveImage writes the config, layers and rewritten manifest of one image
// (blobs already written are skipped) and returns the manifest's
// descriptor and the image's manifest.json entry.
func (s *Service) saveImage(ctx context.Context, tw *tar.Writer, si *savedImage, written map[digest.Digest]bool) (ocispec.Descriptor, dockerManifestEntry, error) {
	entry := dockerManifestEntry{Config: blobPath(si.img.ID), RepoTags: []string{}, Layers: []string{}}
	for _, t := range si.tags {
		entry.RepoTags = append(entry.RepoTags, FamiliarString(t))
	}
	if err := writeBlobOnce(tw, si.img.ID, si.config, written); err != nil {
		return ocispec.Descriptor{}, entry, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: si.img.ID, Size: int64(len(si.config))},
		Layers:    []ocispec.Descriptor{},
	}
	chain := ChainIDs(si.conf.RootFS.DiffIDs)
	for i, l := range si.manifest.Layers {
		diffID := si.conf.RootFS.DiffIDs[i]
		size, err := s.saveLayer(ctx, tw, l, diffID, chain[i], written)
		if err != nil {
			return ocispec.Descriptor{}, entry, fmt.Errorf("layer %s: %w", diffID, err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
		entry.Layers = append(entry.Layers, blobPath(diffID))
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, entry, err
	}
	mdesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	if err := writeBlobOnce(tw, mdesc.Digest, raw, written); err != nil {
		return ocispec.Descriptor{}, entry, err
	}
	if len(entry.RepoTags) == 0 {
		entry.RepoTags = nil
	}
	return mdesc, entry, nil
}

// saveLayer writes the uncompressed tar of layer l (diff ID diffID) as
// blobs/sha256/<diff ID hex>, unless written already, and returns its size.
// The size must be in the tar header before the data, so it comes from
// the uncompressed blob itself, a label cached on the layer's snapshot, or
// a first pass over the blob (which then sets the label).
func (s *Service) saveLayer(ctx context.Context, tw *tar.Writer, l ocispec.Descriptor, diffID, chainID digest.Digest, written map[digest.Digest]bool) (int64, error) {
	size, err := s.layerTarSize(ctx, l, diffID, chainID)
	if err != nil {
		return 0, err
	}
	if written[diffID] {
		return size, nil
	}
	f, err := s.cfg.Content.Open(ctx, l.Digest)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	plain, _, err := archive.Decompress(f)
	if err != nil {
		return 0, err
	}
	defer plain.Close()
	hdr := blobHeader(diffID, size)
	if err := tw.WriteHeader(hdr); err != nil {
		return 0, err
	}
	dg := digest.Canonical.Digester()
	n, err := io.Copy(io.MultiWriter(tw, dg.Hash()), io.LimitReader(&ctxReader{ctx: ctx, r: plain}, size+1))
	if err != nil {
		return 0, err
	}
	if n != size || dg.Digest() != diffID {
		return 0, fmt.Errorf("uncompressed blob %s is %d bytes with digest %s, want %d bytes with the diff id: %w", l.Digest, n, dg.Digest(), size, errdefs.ErrDataLoss)
	}
	written[diffID] = true
	return size, nil
}

// layerTarSize returns the size of a layer's uncompressed tar.
func (s *Service) layerTarSize(ctx context.Context, l ocispec.Descriptor, diffID, chainID digest.Digest) (int64, error) {
	if c, err := layerCompression(l.MediaType); err == nil && c == archive.Uncompressed && l.Digest == diffID {
		return l.Size, nil
	}
	info, statErr := s.cfg.Snapshotter.Stat(ctx, chainID.String())
	if statErr == nil && info.Labels["berth.layer.diffid"] == diffID.String() {
		if n, err := strconv.ParseInt(info.Labels[labelTarSize], 10, 64); err == nil && n >= 0 {
			return n, nil
		}
	}
	f, err := s.cfg.Content.Open(ctx, l.Digest)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	plain, _, err := archive.Decompress(f)
	if err != nil {
		return 0, err
	}
	defer plain.Close()
	dg := digest.Canonical.Digester()
	n, err := io.Copy(dg.Hash(), &ctxReader{ctx: ctx, r: plain})
	if err != nil {
		return 0, err
	}
	if dg.Digest() != diffID {
		return 0, fmt.Errorf("blob %s decompresses to digest %s, not the diff id: %w", l.Digest, dg.Digest(), errdefs.ErrDataLoss)
	}
	if statErr == nil {
		s.cacheTarSize(ctx, chainID, n)
	}
	return n, nil
}

// cacheTarSize records the uncompressed size of the layer whose snapshot
// is chainID; failing to is harmless (save measures again).
func (s *Service) cacheTarSize(ctx context.Context, chainID digest.Digest, n int64) {
	info := snapshot.Info{Name: chainID.String(), Labels: map[string]string{labelTarSize: strconv.FormatInt(n, 10)}}
	_, _ = s.cfg.Snapshotter.Update(ctx, info, "labels."+labelTarSize)
}

// blobPath is where blob d lives in an OCI layout.
func blobPath(d digest.Digest) string {
	return "blobs/" + string(d.Algorithm()) + "/" + d.Encoded()
}

func blobHeader(d digest.Digest, size int64) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: blobPath(d), Size: size, Mode: 0o644, ModTime: time.Unix(0, 0)}
}

// writeBlobOnce writes a small blob unless it was written already.
func writeBlobOnce(tw *tar.Writer, d digest.Digest, data []byte, written map[digest.Digest]bool) error {
	if written[d] {
		return nil
	}
	if err := tw.WriteHeader(blobHeader(d, int64(len(data)))); err != nil {
		return err
	}
	if _, err := tw.Write(data); err != nil {
		return err
	}
	written[d] = true
	return nil
}

func writeTarFile(tw *tar.Writer, name string, data []byte) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644, ModTime: time.Unix(0, 0)}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
