package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
)

// maxArchiveJSON bounds the JSON files of an archive (manifest.json,
// index.json, configs, manifests) that load reads into memory.
const maxArchiveJSON = 32 << 20

// maxLinkDepth bounds how many links in an archive load follows for one name.
const maxLinkDepth = 16

// LoadedImage is an image docker load brought in: its ID and the names
// (familiar: "busybox:latest") it was tagged with.
type LoadedImage struct {
	ID    digest.Digest
	Names []string
}

// Load reads an image archive from r (possibly gzip or zstd compressed as
// a whole) and adds its images: the format Save writes (Docker 25+), the
// legacy docker-archive (manifest.json, <id>/layer.tar, <id>.json, layers
// possibly compressed) and a plain OCI image layout (index.json, names from
// its annotations; nested indexes select the service's platform). Every
// blob is checked against its digest and every layer against its diff ID.
// It is all or nothing: if any image of the archive fails, no image record
// or tag is added (blobs and layers already stored are left for GC). A
// name moved from another image leaves that image without it.
func (s *Service) Load(ctx context.Context, r io.Reader, progress ProgressFunc) ([]LoadedImage, error) {
	fail := func(err error) ([]LoadedImage, error) { return nil, fmt.Errorf("load: %w", err) }
	dir, err := os.MkdirTemp(s.cfg.TmpDir, "berth-load-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	plain, _, err := archive.Decompress(&ctxReader{ctx: ctx, r: r})
	if err != nil {
		return fail(err)
	}
	defer plain.Close()
	a, err := extractArchive(ctx, plain, dir)
	if err != nil {
		return fail(err)
	}
	var images []*loadImage
	switch {
	case a.has("manifest.json"):
		images, err = s.parseDockerArchive(a)
	case a.has("index.json"):
		images, err = s.parseOCILayout(a)
	default:
		err = fmt.Errorf("not an image archive: it has neither manifest.json nor index.json: %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return fail(err)
	}
	if len(images) == 0 {
		return fail(fmt.Errorf("the archive holds no image: %w", errdefs.ErrInvalidArgument))
	}
	unlock, err := s.beginWork(ctx, "load")
	if err != nil {
		return fail(err)
	}
	defer unlock()
	for _, li := range images {
		if err := s.storeLoaded(ctx, a, li, progress); err != nil {
			return fail(fmt.Errorf("image %s: %w", shortID(li.id), err))
		}
	}
	out, err := s.recordLoaded(images)
	if err != nil {
		return fail(err)
	}
	return out, nil
}

// archiveFile is a regular file of an extracted archive.
type archiveFile struct {
	path   string // where it was extracted
	size   int64
	digest digest.Digest // sha256 of its content
}

// extracted is an archive unpacked into a flat temporary directory: no
// entry name is used as a path, so none can point outside it. Links are
// kept as aliases of the names they point to.
type extracted struct {
	files map[string]archiveFile
	links map[string]string // name -> target name
}

// extractArchive copies the regular files of the tar r into dir, hashing
// them on the way. Names that climb out of the archive and entries that
// are neither files, directories nor links are refused.
func extractArchive(ctx context.Context, r io.Reader, dir string) (*extracted, error) {
	a := &extracted{files: map[string]archiveFile{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if n == 0 {
				return nil, fmt.Errorf("the archive is empty: %w", errdefs.ErrInvalidArgument)
			}
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read archive: %w: %w", err, errdefs.ErrDataLoss)
		}
		name, err := archiveName(hdr.Name)
		if err != nil {
			return nil, err
		}
		switch hdr.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
		case tar.TypeReg:
			f, err := os.CreateTemp(dir, "f")
			if err != nil {
				return nil, err
			}
			dg := digest.Canonical.Digester()
			size, err := io.Copy(io.MultiWriter(f, dg.Hash()), tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, fmt.Errorf("read archive entry %q: %w: %w", hdr.Name, err, errdefs.ErrDataLoss)
			}
			if old, ok := a.files[name]; ok {
				_ = os.Remove(old.path)
			}
			delete(a.links, name)
			a.files[name] = archiveFile{path: f.Name(), size: size, digest: dg.Digest()}
		case tar.TypeSymlink, tar.TypeLink:
			target := hdr.Linkname
			if hdr.Typeflag == tar.TypeSymlink {
				if path.IsAbs(target) {
					return nil, fmt.Errorf("archive entry %q links to absolute path %q: %w", hdr.Name, target, errdefs.ErrInvalidArgument)
				}
				target = path.Join(path.Dir(name), target)
			}
			if target, err = archiveName(target); err != nil {
				return nil, fmt.Errorf("archive entry %q links to %q, outside the archive: %w", hdr.Name, hdr.Linkname, errdefs.ErrInvalidArgument)
			}
			a.links[name] = target
		default:
			return nil, fmt.Errorf("archive entry %q has unsupported type %q: %w", hdr.Name, hdr.Typeflag, errdefs.ErrInvalidArgument)
		}
	}
}

// archiveName cleans an entry name relative to the archive's root; names
// that are absolute or climb out of it are refused.
func archiveName(name string) (string, error) {
	if path.IsAbs(name) || strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("archive entry %q: absolute or malformed name: %w", name, errdefs.ErrInvalidArgument)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("archive entry %q escapes the archive: %w", name, errdefs.ErrInvalidArgument)
	}
	return c, nil
}

