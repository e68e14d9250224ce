package build

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/image"
	"github.com/berth-project/berth/internal/metadata"
)

// cacheKind is the metadata record kind of the build cache.
const cacheKind = "build-cache"

// resultKind is the metadata record kind marking images a build returned:
// Prune leaves them, tagged or not, as Docker's builder prune does.
const resultKind = "build-result"

// markResult records that a build returned image id.
func (b *Builder) markResult(id digest.Digest) error {
	err := b.cfg.DB.Update(func(tx *metadata.Tx) error {
		return tx.PutJSON(resultKind, id.Encoded(), struct{}{})
	})
	if err != nil {
		return fmt.Errorf("record build result: %w", err)
	}
	return nil
}

// cacheEntry is one build cache record: the image a step made.
type cacheEntry struct {
	Image   digest.Digest `json:"image"`
	Parent  digest.Digest `json:"parent,omitempty"`
	Created time.Time     `json:"created"`
}

// cacheKey is the key of a step: its parent image, its created_by (the
// instruction after expansion) and whatever else decides its result
// (content digests of COPY sources, RUN's network).
func cacheKey(parent digest.Digest, createdBy, extra string) string {
	d := digest.Canonical.Digester()
	fmt.Fprintf(d.Hash(), "berth-build-cache-v2\x00%s\x00%s\x00%s", parent, createdBy, extra)
	return d.Digest().Encoded()
}

// sourceKind is the metadata record kind remembering the content digest
// of a COPY --from's sources in an image (an image's tree never changes,
// so neither does the digest): a rebuild need not mount and read them
// again to find its cache key.
const sourceKind = "build-source"

// sourceEntry is one sourceKind record.
type sourceEntry struct {
	Sum     string    `json:"sum"`
	Created time.Time `json:"created"`
}

// sourceKey is the sourceKind key of the sources paths (less the
// --exclude patterns) in image id.
func sourceKey(id digest.Digest, paths, exclude []string) string {
	d := digest.Canonical.Digester()
	fmt.Fprintf(d.Hash(), "berth-build-source-v1\x00%s\x00%q\x00%q", id, paths, exclude)
	return d.Digest().Encoded()
}

// sourceSum returns the content digest (hashSources) of the sources
// paths less exclude in image id: the one recorded, else hash's, which
// is then recorded.
func (b *Builder) sourceSum(id digest.Digest, paths, exclude []string, hash func() (string, error)) (string, error) {
	key := sourceKey(id, paths, exclude)
	var e sourceEntry
	err := b.cfg.DB.View(func(tx *metadata.Tx) error { return tx.GetJSON(sourceKind, key, &e) })
	switch {
	case err == nil && e.Sum != "":
		return e.Sum, nil
	case err != nil && !errdefs.IsNotFound(err) && !errdefs.IsDataLoss(err):
		return "", fmt.Errorf("build cache: %w", err)
	}
	sum, err := hash()
	if err != nil {
		return "", err
	}
	err = b.cfg.DB.Update(func(tx *metadata.Tx) error {
		return tx.PutJSON(sourceKind, key, sourceEntry{Sum: sum, Created: time.Now().UTC()})
	})
	if err != nil {
		return "", fmt.Errorf("build cache: %w", err)
	}
	return sum, nil
}

// lookup returns the cached image of key, if it still exists with its
// layers unpacked, held for the build.
func (bd *build) lookup(ctx context.Context, key string, parent digest.Digest) (digest.Digest, bool, error) {
	b := bd.b
	var e cacheEntry
	err := b.cfg.DB.View(func(tx *metadata.Tx) error { return tx.GetJSON(cacheKind, key, &e) })
	if errdefs.IsNotFound(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("build cache: %w", err)
	}
	if e.Parent != parent {
		return "", false, nil
	}
	// Held before it is checked: Prune removes only what no build holds.
	if !bd.holdImage(e.Image) {
		return "", false, nil // going with a Prune
	}
	img, err := b.cfg.Images.Resolve(ctx, e.Image.String())
	if err != nil {
		return "", false, nil // pruned since: build anew
	}
	if _, err := b.cfg.Images.SnapshotKey(ctx, img); err != nil {
		return "", false, nil
	}
	return img.ID, true, nil
}

