package metadata

import (
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

// Image is the record of one image in the store, keyed by its ID.
type Image struct {
	ID          digest.Digest       `json:"id"`              // Docker's image ID: the config digest
	Manifest    ocispec.Descriptor  `json:"manifest"`        // the single-platform manifest in the content store
	Index       *ocispec.Descriptor `json:"index,omitempty"` // the index or manifest list it was selected from, if any
	RepoDigests []string            `json:"repoDigests,omitempty"`
	Parent      digest.Digest       `json:"parent,omitempty"` // builder or commit parent, optional
	Created     time.Time           `json:"created"`          // when it entered the store
	LastTagTime time.Time           `json:"lastTagTime,omitzero"`
	Labels      map[string]string   `json:"labels,omitempty"`
}

// checkDigest returns an ErrInvalidArgument error naming what unless d is a
// well-formed digest.
func checkDigest(what string, d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%s %q: %v: %w", what, string(d), err, errdefs.ErrInvalidArgument)
	}
	return nil
}

// PutImage stores img, replacing any record with the same ID. A zero
// Created is set to now.
func (tx *Tx) PutImage(img Image) error {
	if err := checkDigest("image id", img.ID); err != nil {
		return fmt.Errorf("put image: %w", err)
	}
	if err := checkDigest("manifest digest", img.Manifest.Digest); err != nil {
		return fmt.Errorf("put image %s: %w", img.ID, err)
	}
	if img.Index != nil {
		if err := checkDigest("index digest", img.Index.Digest); err != nil {
			return fmt.Errorf("put image %s: %w", img.ID, err)
		}
	}
	if img.Parent != "" {
		if err := checkDigest("parent", img.Parent); err != nil {
			return fmt.Errorf("put image %s: %w", img.ID, err)
		}
	}
	if img.Created.IsZero() {
		img.Created = time.Now().UTC()
	}
	b, err := json.Marshal(img)
	if err != nil {
		return fmt.Errorf("put image %s: %w", img.ID, err)
	}
	if err := tx.bucket(bucketImages).Put([]byte(img.ID), b); err != nil {
		return fmt.Errorf("put image %s: %w", img.ID, err)
	}
	return nil
}

// GetImage returns the image with the given ID, or an ErrNotFound error.
func (tx *Tx) GetImage(id digest.Digest) (Image, error) {
	b := tx.bucket(bucketImages).Get([]byte(id))
	if b == nil {
		return Image{}, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	var img Image
	if err := json.Unmarshal(b, &img); err != nil {
		return Image{}, fmt.Errorf("image %s: decode record: %w: %w", id, errdefs.ErrDataLoss, err)
	}
	return img, nil
}

// DeleteImage removes the image with the given ID and every tag naming it,
// or returns an ErrNotFound error. Whether an image with tags may be deleted
// is the caller's policy.
func (tx *Tx) DeleteImage(id digest.Digest) error {
	images := tx.bucket(bucketImages)
	if images.Get([]byte(id)) == nil {
		return fmt.Errorf("delete image %s: %w", id, errdefs.ErrNotFound)
	}
	tags, err := tx.TagsOf(id)
	if err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	for _, name := range tags {
		if err := tx.bucket(bucketTags).Delete([]byte(name)); err != nil {
			return fmt.Errorf("delete image %s: untag %s: %w", id, name, err)
		}
	}
	if err := images.Delete([]byte(id)); err != nil {
		return fmt.Errorf("delete image %s: %w", id, err)
	}
	return nil
}

// Images returns every image, ordered by ID.
func (tx *Tx) Images() ([]Image, error) {
	var out []Image
	err := tx.bucket(bucketImages).ForEach(func(k, v []byte) error {
		var img Image
		if err := json.Unmarshal(v, &img); err != nil {
			return fmt.Errorf("image %s: decode record: %w: %w", k, errdefs.ErrDataLoss, err)
		}
		out = append(out, img)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	return out, nil
}

// checkTagName returns an ErrInvalidArgument error unless name is a
// normalized reference ("docker.io/library/busybox:latest") with a tag or a
// digest.
func checkTagName(name string) error {
	ref, err := reference.ParseNamed(name)
	if err != nil {
		return fmt.Errorf("tag name %q: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	_, tagged := ref.(reference.Tagged)
	_, digested := ref.(reference.Digested)
	if !tagged && !digested {
		return fmt.Errorf("tag name %q: no tag or digest: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

// SetTag points the normalized reference name at image id, moving it from
// any image it named before. The image must exist (ErrNotFound otherwise).
func (tx *Tx) SetTag(name string, id digest.Digest) error {
	if err := checkTagName(name); err != nil {
		return fmt.Errorf("set tag: %w", err)
	}
	if tx.bucket(bucketImages).Get([]byte(id)) == nil {
		return fmt.Errorf("set tag %s: image %s: %w", name, id, errdefs.ErrNotFound)
	}
	if err := tx.bucket(bucketTags).Put([]byte(name), []byte(id)); err != nil {
		return fmt.Errorf("set tag %s: %w", name, err)
	}
	return nil
}

// Tag returns the image ID name points at, or an ErrNotFound error.
func (tx *Tx) Tag(name string) (digest.Digest, error) {
	v := tx.bucket(bucketTags).Get([]byte(name))
	if v == nil {
		return "", fmt.Errorf("tag %s: %w", name, errdefs.ErrNotFound)
	}
	return digest.Digest(v), nil
}

// DeleteTag removes the tag name, or returns an ErrNotFound error. The image
// it named stays.
func (tx *Tx) DeleteTag(name string) error {
	tags := tx.bucket(bucketTags)
	if tags.Get([]byte(name)) == nil {
		return fmt.Errorf("delete tag %s: %w", name, errdefs.ErrNotFound)
	}
	if err := tags.Delete([]byte(name)); err != nil {
		return fmt.Errorf("delete tag %s: %w", name, err)
	}
	return nil
}

// Tags returns every tag and the image it names.
func (tx *Tx) Tags() (map[string]digest.Digest, error) {
	out := map[string]digest.Digest{}
	err := tx.bucket(bucketTags).ForEach(func(k, v []byte) error {
		out[string(k)] = digest.Digest(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list tags: %w", err)
	}
	return out, nil
}

// TagsOf returns the tags naming image id, sorted.
func (tx *Tx) TagsOf(id digest.Digest) ([]string, error) {
	var out []string
	err := tx.bucket(bucketTags).ForEach(func(k, v []byte) error {
		if digest.Digest(v) == id {
			out = append(out, string(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tags of %s: %w", id, err)
	}
	sort.Strings(out)
	return out, nil
}