// has reports whether name is a file (or a link to one) in the archive.
func (a *extracted) has(name string) bool {
	_, err := a.file(name)
	return err == nil
}

// file returns the file name refers to, following links.
func (a *extracted) file(name string) (archiveFile, error) {
	c, err := archiveName(name)
	if err != nil {
		return archiveFile{}, err
	}
	for range maxLinkDepth {
		if f, ok := a.files[c]; ok {
			return f, nil
		}
		t, ok := a.links[c]
		if !ok {
			return archiveFile{}, fmt.Errorf("the archive has no file %q: %w", name, errdefs.ErrInvalidArgument)
		}
		c = t
	}
	return archiveFile{}, fmt.Errorf("archive file %q: too many levels of links: %w", name, errdefs.ErrInvalidArgument)
}

// read returns the content of a small file of the archive.
func (a *extracted) read(name string) ([]byte, archiveFile, error) {
	f, err := a.file(name)
	if err != nil {
		return nil, f, err
	}
	if f.size > maxArchiveJSON {
		return nil, f, fmt.Errorf("archive file %q is %d bytes, more than %d: %w", name, f.size, maxArchiveJSON, errdefs.ErrInvalidArgument)
	}
	b, err := os.ReadFile(f.path)
	return b, f, err
}

// blob returns the file holding the blob desc describes in an OCI layout,
// checked against the descriptor's digest and size.
func (a *extracted) blob(desc ocispec.Descriptor) (archiveFile, error) {
	if err := desc.Digest.Validate(); err != nil {
		return archiveFile{}, fmt.Errorf("invalid digest %q: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	f, err := a.file(blobPath(desc.Digest))
	if err != nil {
		return f, fmt.Errorf("blob %s: %w", desc.Digest, err)
	}
	if err := checkBlobFile(blobPath(desc.Digest), f); err != nil {
		return f, err
	}
	if desc.Size != f.size {
		return f, fmt.Errorf("blob %s is %d bytes, its descriptor says %d: %w", desc.Digest, f.size, desc.Size, errdefs.ErrDataLoss)
	}
	return f, nil
}

// readBlob returns the content of a small blob of an OCI layout.
func (a *extracted) readBlob(desc ocispec.Descriptor) ([]byte, error) {
	f, err := a.blob(desc)
	if err != nil {
		return nil, err
	}
	if f.size > maxArchiveJSON {
		return nil, fmt.Errorf("blob %s is %d bytes, more than %d: %w", desc.Digest, f.size, maxArchiveJSON, errdefs.ErrInvalidArgument)
	}
	return os.ReadFile(f.path)
}

// checkBlobFile checks that a file named blobs/<algorithm>/<hex> has that
// digest. Files named otherwise are not checked.
func checkBlobFile(name string, f archiveFile) error {
	c, err := archiveName(name)
	if err != nil {
		return err
	}
	parts := strings.Split(c, "/")
	if len(parts) != 3 || parts[0] != "blobs" {
		return nil
	}
	want := digest.NewDigestFromEncoded(digest.Algorithm(parts[1]), parts[2])
	if want.Validate() != nil || want.Algorithm() != digest.SHA256 {
		return fmt.Errorf("archive file %q is not named by a sha256 digest: %w", name, errdefs.ErrInvalidArgument)
	}
	if f.digest != want {
		return fmt.Errorf("archive file %q has digest %s: %w", name, f.digest, errdefs.ErrDataLoss)
	}
	return nil
}

// loadImage is one image of an archive, parsed and checked.
type loadImage struct {
	id       digest.Digest
	config   []byte
	diffIDs  []digest.Digest
	manifest []byte
	mdesc    ocispec.Descriptor
	layers   []archiveFile // in the order of the manifest's layers
	ldescs   []ocispec.Descriptor
	names    []reference.NamedTagged
}

// addLoadImage adds li to images, merging its names into an image with the
// same ID.
func addLoadImage(images []*loadImage, li *loadImage) []*loadImage {
	for _, o := range images {
		if o.id == li.id {
			for _, n := range li.names {
				if !containsRef(o.names, n) {
					o.names = append(o.names, n)
				}
			}
			return images
		}
	}
	return append(images, li)
}

func containsRef(list []reference.NamedTagged, r reference.NamedTagged) bool {
	for _, x := range list {
		if x.String() == r.String() {
			return true
		}
	}
	return false
}

// parseDockerArchive reads the images of a docker-archive's manifest.json.
// When the archive is also an OCI layout (Docker 25+) holding a manifest
// for the same config and layers, that manifest is kept as it is;
// otherwise one is made with the layer blobs as the archive has them.
func (s *Service) parseDockerArchive(a *extracted) ([]*loadImage, error) {
	raw, _, err := a.read("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("parse manifest.json: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	ociManifests := map[digest.Digest][]ociCandidate{}
	if a.has("index.json") {
		if imgs, err := s.parseOCILayout(a); err == nil {
			for _, li := range imgs {
				ociManifests[li.id] = append(ociManifests[li.id], ociCandidate{li.manifest, li.mdesc, li.ldescs})
			}
		}
	}
	var images []*loadImage
	for i, e := range entries {
		li, err := dockerEntry(a, e, ociManifests)
		if err != nil {
			return nil, fmt.Errorf("manifest.json entry %d (%s): %w", i, e.Config, err)
		}
		images = addLoadImage(images, li)
	}
	return images, nil
}

// ociCandidate is a manifest of an OCI layout that a manifest.json entry may use.
type ociCandidate struct {
	raw    []byte
	desc   ocispec.Descriptor
	layers []ocispec.Descriptor
}

func dockerEntry(a *extracted, e dockerManifestEntry, oci map[digest.Digest][]ociCandidate) (*loadImage, error) {
	config, cf, err := a.read(e.Config)
	if err != nil {
		return nil, err
	}
	if err := checkBlobFile(e.Config, cf); err != nil {
		return nil, err
	}
	conf, err := parseConfig(config, len(e.Layers))
	if err != nil {
		return nil, err
	}
	li := &loadImage{id: cf.digest, config: config, diffIDs: conf.RootFS.DiffIDs}
	for _, lp := range e.Layers {
		f, err := a.file(lp)
		if err != nil {
			return nil, err
		}
		if err := checkBlobFile(lp, f); err != nil {
			return nil, err
		}
		mt, err := sniffLayerType(f)
		if err != nil {
			return nil, err
		}
		li.layers = append(li.layers, f)
		li.ldescs = append(li.ldescs, ocispec.Descriptor{MediaType: mt, Digest: f.digest, Size: f.size})
	}
	for _, t := range e.RepoTags {
		ref, err := loadName(t)
		if err != nil {
			return nil, err
		}
		li.names = append(li.names, ref)
	}
	for _, c := range oci[li.id] {
		if sameBlobs(c.layers, li.ldescs) {
			li.manifest, li.mdesc = c.raw, c.desc
			li.mdesc.Annotations = nil
			return li, nil
		}
	}
	li.manifest, err = json.Marshal(ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: li.id, Size: int64(len(config))},
		Layers:    li.ldescs,
	})
	if err != nil {
		return nil, err
	}
	li.mdesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(li.manifest), Size: int64(len(li.manifest))}
	li.mdesc.Platform = &ocispec.Platform{OS: conf.OS, Architecture: conf.Architecture, Variant: conf.Variant}
	return li, nil
}