// store records that the step key made image id on parent.
func (b *Builder) store(key string, parent, id digest.Digest) error {
	err := b.cfg.DB.Update(func(tx *metadata.Tx) error {
		return tx.PutJSON(cacheKind, key, cacheEntry{Image: id, Parent: parent, Created: time.Now().UTC()})
	})
	if err != nil {
		return fmt.Errorf("build cache: %w", err)
	}
	return nil
}

// Prune drops every build cache entry (and the recorded COPY --from
// source digests) and deletes the untagged images only
// the cache kept (intermediate step images no other image builds on, no
// container uses and no build returned), with the layers only they held,
// and the RUN --mount=type=cache directories. It returns the bytes that
// went.
func (b *Builder) Prune(ctx context.Context) (int64, error) {
	ids := map[digest.Digest]bool{}
	err := b.cfg.DB.Update(func(tx *metadata.Tx) error {
		var keys []string
		err := tx.ForEachJSON(cacheKind, func(key string, raw []byte) error {
			keys = append(keys, key)
			var e cacheEntry
			if json.Unmarshal(raw, &e) == nil && e.Image != "" {
				ids[e.Image] = true
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := tx.DeleteJSON(cacheKind, k); err != nil {
				return err
			}
		}
		var sums []string
		err = tx.ForEachJSON(sourceKind, func(key string, _ []byte) error {
			sums = append(sums, key)
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range sums {
			if err := tx.DeleteJSON(sourceKind, k); err != nil {
				return err
			}
		}
		// Images builds returned stay; markers of images gone go.
		var gone []string
		err = tx.ForEachJSON(resultKind, func(key string, _ []byte) error {
			id := digest.NewDigestFromEncoded(digest.SHA256, key)
			delete(ids, id)
			if _, err := tx.GetImage(id); errdefs.IsNotFound(err) {
				gone = append(gone, key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range gone {
			if err := tx.DeleteJSON(resultKind, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune build cache: %w", err)
	}
	before, err := b.cfg.Images.DiskUsage(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune build cache: %w", err)
	}
	// Children go before their parents: repeat while images go.
	for progress := true; progress; {
		progress = false
		for id := range ids {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			tags, err := b.cfg.Images.RepoTags(ctx, id)
			if err != nil || len(tags) > 0 {
				delete(ids, id)
				continue
			}
			err = b.removeUnused(ctx, id)
			switch {
			case err == nil, errdefs.IsNotFound(err):
				delete(ids, id)
				progress = true
			case errdefs.IsConflict(err):
				// A child or a container still uses it; maybe later.
			default:
				return 0, fmt.Errorf("prune build cache: %w", err)
			}
		}
	}
	after, err := b.cfg.Images.DiskUsage(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune build cache: %w", err)
	}
	mounts, err := b.pruneCacheMounts(ctx)
	if err != nil {
		return 0, fmt.Errorf("prune build cache: %w", err)
	}
	return max(before.LayersSize-after.LayersSize, 0) + mounts, nil
}

// removeUnused removes image id unless a running build holds it (then it
// is kept, as for a conflict).
// The image is marked while it goes, not locked: the image service may
// ask InUse meanwhile.
func (b *Builder) removeUnused(ctx context.Context, id digest.Digest) error {
	b.activeMu.Lock()
	if b.active[id] > 0 {
		b.activeMu.Unlock()
		return fmt.Errorf("image %s is used by a build: %w", shortID(id), errdefs.ErrConflict)
	}
	if b.pruning == nil {
		b.pruning = map[digest.Digest]bool{}
	}
	b.pruning[id] = true
	b.activeMu.Unlock()
	defer func() {
		b.activeMu.Lock()
		delete(b.pruning, id)
		b.activeMu.Unlock()
	}()
	_, err := b.cfg.Images.Remove(ctx, id.String(), image.RemoveOptions{})
	return err
}
