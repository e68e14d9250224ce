package image

import (
	"context"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/metadata"
)

// Details is everything docker image inspect shows about an image; the API
// layer turns RawConfig's Docker-specific fields (container config,
// comment, docker version) into the wire format.
type Details struct {
	Summary
	Config    ocispec.Image
	RawConfig []byte
	Manifest  ocispec.Manifest
}

// Inspect returns the details of the image name refers to.
func (s *Service) Inspect(ctx context.Context, name string) (Details, error) {
	img, err := s.Resolve(ctx, name)
	if err != nil {
		return Details{}, err
	}
	return s.details(ctx, img)
}

func (s *Service) details(ctx context.Context, img metadata.Image) (Details, error) {
	raw, err := s.RawConfig(ctx, img)
	if err != nil {
		return Details{}, err
	}
	c, err := parseConfig(raw, -1)
	if err != nil {
		return Details{}, fmt.Errorf("image %s: %w", shortID(img.ID), err)
	}
	m, err := s.Manifest(ctx, img)
	if err != nil {
		return Details{}, err
	}
	tags, err := s.RepoTags(ctx, img.ID)
	if err != nil {
		return Details{}, err
	}
	d := Details{
		Summary: Summary{ID: img.ID, RepoTags: tags, Parent: img.Parent, Created: created(c, img), Labels: c.Config.Labels, Record: img},
		Config:  c, RawConfig: raw, Manifest: m,
	}
	for _, rd := range img.RepoDigests {
		d.RepoDigests = append(d.RepoDigests, familiarName(rd))
	}
	if d.Size, err = s.unpackedSize(ctx, c); err != nil {
		return Details{}, err
	}
	return d, nil
}

// HistoryEntry is one line of docker history, newest first.
type HistoryEntry struct {
	// ID is the image ID on the newest entry and "<missing>" on the others,
	// as Docker shows for pulled images.
	ID        string
	Created   time.Time
	CreatedBy string
	Tags      []string
	Size      int64
	Comment   string
}