func sameBlobs(a, b []ocispec.Descriptor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Digest != b[i].Digest || a[i].Size != b[i].Size {
			return false
		}
	}
	return true
}

// sniffLayerType returns the OCI media type of a layer file from how it is
// compressed.
func sniffLayerType(f archiveFile) (string, error) {
	fh, err := os.Open(f.path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(fh, head)
	switch archive.DetectCompression(head[:n]) {
	case archive.Gzip:
		return ocispec.MediaTypeImageLayerGzip, nil
	case archive.Zstd:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}

// loadName parses an image name given by an archive, which must be tagged.
func loadName(name string) (reference.NamedTagged, error) {
	ref, err := ParseReference(name)
	if err != nil {
		return nil, fmt.Errorf("image name in archive: %w", err)
	}
	t, ok := ref.(reference.NamedTagged)
	if !ok {
		return nil, fmt.Errorf("image name %q in archive has no tag: %w", name, errdefs.ErrInvalidArgument)
	}
	return t, nil
}

// parseOCILayout reads the images of an OCI layout's index.json. An entry
// that is an index is resolved to the manifest for the service's platform.
func (s *Service) parseOCILayout(a *extracted) ([]*loadImage, error) {
	raw, _, err := a.read("index.json")
	if err != nil {
		return nil, err
	}
	if _, err := manifestKind(ocispec.MediaTypeImageIndex, raw); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	idx, err := parseIndex(raw)
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var images []*loadImage
	for i, d := range idx.Manifests {
		li, err := s.ociEntry(a, d, 0)
		if err != nil {
			return nil, fmt.Errorf("index.json entry %d (%s): %w", i, d.Digest, err)
		}
		name := d.Annotations[annotationImageName]
		if name == "" {
			// A bare tag ("latest") is no name; "repo:tag" is.
			if rn := d.Annotations[annotationRefName]; strings.ContainsAny(rn, ":/") {
				name = rn
			}
		}
		if name != "" {
			ref, err := loadName(name)
			if err != nil {
				return nil, fmt.Errorf("index.json entry %d: %w", i, err)
			}
			li.names = append(li.names, ref)
		}
		images = addLoadImage(images, li)
	}
	return images, nil
}

// ociEntry reads the image desc describes, descending into nested indexes.
func (s *Service) ociEntry(a *extracted, desc ocispec.Descriptor, depth int) (*loadImage, error) {
	if depth > maxLinkDepth {
		return nil, fmt.Errorf("indexes nested too deep: %w", errdefs.ErrInvalidArgument)
	}
	raw, err := a.readBlob(desc)
	if err != nil {
		return nil, err
	}
	kind, err := manifestKind(desc.MediaType, raw)
	if err != nil {
		return nil, err
	}
	if isIndex(kind) {
		idx, err := parseIndex(raw)
		if err != nil {
			return nil, err
		}
		sel, err := SelectManifest(idx.Manifests, *s.cfg.Platform)
		if err != nil && len(idx.Manifests) == 1 && idx.Manifests[0].Platform == nil {
			sel, err = idx.Manifests[0], nil
		}
		if err != nil {
			return nil, err
		}
		return s.ociEntry(a, sel, depth+1)
	}
	m, err := parseManifest(raw)
	if err != nil {
		return nil, err
	}
	config, err := a.readBlob(m.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	conf, err := parseConfig(config, len(m.Layers))
	if err != nil {
		return nil, err
	}
	li := &loadImage{id: m.Config.Digest, config: config, diffIDs: conf.RootFS.DiffIDs, manifest: raw, ldescs: m.Layers}
	li.mdesc = ocispec.Descriptor{MediaType: kind, Digest: desc.Digest, Size: desc.Size,
		Platform: &ocispec.Platform{OS: conf.OS, Architecture: conf.Architecture, Variant: conf.Variant}}
	for _, l := range m.Layers {
		if _, err := layerCompression(l.MediaType); err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		f, err := a.blob(l)
		if err != nil {
			return nil, fmt.Errorf("layer: %w", err)
		}
		li.layers = append(li.layers, f)
	}
	return li, nil
}

// storeLoaded puts the blobs of one image into the content store and
// unpacks its layers.
func (s *Service) storeLoaded(ctx context.Context, a *extracted, li *loadImage, prog ProgressFunc) error {
	blobs := []blobToStore{
		{ocispec.Descriptor{Digest: li.id, Size: int64(len(li.config))}, li.config},
		{li.mdesc, li.manifest},
	}
	for _, b := range blobs {
		if err := s.cfg.Content.WriteBlob(ctx, bytes.NewReader(b.data), b.desc); err != nil {
			return fmt.Errorf("store %s: %w", b.desc.Digest, err)
		}
	}
	chain := ChainIDs(li.diffIDs)
	for i, f := range li.layers {
		desc := li.ldescs[i]
		if err := s.storeLayerFile(ctx, f, desc); err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
		l := layerToUnpack{chainID: chain[i], diffID: li.diffIDs[i]}
		if i > 0 {
			l.parent = chain[i-1]
		}
		id := shortID(desc.Digest)
		if have, err := s.haveSnapshot(ctx, l.chainID); err != nil {
			return err
		} else if have {
			prog.report(id, "Loading layer", desc.Size, desc.Size)
			continue
		}
		fh, err := s.cfg.Content.Open(ctx, desc.Digest)
		if err != nil {
			return err
		}
		_, err = s.unpack(ctx, l, fh, func(n int64) { prog.report(id, "Loading layer", n, desc.Size) })
		fh.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
	}
	return nil
}

// storeLayerFile copies a layer file into the content store, which checks
// its digest.
func (s *Service) storeLayerFile(ctx context.Context, f archiveFile, desc ocispec.Descriptor) error {
	if _, err := s.cfg.Content.Info(ctx, desc.Digest); err == nil {
		return nil
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	return s.cfg.Content.WriteBlob(ctx, fh, desc)
}

// recordLoaded records every image and its tags in one transaction.
func (s *Service) recordLoaded(images []*loadImage) ([]LoadedImage, error) {
	now := time.Now().UTC()
	var out []LoadedImage
	err := s.cfg.DB.Update(func(tx *metadata.Tx) error {
		out = out[:0]
		for _, li := range images {
			img, err := tx.GetImage(li.id)
			switch {
			case errdefs.IsNotFound(err):
				img = metadata.Image{ID: li.id, Manifest: li.mdesc, Created: now}
			case err != nil:
				return err
			}
			loaded := LoadedImage{ID: li.id}
			for _, n := range li.names {
				old, err := tx.Tag(TaggedString(n))
				if err != nil && !errdefs.IsNotFound(err) {
					return err
				}
				if old != li.id {
					img.LastTagTime = now
				}
				loaded.Names = append(loaded.Names, FamiliarString(n))
			}
			if err := tx.PutImage(img); err != nil {
				return err
			}
			for _, n := range li.names {
				if err := tx.SetTag(TaggedString(n), li.id); err != nil {
					return err
				}
			}
			out = append(out, loaded)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record images: %w", err)
	}
	return out, nil
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
