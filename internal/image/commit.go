package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
)

// emptyTarDiffID is the diff ID of a layer without entries (a tar of just
// its two zero end blocks). Such a layer is not added to an image: its
// history entry is marked empty_layer, as Docker does.
var emptyTarDiffID = digest.FromBytes(make([]byte, 1024))

// LayerBlob is a layer written to the content store as a gzip blob.
type LayerBlob struct {
	// Desc describes the blob (media type OCI gzip layer).
	Desc ocispec.Descriptor
	// DiffID is the digest of the uncompressed tar; Size its length.
	DiffID digest.Digest
	Size   int64
}

// Empty reports whether the layer has no entries.
func (l LayerBlob) Empty() bool { return l.DiffID == emptyTarDiffID }

// writeLayer stores the uncompressed tar that fill writes as a gzip blob,
// computing its diff ID and blob digest on the way in one pass. Nothing is
// left in the store's ingests if it fails. Callers hold beginWork (or a
// lease) until the blob is referenced, or GC may remove it.
func (s *Service) writeLayer(ctx context.Context, what string, fill func(w io.Writer) error) (LayerBlob, error) {
	ref := what + "-" + randomHex(8)
	w, err := s.cfg.Content.Writer(ctx, ref)
	if err != nil {
		return LayerBlob{}, err
	}
	done := false
	defer func() {
		if !done {
			w.Close()
			_ = s.cfg.Content.Abort(context.WithoutCancel(ctx), ref)
		}
	}()
	blob := &countingWriter{w: w}
	zw, err := archive.Compress(blob, archive.Gzip)
	if err != nil {
		return LayerBlob{}, err
	}
	diff := digest.Canonical.Digester()
	plain := &countingWriter{w: io.MultiWriter(zw, diff.Hash())}
	if err := fill(plain); err != nil {
		return LayerBlob{}, err
	}
	if err := zw.Close(); err != nil {
		return LayerBlob{}, fmt.Errorf("compress layer: %w", err)
	}
	d := w.Digest()
	if err := w.Commit(ctx, blob.n, d); err != nil {
		return LayerBlob{}, fmt.Errorf("store layer: %w", err)
	}
	done = true
	return LayerBlob{
		Desc:   ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: blob.n},
		DiffID: diff.Digest(),
		Size:   plain.n,
	}, nil
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// DiffSnapshot stores the changes of the active snapshot key against its
// parent as a gzip layer blob: with the overlay snapshotter straight from
// its upper directory, otherwise by comparing it with the parent's tree.
// The blob is unreferenced until an image uses it: hold a lease, or call
// CreateImage soon (GC waits for neither).
func (s *Service) DiffSnapshot(ctx context.Context, key string) (LayerBlob, error) {
	info, err := s.cfg.Snapshotter.Stat(ctx, key)
	if err != nil {
		return LayerBlob{}, fmt.Errorf("diff snapshot %s: %w", key, err)
	}
	return s.diffSnapshot(ctx, info)
}

func (s *Service) diffSnapshot(ctx context.Context, info snapshot.Info) (LayerBlob, error) {
	key := info.Name
	if info.Kind != snapshot.KindActive {
		return LayerBlob{}, fmt.Errorf("diff snapshot %s: it is %s, not active: %w", key, info.Kind, errdefs.ErrInvalidArgument)
	}
	mounts, err := s.cfg.Snapshotter.Mounts(ctx, key)
	if err != nil {
		return LayerBlob{}, fmt.Errorf("diff snapshot %s: %w", key, err)
	}
	upper, _, err := snapshot.UpperDir(mounts)
	if err != nil {
		return LayerBlob{}, fmt.Errorf("diff snapshot %s: %w", key, err)
	}
	var fill func(w io.Writer) error
	if s.cfg.Overlay {
		fill = func(w io.Writer) error { return archive.WriteOverlayDiff(ctx, w, upper) }
	} else {
		// The committed parent's own read-only mounts: no copy of it.
		fill = func(w io.Writer) error {
			if info.Parent == "" {
				empty, err := os.MkdirTemp(s.cfg.TmpDir, "berth-empty-")
				if err != nil {
					return err
				}
				defer os.Remove(empty)
				return archive.WriteDiff(ctx, w, empty, upper)
			}
			lower, err := s.cfg.Snapshotter.Mounts(ctx, info.Parent)
			if err != nil {
				return fmt.Errorf("parent %s: %w", info.Parent, err)
			}
			return snapshot.WithTempMount(ctx, lower, func(root string) error {
				return archive.WriteDiff(ctx, w, root, upper)
			})
		}
	}
	l, err := s.writeLayer(ctx, "commit", fill)
	if err != nil {
		return LayerBlob{}, fmt.Errorf("diff snapshot %s: %w", key, err)
	}
	return l, nil
}

