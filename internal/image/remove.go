package image

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
)

// RemoveOptions tune Remove, like docker rmi's flags.
type RemoveOptions struct {
	// Force removes an image referenced by several names, or used by a
	// stopped container (which keeps its layers until it is removed).
	Force bool
	// NoPrune keeps the untagged parents of a deleted image (a build's
	// intermediate images), which are otherwise deleted with it as long
	// as nothing else uses them.
	NoPrune bool
}

// Removed is one line of docker rmi's answer: a name that was untagged or
// an image that was deleted.
type Removed struct {
	Untagged string
	Deleted  string
}

// Remove untags or deletes what name refers to, as docker rmi does: a name
// is untagged, and the image deleted when that was its last name; an ID
// deletes the image with all its names. Images used by containers are
// kept (conflict error) unless forced, and never while a container runs.
func (s *Service) Remove(ctx context.Context, name string, opts RemoveOptions) ([]Removed, error) {
	unlock, err := s.beginWork(ctx, "remove")
	if err != nil {
		return nil, err
	}
	var out []Removed
	var deleted bool
	err = s.cfg.DB.Update(func(tx *metadata.Tx) error {
		out, deleted = nil, false
		img, err := resolveTx(tx, name)
		if err != nil {
			return err
		}
		tags, err := tx.TagsOf(img.ID)
		if err != nil {
			return err
		}
		users, running := s.users(img.ID)
		byName := ""
		if ref, err := ParseReference(name); err == nil && !LooksLikeID(name) {
			switch r := ref.(type) {
			case reference.NamedTagged:
				if contains(tags, TaggedString(r)) {
					byName = TaggedString(r)
				}
			case reference.Canonical:
				byName = r.Name() + "@" + r.Digest().String()
			}
		}
		if byName != "" {
			// Untag one name; delete the image when no tag is left.
			otherTags := len(tags)
			if strings.Contains(byName, "@") {
				img.RepoDigests = remove(img.RepoDigests, byName)
				if err := tx.PutImage(img); err != nil {
					return err
				}
			} else {
				if err := tx.DeleteTag(byName); err != nil {
					return err
				}
				otherTags--
			}
			out = append(out, Removed{Untagged: familiarName(byName)})
			if otherTags > 0 {
				return nil
			}
			if len(users) > 0 {
				if !opts.Force {
					return fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s: %w",
						name, shortContainer(users[0]), shortID(img.ID), errdefs.ErrConflict)
				}
				return nil // untagged; the image stays for its containers
			}
			for _, rd := range img.RepoDigests {
				out = append(out, Removed{Untagged: familiarName(rd)})
			}
		} else {
			if len(users) > 0 {
				if running {
					return fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s: %w",
						shortID(img.ID), shortContainer(users[0]), errdefs.ErrConflict)
				}
				if !opts.Force {
					return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s: %w",
						shortID(img.ID), shortContainer(users[0]), errdefs.ErrConflict)
				}
			}
			if len(tags) > 1 && !opts.Force {
				return fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w", shortID(img.ID), errdefs.ErrConflict)
			}
			for _, t := range tags {
				out = append(out, Removed{Untagged: familiarName(t)})
			}
			for _, rd := range img.RepoDigests {
				out = append(out, Removed{Untagged: familiarName(rd)})
			}
			if len(users) > 0 {
				for _, t := range tags {
					if err := tx.DeleteTag(t); err != nil {
						return err
					}
				}
				return nil
			}
		}
		children, err := childrenOf(tx, img.ID)
		if err != nil {
			return err
		}
		if len(children) > 0 {
			return fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image has dependent child images: %w", shortID(img.ID), errdefs.ErrConflict)
		}
		if err := tx.DeleteImage(img.ID); err != nil {
			return err
		}
		out = append(out, Removed{Deleted: img.ID.String()})
		deleted = true
		if opts.NoPrune {
			return nil
		}
		pruned, err := s.pruneParents(tx, img.Parent)
		out = append(out, pruned...)
		return err
	})
	unlock()
	if err != nil {
		// Docker's messages ("No such image: x", "conflict: unable to
		// delete ...") already name the image; clients show them as is.
		return nil, err
	}
	if deleted {
		if _, err := s.GC(ctx); err != nil {
			return out, fmt.Errorf("remove image %s: release its layers: %w", name, err)
		}
	}
	return out, nil
}

// pruneParents deletes the chain of untagged parents from id up, as
// Docker does when it deletes an image: each one that no name, other
// image or container still uses.
func (s *Service) pruneParents(tx *metadata.Tx, id digest.Digest) ([]Removed, error) {
	var out []Removed
	for id != "" {
		img, err := tx.GetImage(id)
		if errdefs.IsNotFound(err) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		tags, err := tx.TagsOf(id)
		if err != nil {
			return out, err
		}
		children, err := childrenOf(tx, id)
		if err != nil {
			return out, err
		}
		if users, _ := s.users(id); len(tags) > 0 || len(img.RepoDigests) > 0 || len(children) > 0 || len(users) > 0 {
			return out, nil
		}
		if err := tx.DeleteImage(id); err != nil {
			return out, err
		}
		out = append(out, Removed{Deleted: id.String()})
		id = img.Parent
	}
	return out, nil
}

// users returns the containers using id and whether one of them runs.
func (s *Service) users(id digest.Digest) ([]string, bool) {
	if s.cfg.InUse == nil {
		return nil, false
	}
	return s.cfg.InUse(id)
}

func childrenOf(tx *metadata.Tx, id digest.Digest) ([]digest.Digest, error) {
	imgs, err := tx.Images()
	if err != nil {
		return nil, err
	}
	var out []digest.Digest
	for _, img := range imgs {
		if img.Parent == id {
			out = append(out, img.ID)
		}
	}
	return out, nil
}

func remove(list []string, s string) []string {
	out := list[:0:0]
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func shortContainer(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
