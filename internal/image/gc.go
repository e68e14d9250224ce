package image

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/content"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/snapshot"
)

// ingestKeep is how long an interrupted download is kept for a resume.
const ingestKeep = time.Hour

// GCStats says what a garbage collection removed.
type GCStats struct {
	Blobs     int
	Snapshots int
	// Reclaimed is the bytes of the removed blobs and snapshots.
	Reclaimed int64
}

// GC removes the blobs and snapshots that nothing references: not an image
// (its index, manifest, config and layer blobs; its layer snapshots), not a
// lease (build cache, work a caller protects), not a container's snapshot
// (any snapshot that is not a committed layer, and its parents), and not an
// operation in progress (GC waits for pulls, loads and imports to finish).
// Interrupted downloads older than an hour go too.
func (s *Service) GC(ctx context.Context) (GCStats, error) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	var st GCStats
	keepBlobs := map[digest.Digest]bool{}
	keepSnaps := map[string]bool{}
	now := time.Now()
	var expired []string
	var images []metadata.Image
	err := s.cfg.DB.View(func(tx *metadata.Tx) error {
		var err error
		if images, err = tx.Images(); err != nil {
			return err
		}
		leases, err := tx.Leases()
		if err != nil {
			return err
		}
		for _, l := range leases {
			if !l.Expires.IsZero() && l.Expires.Before(now) {
				expired = append(expired, l.ID)
				continue
			}
			for _, r := range l.Resources {
				switch r.Kind {
				case "content":
					keepBlobs[digest.Digest(r.ID)] = true
				case "snapshot":
					keepSnaps[r.ID] = true
				}
			}
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	for _, img := range images {
		keepBlobs[img.ID] = true
		keepBlobs[img.Manifest.Digest] = true
		if img.Index != nil {
			keepBlobs[img.Index.Digest] = true
		}
		if m, err := s.Manifest(ctx, img); err == nil {
			for _, l := range m.Layers {
				keepBlobs[l.Digest] = true
			}
		} else {
			log.G(ctx).Warn("gc: image manifest unreadable; keeping what its config names", "image", img.ID, "err", err)
		}
		c, err := s.ConfigOf(ctx, img)
		if err != nil {
			// Without the config the layers cannot be known: keep every snapshot.
			return st, fmt.Errorf("gc: %w", err)
		}
		for _, ch := range ChainIDs(c.RootFS.DiffIDs) {
			keepSnaps[ch.String()] = true
		}
	}
	if err := s.sweepSnapshots(ctx, keepSnaps, &st); err != nil {
		return st, err
	}
	err = s.cfg.Content.Walk(ctx, func(info content.Info) error {
		if keepBlobs[info.Digest] {
			return nil
		}
		if err := s.cfg.Content.Delete(ctx, info.Digest); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		st.Blobs++
		st.Reclaimed += info.Size
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	if err := s.cfg.Content.PruneIngests(ctx, ingestKeep); err != nil {
		return st, fmt.Errorf("gc: %w", err)
	}
	if len(expired) > 0 {
		err := s.cfg.DB.Update(func(tx *metadata.Tx) error {
			for _, id := range expired {
				if err := tx.DeleteLease(id); err != nil && !errdefs.IsNotFound(err) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return st, fmt.Errorf("gc: remove expired leases: %w", err)
		}
	}
	return st, nil
}

// sweepSnapshots removes committed layer snapshots not in keep and not
// under a kept snapshot, and unpack scratch snapshots left by a crash,
// children before parents.
func (s *Service) sweepSnapshots(ctx context.Context, keep map[string]bool, st *GCStats) error {
	infos := map[string]snapshot.Info{}
	err := s.cfg.Snapshotter.Walk(ctx, func(_ context.Context, info snapshot.Info) error {
		infos[info.Name] = info
		return nil
	})
	if err != nil {
		return fmt.Errorf("gc: list snapshots: %w", err)
	}
	for name, info := range infos {
		if info.Kind != snapshot.KindCommitted && !strings.HasPrefix(name, "extract-") {
			keep[name] = true // a container's layer or a view someone holds
		}
	}
	for name := range keep {
		for p := infos[name].Parent; p != "" && !keep[p]; p = infos[p].Parent {
			keep[p] = true
		}
	}
	depth := func(name string) int {
		d := 0
		for p := infos[name].Parent; p != ""; p = infos[p].Parent {
			d++
		}
		return d
	}
	var doomed []string
	for name := range infos {
		if !keep[name] {
			doomed = append(doomed, name)
		}
	}
	sort.Slice(doomed, func(i, j int) bool { return depth(doomed[i]) > depth(doomed[j]) })
	for _, name := range doomed {
		var size int64
		if u, err := s.cfg.Snapshotter.Usage(ctx, name); err == nil {
			size = u.Size
		}
		if err := s.cfg.Snapshotter.Remove(ctx, name); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("gc: remove snapshot %s: %w", name, err)
		}
		st.Snapshots++
		st.Reclaimed += size
	}
	return nil
}