// ImageSpec describes an image made from a parent image (or from nothing)
// plus at most one layer, as commit, import and the builder make them.
type ImageSpec struct {
	// Parent is the image the new one is built on; "" for none.
	Parent digest.Digest
	// Layer is the new layer, in the content store; nil (or an empty
	// layer) adds only a history entry marked empty_layer.
	Layer *LayerBlob
	// Config replaces the parent's run config (Docker-only fields such as
	// the health check are kept unless Docker is set); nil keeps the
	// parent's.
	Config *ocispec.ImageConfig
	// Docker, if set, replaces the run-config fields only Docker writes
	// (health check, ONBUILD triggers, shell), each nil or empty one
	// clearing the parent's; nil keeps the parent's (commit, import).
	Docker *DockerConfig
	// Changes are Dockerfile instructions applied to the config (see
	// docker commit --change).
	Changes []string
	// History entry of the new layer.
	Author, CreatedBy, Comment string
	// Platform is the OS and architecture of an image without parent
	// (default: the host's); an image with a parent keeps the parent's.
	Platform *ocispec.Platform
	// Ref, if set, is tagged to the new image.
	Ref string
}

// CreateImage writes the config and manifest of the image spec describes,
// makes sure its layers are unpacked (the new layer into its chain-ID
// snapshot), and records it, tagged with spec.Ref.
func (s *Service) CreateImage(ctx context.Context, spec ImageSpec) (metadata.Image, error) {
	changes, err := parseChanges(spec.Changes)
	if err != nil {
		return metadata.Image{}, err
	}
	tag, err := parseTagRef(spec.Ref)
	if err != nil {
		return metadata.Image{}, err
	}
	unlock, err := s.beginWork(ctx, "create image")
	if err != nil {
		return metadata.Image{}, err
	}
	defer unlock()
	return s.createImage(ctx, spec, changes, tag, false)
}

// parseTagRef parses the name a new image is tagged with ("" for none),
// which must not be a digest reference.
func parseTagRef(name string) (reference.NamedTagged, error) {
	if name == "" {
		return nil, nil
	}
	ref, err := ParseReference(name)
	if err != nil {
		return nil, err
	}
	tagged, ok := ref.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("tag %s: refusing to create a tag with a digest reference: %w", name, errdefs.ErrInvalidArgument)
	}
	return tagged, nil
}

