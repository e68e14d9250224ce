package snapshot

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-project/berth/internal/errdefs"
)

// Mount is one filesystem mount that exposes a snapshot, shaped like an
// OCI runtime-spec mount without its destination. Type is "bind" or
// "overlay"; Options are mount(8)-style flags ("ro", "rbind", ...) and
// filesystem data ("lowerdir=...").
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// ReadOnly reports whether the mount has the "ro" option.
func (m Mount) ReadOnly() bool {
	return slices.Contains(m.Options, "ro")
}

// option returns the value of the data option name= and whether it is set.
func (m Mount) option(name string) (string, bool) {
	for _, o := range m.Options {
		if v, ok := strings.CutPrefix(o, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// UpperDir says where the changes to the writable snapshot exposed by mounts
// can be written directly, without mounting: for an overlay mount its
// upperdir and its lowerdirs (top first), for a bind mount its source and
// no lowers. Read-only mounts and anything else are ErrInvalidArgument.
func UpperDir(mounts []Mount) (upper string, lowers []string, err error) {
	if len(mounts) != 1 {
		return "", nil, fmt.Errorf("upper dir of %d mounts: want exactly one: %w", len(mounts), errdefs.ErrInvalidArgument)
	}
	m := mounts[0]
	if m.ReadOnly() {
		return "", nil, fmt.Errorf("upper dir of read-only %s mount %s: %w", m.Type, m.Source, errdefs.ErrInvalidArgument)
	}
	switch m.Type {
	case "bind", "rbind":
		if m.Source == "" {
			return "", nil, fmt.Errorf("upper dir of bind mount: no source: %w", errdefs.ErrInvalidArgument)
		}
		return m.Source, nil, nil
	case "overlay":
		upper, ok := m.option("upperdir")
		if !ok || upper == "" {
			return "", nil, fmt.Errorf("upper dir of overlay mount: no upperdir option: %w", errdefs.ErrInvalidArgument)
		}
		if l, ok := m.option("lowerdir"); ok && l != "" {
			lowers = strings.Split(l, ":")
		}
		return upper, lowers, nil
	}
	return "", nil, fmt.Errorf("upper dir of %q mount: unsupported type: %w", m.Type, errdefs.ErrInvalidArgument)
}
