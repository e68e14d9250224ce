package image

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/snapshot"
)

// Export writes the whole tree that mounts expose as one tar (docker
// export of a container), reading it through a temporary read-only mount
// so that the container's own mount is left alone.
func (s *Service) Export(ctx context.Context, w io.Writer, mounts []snapshot.Mount) error {
	ro := make([]snapshot.Mount, len(mounts))
	for i, m := range mounts {
		ro[i] = readOnlyMount(m)
	}
	err := snapshot.WithTempMount(ctx, ro, func(root string) error {
		return archive.WriteTree(ctx, w, root)
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// ExportSnapshot writes the tree of the snapshot key as one tar.
func (s *Service) ExportSnapshot(ctx context.Context, w io.Writer, key string) error {
	mounts, err := s.cfg.Snapshotter.Mounts(ctx, key)
	if err != nil {
		return fmt.Errorf("export snapshot %s: %w", key, err)
	}
	if err := s.Export(ctx, w, mounts); err != nil {
		return fmt.Errorf("export snapshot %s: %w", key, err)
	}
	return nil
}

// readOnlyMount returns m as a read-only mount of the same tree. A
// writable overlay becomes an overlay of lower directories only, its upper
// directory on top (a second overlay mount must not share the upper and
// work directories of the one the container runs on); anything else gets
// the "ro" option.
func readOnlyMount(m snapshot.Mount) snapshot.Mount {
	out := snapshot.Mount{Type: m.Type, Source: m.Source}
	if m.Type == "overlay" {
		var upper string
		var lowers []string
		for _, o := range m.Options {
			switch k, v, _ := strings.Cut(o, "="); k {
			case "upperdir":
				upper = v
			case "workdir":
			case "lowerdir":
				lowers = strings.Split(v, ":")
			default:
				if o != "rw" && o != "ro" {
					out.Options = append(out.Options, o)
				}
			}
		}
		if upper != "" {
			lowers = append([]string{upper}, lowers...)
		}
		if len(lowers) == 1 {
			// overlayfs wants two lower directories without an upper one.
			return snapshot.Mount{Type: "bind", Source: lowers[0], Options: []string{"ro", "rbind"}}
		}
		out.Options = append(out.Options, "ro", "lowerdir="+strings.Join(lowers, ":"))
		return out
	}
	out.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "rw" })
	if !slices.Contains(out.Options, "ro") {
		out.Options = append(out.Options, "ro")
	}
	return out
}