// createImage is CreateImage with the changes and tag parsed; keepEmpty
// adds an empty spec.Layer as a layer all the same (import).
func (s *Service) createImage(ctx context.Context, spec ImageSpec, changes []change, tag reference.NamedTagged, keepEmpty bool) (metadata.Image, error) {
	top := map[string]json.RawMessage{}
	var parentManifest ocispec.Manifest
	var parentConf ocispec.Image
	if spec.Parent != "" {
		parent, err := s.Resolve(ctx, spec.Parent.String())
		if err != nil {
			return metadata.Image{}, fmt.Errorf("parent image: %w", err)
		}
		raw, err := s.RawConfig(ctx, parent)
		if err != nil {
			return metadata.Image{}, err
		}
		if err := json.Unmarshal(raw, &top); err != nil {
			return metadata.Image{}, fmt.Errorf("parent image %s: parse config: %w: %w", shortID(parent.ID), err, errdefs.ErrDataLoss)
		}
		if parentConf, err = parseConfig(raw, -1); err != nil {
			return metadata.Image{}, fmt.Errorf("parent image %s: %w", shortID(parent.ID), err)
		}
		if parentManifest, err = s.Manifest(ctx, parent); err != nil {
			return metadata.Image{}, err
		}
		if len(parentManifest.Layers) != len(parentConf.RootFS.DiffIDs) {
			return metadata.Image{}, fmt.Errorf("parent image %s: manifest has %d layers for %d diff ids: %w",
				shortID(parent.ID), len(parentManifest.Layers), len(parentConf.RootFS.DiffIDs), errdefs.ErrDataLoss)
		}
		// Fields describing the container that made the parent are stale.
		delete(top, "container")
		delete(top, "container_config")
	} else {
		p := HostPlatform()
		if spec.Platform != nil {
			p = *spec.Platform
		}
		parentConf.OS, parentConf.Architecture, parentConf.Variant = p.OS, p.Architecture, p.Variant
		if err := setJSON(top, "os", p.OS); err != nil {
			return metadata.Image{}, err
		}
		if err := setJSON(top, "architecture", p.Architecture); err != nil {
			return metadata.Image{}, err
		}
		if p.Variant != "" {
			if err := setJSON(top, "variant", p.Variant); err != nil {
				return metadata.Image{}, err
			}
		}
	}

	var rc runConfig
	if raw, ok := top["config"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &rc); err != nil {
			return metadata.Image{}, fmt.Errorf("parent image config: %w: %w", err, errdefs.ErrDataLoss)
		}
	}
	if spec.Config != nil {
		rc.ImageConfig = cloneImageConfig(*spec.Config)
	}
	if spec.Docker != nil {
		if err := rc.setDocker(*spec.Docker); err != nil {
			return metadata.Image{}, err
		}
	}
	if err := applyChanges(&rc, changes); err != nil {
		return metadata.Image{}, err
	}

	now := time.Now().UTC()
	empty := spec.Layer == nil || (spec.Layer.Empty() && !keepEmpty)
	diffIDs := append([]digest.Digest{}, parentConf.RootFS.DiffIDs...)
	layers := make([]ocispec.Descriptor, 0, len(parentManifest.Layers)+1)
	for _, l := range parentManifest.Layers {
		layers = append(layers, ociLayer(l))
	}
	if !empty {
		if _, err := s.cfg.Content.Info(ctx, spec.Layer.Desc.Digest); err != nil {
			return metadata.Image{}, fmt.Errorf("new layer: %w", err)
		}
		diffIDs = append(diffIDs, spec.Layer.DiffID)
		layers = append(layers, spec.Layer.Desc)
	}
	var history []json.RawMessage
	if raw, ok := top["history"]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &history); err != nil {
			return metadata.Image{}, fmt.Errorf("parent image history: %w: %w", err, errdefs.ErrDataLoss)
		}
	}
	entry, err := json.Marshal(ocispec.History{Created: &now, Author: spec.Author, CreatedBy: spec.CreatedBy, Comment: spec.Comment, EmptyLayer: empty})
	if err != nil {
		return metadata.Image{}, err
	}
	history = append(history, entry)
	// The image's own author and comment (what image inspect shows) are
	// this step's, never inherited from the parent.
	for key, v := range map[string]string{"author": spec.Author, "comment": spec.Comment} {
		if v == "" {
			delete(top, key)
			continue
		}
		if err := setJSON(top, key, v); err != nil {
			return metadata.Image{}, err
		}
	}
	for k, v := range map[string]any{
		"created": now,
		"config":  rc,
		"rootfs":  ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
		"history": history,
	} {
		if err := setJSON(top, k, v); err != nil {
			return metadata.Image{}, err
		}
	}
	configRaw, err := json.Marshal(top)
	if err != nil {
		return metadata.Image{}, fmt.Errorf("encode image config: %w", err)
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(configRaw), Size: int64(len(configRaw))}
	manifestRaw, err := json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    layers,
	})
	if err != nil {
		return metadata.Image{}, fmt.Errorf("encode manifest: %w", err)
	}
	manifestDesc := ocispec.Descriptor{
		MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(manifestRaw), Size: int64(len(manifestRaw)),
		Platform: &ocispec.Platform{OS: parentConf.OS, Architecture: parentConf.Architecture, Variant: parentConf.Variant},
	}
	for _, b := range []blobToStore{{configDesc, configRaw}, {manifestDesc, manifestRaw}} {
		if err := s.cfg.Content.WriteBlob(ctx, bytesReader(b.data), b.desc); err != nil {
			return metadata.Image{}, fmt.Errorf("store %s: %w", b.desc.Digest, err)
		}
	}
	if !empty {
		chain := ChainIDs(diffIDs)
		l := layerToUnpack{chainID: chain[len(chain)-1], diffID: spec.Layer.DiffID}
		if len(chain) > 1 {
			l.parent = chain[len(chain)-2]
		}
		if err := s.unpackBlob(ctx, spec.Layer.Desc, l, nil); err != nil {
			return metadata.Image{}, fmt.Errorf("unpack new layer: %w", err)
		}
		s.cacheTarSize(ctx, l.chainID, spec.Layer.Size)
	}
	img := metadata.Image{ID: configDesc.Digest, Manifest: manifestDesc, Parent: spec.Parent, Created: now}
	err = s.cfg.DB.Update(func(tx *metadata.Tx) error {
		if old, err := tx.GetImage(img.ID); err == nil {
			img = old
		} else if !errdefs.IsNotFound(err) {
			return err
		}
		if tag != nil {
			img.LastTagTime = now
		}
		if err := tx.PutImage(img); err != nil {
			return err
		}
		if tag != nil {
			return tx.SetTag(TaggedString(tag), img.ID)
		}
		return nil
	})
	if err != nil {
		return metadata.Image{}, fmt.Errorf("record image %s: %w", shortID(img.ID), err)
	}
	return img, nil
}

