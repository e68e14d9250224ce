package image

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/registry"
	"github.com/berth-project/berth/internal/snapshot"
)

// Config wires a Service to the stores it works on.
type Config struct {
	Content     *content.Store
	DB          *metadata.DB
	Snapshotter snapshot.Snapshotter
	// Overlay says Snapshotter is an overlay snapshotter, whose layers are
	// applied straight into the upper dir with overlay whiteouts.
	Overlay bool
	// Registry is the client for pull and push; nil disables them.
	// SetRegistry replaces it while running.
	Registry *registry.Client
	// Platform is what pull selects from indexes when the caller names none
	// (default: the host's).
	Platform *ocispec.Platform
	// InUse, if set, returns the containers that use an image and whether
	// one of them is running; remove refuses such images unless forced
	// (never for running ones), and prune keeps them.
	InUse func(id digest.Digest) (containers []string, running bool)
	// TmpDir is for scratch files (default: the system's).
	TmpDir string
}

// Service keeps images. Its methods are safe for concurrent use.
type Service struct {
	cfg Config
	reg atomic.Pointer[registry.Client]

	// layerMu serialises work on one layer (chain ID) across concurrent
	// pulls, loads and imports, so a layer is unpacked once.
	layerMu sync.Mutex
	layers  map[digest.Digest]*sync.Mutex
	blobs   map[digest.Digest]*sync.Mutex

	// gcMu is held shared by every operation that adds content or
	// snapshots (pull, load, import, commit) and exclusively by GC, so GC
	// never sees, and removes, the parts of an image still being made.
	gcMu sync.RWMutex
}

// beginWork marks the start of an operation that adds to the stores; the
// returned func marks its end. GC waits for such operations.
func (s *Service) beginWork(ctx context.Context, what string) (func(), error) {
	s.gcMu.RLock()
	return s.gcMu.RUnlock, nil
}

// New returns a Service over cfg.
func New(cfg Config) *Service {
	if cfg.Platform == nil {
		p := HostPlatform()
		cfg.Platform = &p
	}
	s := &Service{cfg: cfg, layers: map[digest.Digest]*sync.Mutex{}}
	s.reg.Store(cfg.Registry)
	return s
}

// SetRegistry makes c the registry client of the pulls and pushes that
// start from now on (a configuration reload); those under way keep theirs.
func (s *Service) SetRegistry(c *registry.Client) { s.reg.Store(c) }

// registry returns the current registry client, or an error if there is none.
func (s *Service) registry(op, name string) (*registry.Client, error) {
	c := s.reg.Load()
	if c == nil {
		return nil, fmt.Errorf("%s %s: no registry client: %w", op, name, errdefs.ErrNotImplemented)
	}
	return c, nil
}

// lockLayer takes the lock of one chain ID and returns its unlock.
func (s *Service) lockLayer(chainID digest.Digest) func() {
	s.layerMu.Lock()
	mu, ok := s.layers[chainID]
	if !ok {
		mu = &sync.Mutex{}
		s.layers[chainID] = mu
	}
	s.layerMu.Unlock()
	mu.Lock()
	return mu.Unlock
}

// Resolve finds the image that s names: a full image ID, a name (tag, or
// name@digest matching a repo digest), or a unique ID prefix, in Docker's
// order. The error is of class errdefs.ErrNotFound ("No such image: x").
func (s *Service) Resolve(ctx context.Context, name string) (metadata.Image, error) {
	var img metadata.Image
	err := s.cfg.DB.View(func(tx *metadata.Tx) error {
		var err error
		img, err = resolveTx(tx, name)
		return err
	})
	return img, err
}