// History returns the history of the image name refers to, newest first,
// with each layer's unpacked size on the entry that made it.
func (s *Service) History(ctx context.Context, name string) ([]HistoryEntry, error) {
	img, err := s.Resolve(ctx, name)
	if err != nil {
		return nil, err
	}
	c, err := s.ConfigOf(ctx, img)
	if err != nil {
		return nil, err
	}
	chain := ChainIDs(c.RootFS.DiffIDs)
	var out []HistoryEntry
	layer := 0
	for _, h := range c.History {
		e := HistoryEntry{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment}
		if h.Created != nil {
			e.Created = *h.Created
		}
		if !h.EmptyLayer && layer < len(chain) {
			if e.Size, err = s.layerSize(ctx, chain[layer]); err != nil {
				return nil, err
			}
			layer++
		}
		out = append(out, e)
	}
	// Configs without history (imports) still have their layers.
	for ; layer < len(chain); layer++ {
		size, err := s.layerSize(ctx, chain[layer])
		if err != nil {
			return nil, err
		}
		out = append(out, HistoryEntry{ID: "<missing>", Size: size, Created: created(c, img)})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	if len(out) == 0 {
		out = append(out, HistoryEntry{Created: created(c, img)})
	}
	out[0].ID = img.ID.String()
	if out[0].Tags, err = s.RepoTags(ctx, img.ID); err != nil {
		return nil, err
	}
	return out, nil
}

// PruneOptions choose what Prune removes: dangling images (no tags) by
// default, every image no container uses with All; Filters take until and
// label (label!= negates) like docker image prune.
type PruneOptions struct {
	All     bool
	Filters map[string][]string
}

// PruneReport is docker image prune's answer.
type PruneReport struct {
	Removed        []Removed
	SpaceReclaimed int64
}

// Prune removes unused images and then the layers nothing else needs.
func (s *Service) Prune(ctx context.Context, opts PruneOptions) (PruneReport, error) {
	var rep PruneReport
	list, err := s.List(ctx, ListOptions{})
	if err != nil {
		return rep, err
	}
	var until *time.Time
	for _, v := range opts.Filters["until"] {
		t, err := ParseTimestamp(v, time.Now())
		if err != nil {
			return rep, fmt.Errorf("prune: filter until=%s: %w", v, err)
		}
		until = &t
	}
	for _, sum := range list {
		if !opts.All && len(sum.RepoTags) > 0 {
			continue
		}
		if until != nil && !sum.Created.Before(*until) {
			continue
		}
		if !labelsMatch(sum.Labels, opts.Filters["label"], opts.Filters["label!"]) {
			continue
		}
		if users, _ := s.users(sum.ID); len(users) > 0 {
			continue
		}
		removed, err := s.removeImage(ctx, sum.ID)
		if err != nil {
			return rep, err
		}
		rep.Removed = append(rep.Removed, removed...)
	}
	st, err := s.GC(ctx)
	if err != nil {
		return rep, err
	}
	rep.SpaceReclaimed = st.Reclaimed
	return rep, nil
}

// removeImage deletes an image and all its names, skipping images with
// children (they are kept, as Docker keeps them).
func (s *Service) removeImage(ctx context.Context, id digest.Digest) ([]Removed, error) {
	var out []Removed
	err := s.cfg.DB.Update(func(tx *metadata.Tx) error {
		out = nil
		children, err := childrenOf(tx, id)
		if err != nil || len(children) > 0 {
			return err
		}
		img, err := tx.GetImage(id)
		if err != nil {
			return err
		}
		tags, err := tx.TagsOf(id)
		if err != nil {
			return err
		}
		for _, t := range tags {
			out = append(out, Removed{Untagged: familiarName(t)})
		}
		for _, rd := range img.RepoDigests {
			out = append(out, Removed{Untagged: familiarName(rd)})
		}
		out = append(out, Removed{Deleted: id.String()})
		return tx.DeleteImage(id)
	})
	if err != nil {
		return nil, fmt.Errorf("prune image %s: %w", shortID(id), err)
	}
	return out, nil
}

// labelsMatch applies label= (all must match) and label!= (none may match) filters.
func labelsMatch(labels map[string]string, want, not []string) bool {
	match := func(f string) bool {
		k, v, hasValue := cutLabel(f)
		got, ok := labels[k]
		return ok && (!hasValue || got == v)
	}
	for _, f := range want {
		if !match(f) {
			return false
		}
	}
	for _, f := range not {
		if match(f) {
			return false
		}
	}
	return true
}

func cutLabel(f string) (string, string, bool) {
	for i := 0; i < len(f); i++ {
		if f[i] == '=' {
			return f[:i], f[i+1:], true
		}
	}
	return f, "", false
}

// Usage is the image part of docker system df.
type Usage struct {
	Images []ImageUsage
	// LayersSize is the unpacked size of all layers, each counted once.
	LayersSize int64
}

// ImageUsage is one image's share of the disk.
type ImageUsage struct {
	Summary
	// SharedSize is the part of Size in layers other images use too.
	SharedSize int64
	Containers int
}

// DiskUsage reports how much space images take, counting shared layers once.
func (s *Service) DiskUsage(ctx context.Context) (Usage, error) {
	var u Usage
	list, err := s.List(ctx, ListOptions{})
	if err != nil {
		return u, err
	}
	users := map[string]int{}
	sizes := map[string]int64{}
	chains := make([][]digest.Digest, len(list))
	for i, sum := range list {
		c, err := s.ConfigOf(ctx, sum.Record)
		if err != nil {
			return u, err
		}
		chains[i] = ChainIDs(c.RootFS.DiffIDs)
		for _, ch := range chains[i] {
			if _, ok := sizes[ch.String()]; !ok {
				if sizes[ch.String()], err = s.layerSize(ctx, ch); err != nil {
					return u, err
				}
				u.LayersSize += sizes[ch.String()]
			}
			users[ch.String()]++
		}
	}
	for i, sum := range list {
		iu := ImageUsage{Summary: sum}
		for _, ch := range chains[i] {
			if users[ch.String()] > 1 {
				iu.SharedSize += sizes[ch.String()]
			}
		}
		c, _ := s.users(sum.ID)
		iu.Containers = len(c)
		u.Images = append(u.Images, iu)
	}
	return u, nil
}
