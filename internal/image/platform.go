package image

import (
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-project/berth/internal/errdefs"
)

// HostPlatform is the platform berthd runs containers for.
func HostPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	switch p.Architecture {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform parses "os[/arch[/variant]]" as docker --platform does,
// normalizing common aliases (x86_64 is amd64, aarch64 is arm64). An empty
// string is the host platform.
func ParsePlatform(s string) (ocispec.Platform, error) {
	if s == "" {
		return HostPlatform(), nil
	}
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) > 3 || parts[0] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]: %w", s, errdefs.ErrInvalidArgument)
	}
	p := ocispec.Platform{OS: parts[0]}
	if len(parts) > 1 {
		p.Architecture = parts[1]
	} else {
		p.Architecture = runtime.GOARCH
	}
	if len(parts) > 2 {
		p.Variant = parts[2]
	}
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	switch p.Architecture {
	case "x86_64", "x86-64":
		p.Architecture = "amd64"
	case "aarch64":
		p.Architecture = "arm64"
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "i386", "i686":
		p.Architecture = "386"
	}
	if p.Architecture == "" || strings.ContainsAny(p.OS+p.Architecture+p.Variant, " \t:@") {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: %w", s, errdefs.ErrInvalidArgument)
	}
	if p.Architecture == "arm64" && p.Variant == "" {
		p.Variant = "v8"
	}
	if p.Architecture == "arm" && p.Variant == "" {
		p.Variant = "v7"
	}
	return p, nil
}

// FormatPlatform writes p as "os/arch[/variant]".
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// platformScore says how well candidate serves want: 0 means not at all,
// higher is better. OS and architecture must be equal; an exact variant
// beats a missing one, and for arm a lower variant runs on a higher one.
func platformScore(want, candidate ocispec.Platform) int {
	if candidate.OS != want.OS || candidate.Architecture != want.Architecture {
		return 0
	}
	cv := candidate.Variant
	if candidate.Architecture == "arm64" && cv == "" {
		cv = "v8"
	}
	switch {
	case cv == want.Variant:
		return 100
	case cv == "":
		return 50
	case want.Architecture == "arm" && cv < want.Variant && len(cv) == len(want.Variant):
		// Nearest lower variant first: v7 before v6 on a v8 host.
		return 10 + int(cv[len(cv)-1]-'0')
	}
	return 0
}

// SelectManifest returns the entry of an index's manifests that best runs on
// want. Entries without a platform are skipped, as are attestation manifests.
// The error, of class errdefs.ErrNotFound, lists what the index offers.
func SelectManifest(manifests []ocispec.Descriptor, want ocispec.Platform) (ocispec.Descriptor, error) {
	best, bestScore := -1, 0
	var offered []string
	for i, m := range manifests {
		if m.Platform == nil || m.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
			continue
		}
		offered = append(offered, FormatPlatform(*m.Platform))
		if s := platformScore(want, *m.Platform); s > bestScore {
			best, bestScore = i, s
		}
	}
	if best < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("no matching manifest for %s in the manifest list entries (offered: %s): %w",
			FormatPlatform(want), strings.Join(offered, ", "), errdefs.ErrNotFound)
	}
	return manifests[best], nil
}