func resolveTx(tx *metadata.Tx, name string) (metadata.Image, error) {
	notFound := noSuchImage(name)
	hex := strings.TrimPrefix(name, "sha256:")
	if len(hex) == 64 && LooksLikeID(hex) {
		img, err := tx.GetImage(digest.Digest("sha256:" + hex))
		if errdefs.IsNotFound(err) {
			return img, notFound
		}
		return img, err
	}
	if ref, err := ParseReference(name); err == nil && !strings.HasPrefix(name, "sha256:") {
		if dref, ok := ref.(reference.Canonical); ok {
			want := dref.Name() + "@" + dref.Digest().String()
			imgs, err := tx.Images()
			if err != nil {
				return metadata.Image{}, err
			}
			for _, img := range imgs {
				for _, rd := range img.RepoDigests {
					if rd == want {
						return img, nil
					}
				}
			}
		} else if tagged, ok := ref.(reference.NamedTagged); ok {
			id, err := tx.Tag(TaggedString(tagged))
			if err == nil {
				return tx.GetImage(id)
			}
			if !errdefs.IsNotFound(err) {
				return metadata.Image{}, err
			}
		}
	}
	if !LooksLikeID(name) {
		return metadata.Image{}, notFound
	}
	imgs, err := tx.Images()
	if err != nil {
		return metadata.Image{}, err
	}
	var found []metadata.Image
	for _, img := range imgs {
		if strings.HasPrefix(img.ID.Encoded(), hex) {
			found = append(found, img)
		}
	}
	switch len(found) {
	case 0:
		return metadata.Image{}, notFound
	case 1:
		return found[0], nil
	}
	return metadata.Image{}, fmt.Errorf("image id prefix %q is ambiguous: it matches %d images: %w", name, len(found), errdefs.ErrInvalidArgument)
}

// Manifest returns the manifest of img.
func (s *Service) Manifest(ctx context.Context, img metadata.Image) (ocispec.Manifest, error) {
	raw, err := s.cfg.Content.ReadBlob(ctx, img.Manifest.Digest)
	if err != nil {
		return ocispec.Manifest{}, fmt.Errorf("image %s: read manifest: %w", img.ID.Encoded()[:12], err)
	}
	return parseManifest(raw)
}

// ConfigOf returns the image config of img.
func (s *Service) ConfigOf(ctx context.Context, img metadata.Image) (ocispec.Image, error) {
	raw, err := s.cfg.Content.ReadBlob(ctx, img.ID)
	if err != nil {
		return ocispec.Image{}, fmt.Errorf("image %s: read config: %w", img.ID.Encoded()[:12], err)
	}
	var c ocispec.Image
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("image %s: parse config: %w", img.ID.Encoded()[:12], err)
	}
	return c, nil
}

// RawConfig returns the config blob of img as stored (Docker's inspect
// and history read fields the OCI type does not have).
func (s *Service) RawConfig(ctx context.Context, img metadata.Image) ([]byte, error) {
	raw, err := s.cfg.Content.ReadBlob(ctx, img.ID)
	if err != nil {
		return nil, fmt.Errorf("image %s: read config: %w", img.ID.Encoded()[:12], err)
	}
	return raw, nil
}

// RepoTags returns the familiar names ("busybox:latest") that point at id, sorted.
func (s *Service) RepoTags(ctx context.Context, id digest.Digest) ([]string, error) {
	var tags []string
	err := s.cfg.DB.View(func(tx *metadata.Tx) error {
		names, err := tx.TagsOf(id)
		if err != nil {
			return err
		}
		for _, n := range names {
			tags = append(tags, familiarName(n))
		}
		return nil
	})
	sort.Strings(tags)
	return tags, err
}

// familiarName turns a stored normalized name into Docker's familiar form.
func familiarName(n string) string {
	ref, err := reference.ParseNormalizedNamed(n)
	if err != nil {
		return n
	}
	return reference.FamiliarString(ref)
}

// SnapshotKey returns the name of the committed snapshot holding img's
// unpacked layers (the chain ID of its last layer), the parent a container's
// writable layer is prepared from. An image without layers has "".
func (s *Service) SnapshotKey(ctx context.Context, img metadata.Image) (string, error) {
	c, err := s.ConfigOf(ctx, img)
	if err != nil {
		return "", err
	}
	chain := ChainIDs(c.RootFS.DiffIDs)
	if len(chain) == 0 {
		return "", nil
	}
	key := chain[len(chain)-1].String()
	if _, err := s.cfg.Snapshotter.Stat(ctx, key); err != nil {
		if errdefs.IsNotFound(err) {
			return "", fmt.Errorf("image %s is not unpacked (snapshot %s missing): %w", img.ID.Encoded()[:12], key, errdefs.ErrNotFound)
		}
		return "", err
	}
	return key, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// noSuchImage is Docker's "No such image" error, capitalised as Docker
// writes it because clients match on it.
func noSuchImage(name string) error {
	return fmt.Errorf("%s: %w", "No such image: "+name, errdefs.ErrNotFound)
}
