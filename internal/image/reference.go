// Package image keeps berthd's images: records of names, manifests and
// configs over the content store, their layers unpacked into snapshots, and
// the operations on them (pull, push, tag, remove, list, inspect, history,
// save, load, import, export, commit, prune, disk usage, garbage collection).
package image

import (
	"fmt"
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
)

// ParseReference parses s the way Docker does: a name without a registry is
// on docker.io, a one-part Docker Hub name is in library/, and a name with
// neither tag nor digest gets the tag latest. Errors are of class
// errdefs.ErrInvalidArgument and quote the input.
func ParseReference(s string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return reference.TagNameOnly(ref), nil
}

// ParseRepository parses a name that must not carry a tag or digest (the
// repository of docker push/pull --all-tags, docker tag's target without a
// tag gets latest through ParseReference instead).
func ParseRepository(s string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format %q: %w: %w", s, err, errdefs.ErrInvalidArgument)
	}
	if !reference.IsNameOnly(ref) {
		return nil, fmt.Errorf("invalid repository name %q: it has a tag or digest: %w", s, errdefs.ErrInvalidArgument)
	}
	return ref, nil
}

// FamiliarString is how Docker shows ref to users: "busybox:latest" for
// docker.io/library/busybox:latest, "localhost:5000/app:v1" as is.
func FamiliarString(ref reference.Named) string { return reference.FamiliarString(ref) }

// Domain returns the registry host of ref ("docker.io", "localhost:5000").
func Domain(ref reference.Named) string { return reference.Domain(ref) }

// TaggedString returns the normalized "name:tag" form of a tagged reference,
// the key under which the tag is stored.
func TaggedString(ref reference.NamedTagged) string { return ref.Name() + ":" + ref.Tag() }

// DigestedName returns "name@digest", Docker's RepoDigests entry.
func DigestedName(ref reference.Named, d digest.Digest) string {
	return ref.Name() + "@" + d.String()
}

// LooksLikeID reports whether s is written as an image ID or a prefix of one
// ("sha256:abc...", or at least 4 lower-case hex digits) rather than a name.
// A hex string can also be a valid name; callers look up names first, as
// Docker does, except for full 64-digit IDs.
func LooksLikeID(s string) bool {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