// setJSON sets top[key] to the JSON encoding of v.
func setJSON(top map[string]json.RawMessage, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode image config %s: %w", key, err)
	}
	top[key] = b
	return nil
}

// ociLayer returns a layer descriptor with Docker's media types replaced
// by their OCI equivalents, for an OCI manifest.
func ociLayer(d ocispec.Descriptor) ocispec.Descriptor {
	if d.MediaType == MediaTypeDockerLayer {
		d.MediaType = ocispec.MediaTypeImageLayerGzip
	}
	return d
}

// DockerConfig is the part of an image's run config that Docker writes
// besides the OCI fields: what HEALTHCHECK, ONBUILD and SHELL set.
type DockerConfig struct {
	// Healthcheck is the container health check; nil for none. Durations
	// are stored in nanoseconds, as Docker stores them.
	Healthcheck *dockerspec.HealthcheckConfig
	// OnBuild are the ONBUILD triggers, each an instruction as written.
	OnBuild []string
	// Shell is the shell of shell-form commands; nil for the default.
	Shell []string
}

// setDocker replaces c's Docker-only fields with d's.
func (c *runConfig) setDocker(d DockerConfig) error {
	c.Healthcheck = nil
	if d.Healthcheck != nil {
		raw, err := json.Marshal(d.Healthcheck)
		if err != nil {
			return fmt.Errorf("encode health check: %w", err)
		}
		c.Healthcheck = raw
	}
	c.OnBuild = slices.Clone(d.OnBuild)
	c.Shell = slices.Clone(d.Shell)
	return nil
}

// cloneImageConfig returns a deep copy of c.
func cloneImageConfig(c ocispec.ImageConfig) ocispec.ImageConfig {
	c.Env = append([]string(nil), c.Env...)
	c.Entrypoint = append([]string(nil), c.Entrypoint...)
	c.Cmd = append([]string(nil), c.Cmd...)
	c.ExposedPorts = maps.Clone(c.ExposedPorts)
	c.Volumes = maps.Clone(c.Volumes)
	c.Labels = maps.Clone(c.Labels)
	return c
}

// CommitOptions say what docker commit records.
type CommitOptions struct {
	// Snapshot is the container's active snapshot.
	Snapshot string
	// Parent is the image the container was made from; "" for none.
	Parent digest.Digest
	// Config is the container's config to record; nil keeps the parent's.
	Config *ocispec.ImageConfig
	// Changes are Dockerfile instructions applied to the config.
	Changes []string
	Author  string
	Comment string
	// CreatedBy is the history entry's created_by (Docker puts the
	// container's command there); empty by default.
	CreatedBy string
	// Ref, if set, names the new image.
	Ref string
}

// Commit makes an image of a container's changes: the diff of its active
// snapshot against the parent becomes a new layer on top of the parent
// image's, with a history entry, and the layer is unpacked at once so the
// image can run. It returns the new image's ID.
func (s *Service) Commit(ctx context.Context, opts CommitOptions) (digest.Digest, error) {
	fail := func(err error) (digest.Digest, error) {
		return "", fmt.Errorf("commit %s: %w", opts.Snapshot, err)
	}
	changes, err := parseChanges(opts.Changes)
	if err != nil {
		return fail(err)
	}
	tag, err := parseTagRef(opts.Ref)
	if err != nil {
		return fail(err)
	}
	unlock, err := s.beginWork(ctx, "commit")
	if err != nil {
		return fail(err)
	}
	defer unlock()
	info, err := s.cfg.Snapshotter.Stat(ctx, opts.Snapshot)
	if err != nil {
		return fail(err)
	}
	want := ""
	if opts.Parent != "" {
		parent, err := s.Resolve(ctx, opts.Parent.String())
		if err != nil {
			return fail(fmt.Errorf("parent image: %w", err))
		}
		if want, err = s.SnapshotKey(ctx, parent); err != nil {
			return fail(err)
		}
	}
	if info.Parent != want {
		return fail(fmt.Errorf("snapshot is based on %q, not on the parent image's layers %q: %w", info.Parent, want, errdefs.ErrInvalidArgument))
	}
	layer, err := s.diffSnapshot(ctx, info)
	if err != nil {
		return fail(err)
	}
	img, err := s.createImage(ctx, ImageSpec{
		Parent: opts.Parent, Layer: &layer, Config: opts.Config,
		Author: opts.Author, CreatedBy: opts.CreatedBy, Comment: opts.Comment,
	}, changes, tag, false)
	if err != nil {
		return fail(err)
	}
	return img.ID, nil
}
