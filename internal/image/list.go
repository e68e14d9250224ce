package image

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
)

// Summary is an image as `docker images` lists it.
type Summary struct {
	ID          digest.Digest
	RepoTags    []string // familiar names: "busybox:latest"
	RepoDigests []string // familiar: "busybox@sha256:..."
	Parent      digest.Digest
	Created     time.Time // from the image config
	Size        int64     // unpacked size of all its layers
	Labels      map[string]string
	Record      metadata.Image
}

// ListOptions filter List. Filters take Docker's keys: dangling (true or
// false), label (key or key=value), before and since (an image), and
// reference (a name pattern such as "busybox" or "*/app:v*").
type ListOptions struct {
	Filters map[string][]string
	// HideIntermediate leaves out the untagged images other images are
	// built on (a build's steps), as Docker's list does without "all".
	HideIntermediate bool
}

// List returns the images that pass opts' filters, newest first.
func (s *Service) List(ctx context.Context, opts ListOptions) ([]Summary, error) {
	for k := range opts.Filters {
		switch k {
		case "dangling", "label", "before", "since", "reference", "until":
		default:
			return nil, fmt.Errorf("invalid filter %q: %w", k, errdefs.ErrInvalidArgument)
		}
	}
	var records []metadata.Image
	tags := map[digest.Digest][]string{}
	err := s.cfg.DB.View(func(tx *metadata.Tx) error {
		var err error
		if records, err = tx.Images(); err != nil {
			return err
		}
		all, err := tx.Tags()
		if err != nil {
			return err
		}
		for name, id := range all {
			tags[id] = append(tags[id], name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var before, since *time.Time
	for key, dst := range map[string]**time.Time{"before": &before, "since": &since} {
		for _, v := range opts.Filters[key] {
			img, err := s.Resolve(ctx, v)
			if err != nil {
				return nil, fmt.Errorf("filter %s=%s: %w", key, v, err)
			}
			c, err := s.ConfigOf(ctx, img)
			if err != nil {
				return nil, err
			}
			t := created(c, img)
			*dst = &t
		}
	}
	var until *time.Time
	for _, v := range opts.Filters["until"] {
		t, err := ParseTimestamp(v, time.Now())
		if err != nil {
			return nil, fmt.Errorf("filter until=%s: %w", v, err)
		}
		until = &t
	}
	parents := map[digest.Digest]bool{}
	for _, rec := range records {
		if rec.Parent != "" {
			parents[rec.Parent] = true
		}
	}
	var out []Summary
	for _, rec := range records {
		if opts.HideIntermediate && parents[rec.ID] && len(tags[rec.ID]) == 0 && len(rec.RepoDigests) == 0 {
			continue
		}
		c, err := s.ConfigOf(ctx, rec)
		if err != nil {
			return nil, err
		}
		sum := Summary{ID: rec.ID, Parent: rec.Parent, Created: created(c, rec), Labels: c.Config.Labels, Record: rec}
		for _, n := range tags[rec.ID] {
			sum.RepoTags = append(sum.RepoTags, familiarName(n))
		}
		sort.Strings(sum.RepoTags)
		for _, rd := range rec.RepoDigests {
			sum.RepoDigests = append(sum.RepoDigests, familiarName(rd))
		}
		if !passes(opts.Filters, sum, before, since, until) {
			continue
		}
		if pats := opts.Filters["reference"]; len(pats) > 0 {
			// Docker lists only the names that matched.
			var names []string
			for _, t := range sum.RepoTags {
				for _, p := range pats {
					if matchReference(p, t) {
						names = append(names, t)
						break
					}
				}
			}
			sum.RepoTags = names
		}
		if sum.Size, err = s.unpackedSize(ctx, c); err != nil {
			return nil, err
		}
		out = append(out, sum)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// created is the image's creation time: the config's, else when it was stored.
func created(c ocispec.Image, rec metadata.Image) time.Time {
	if c.Created != nil && !c.Created.IsZero() {
		return *c.Created
	}
	return rec.Created
}

func passes(f map[string][]string, sum Summary, before, since, until *time.Time) bool {
	for _, v := range f["dangling"] {
		dangling := len(sum.RepoTags) == 0
		if (v == "true" || v == "1") != dangling {
			return false
		}
	}
	for _, v := range f["label"] {
		k, want, hasValue := strings.Cut(v, "=")
		got, ok := sum.Labels[k]
		if !ok || (hasValue && got != want) {
			return false
		}
	}
	if before != nil && !sum.Created.Before(*before) {
		return false
	}
	if since != nil && !sum.Created.After(*since) {
		return false
	}
	if until != nil && !sum.Created.Before(*until) {
		return false
	}
	if pats := f["reference"]; len(pats) > 0 {
		matched := false
		for _, p := range pats {
			for _, t := range sum.RepoTags {
				if matchReference(p, t) {
					matched = true
				}
			}
		}
		if !matched {
			return false
		}
	}
	return true
}

// matchReference matches a familiar "name:tag" against a Docker reference
// filter pattern: the pattern matches the whole name:tag, or the name alone
// when it has no tag part.
func matchReference(pattern, nameTag string) bool {
	if ok, _ := path.Match(pattern, nameTag); ok {
		return true
	}
	name, _, _ := strings.Cut(nameTag, ":")
	if i := strings.LastIndex(nameTag, ":"); i > strings.LastIndex(nameTag, "/") {
		name = nameTag[:i]
	}
	if ok, _ := path.Match(pattern, name); ok {
		return true
	}
	if ref, err := reference.ParseNormalizedNamed(name); err == nil {
		if ok, _ := path.Match(pattern, ref.Name()); ok {
			return true
		}
	}
	return false
}

// unpackedSize sums the sizes of an image's layers, as recorded when they
// were unpacked.
func (s *Service) unpackedSize(ctx context.Context, c ocispec.Image) (int64, error) {
	var total int64
	for _, chainID := range ChainIDs(c.RootFS.DiffIDs) {
		n, err := s.layerSize(ctx, chainID)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// layerSize is the size of one layer's own files (not its parents').
func (s *Service) layerSize(ctx context.Context, chainID digest.Digest) (int64, error) {
	info, err := s.cfg.Snapshotter.Stat(ctx, chainID.String())
	if errdefs.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if v, ok := info.Labels[labelLayerSize]; ok {
		var n int64
		if _, err := fmt.Sscan(v, &n); err == nil {
			return n, nil
		}
	}
	u, err := s.cfg.Snapshotter.Usage(ctx, chainID.String())
	if err != nil {
		return 0, err
	}
	return u.Size, nil
}

// labelLayerSize is the snapshot label holding the bytes a layer unpacked to.
const labelLayerSize = "berth.layer.size"

// ParseTimestamp parses Docker's time filter values: RFC 3339 (with or
// without time zone, down to a date), Unix seconds with optional fraction,
// or a Go duration ("10m") meaning that long before now.
func ParseTimestamp(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	var sec, nsec int64
	if whole, frac, ok := strings.Cut(v, "."); ok {
		if _, err := fmt.Sscanf(whole+" "+(frac + "000000000")[:9], "%d %d", &sec, &nsec); err == nil {
			return time.Unix(sec, nsec), nil
		}
	} else if _, err := fmt.Sscanf(v, "%d", &sec); err == nil && fmt.Sprint(sec) == v {
		return time.Unix(sec, 0), nil
	}
	return time.Time{}, fmt.Errorf("invalid timestamp %q: %w", v, errdefs.ErrInvalidArgument)
}
