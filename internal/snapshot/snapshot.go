// Package snapshot defines berth's Snapshotter: the store of the directory
// trees that image layers are unpacked into and that containers run on, the
// mounts that expose a snapshot, and helpers to mount them.
//
// The implementations live in overlay/ (layers stacked with overlayfs, no
// copies) and native/ (each snapshot a full copy of its parent, for hosts
// without overlayfs); snapshottest/ is the conformance suite both pass.
package snapshot

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/berth-project/berth/internal/errdefs"
)

// Kind is the state of a snapshot: see Snapshotter.
type Kind uint8

// The kinds of snapshot.
const (
	KindUnknown Kind = iota
	KindView
	KindActive
	KindCommitted
)

// String returns "view", "active", "committed" or "unknown".
func (k Kind) String() string {
	switch k {
	case KindView:
		return "view"
	case KindActive:
		return "active"
	case KindCommitted:
		return "committed"
	}
	return "unknown"
}

// Info describes a snapshot. Name is its key; Parent is the name of the
// committed snapshot it was made from, or "" for none.
type Info struct {
	Name    string
	Parent  string
	Kind    Kind
	Labels  map[string]string
	Created time.Time
	Updated time.Time
}

// Usage is the disk a snapshot itself holds: the bytes of its regular files
// and symlinks (a hard-linked file counted once) and its number of inodes.
type Usage struct {
	Size   int64
	Inodes int64
}

// Opt sets optional fields of a snapshot when it is created or committed.
type Opt func(*Info)

// WithLabels sets the snapshot's labels (a copy of labels).
func WithLabels(labels map[string]string) Opt {
	return func(i *Info) {
		if len(labels) == 0 {
			return
		}
		if i.Labels == nil {
			i.Labels = make(map[string]string, len(labels))
		}
		for k, v := range labels {
			i.Labels[k] = v
		}
	}
}

// Snapshotter stores snapshots: directory trees identified by a key.
//
// A snapshot is of one of three kinds:
//   - committed: read-only and immutable; the only kind that may be a parent.
//     Image layers are unpacked once into committed snapshots named by
//     their chain ID and shared by every image and container using them.
//   - active: writable, made by Prepare from a committed parent (or from
//     nothing); its content is the parent's plus its own changes. A
//     container's writable layer is an active snapshot.
//   - view: read-only, made by View from a committed parent, for looking
//     at a layer stack without changing it.
//
// Lifecycle: Prepare (or View) creates a snapshot under a key and returns
// the mounts that expose it; the caller mounts them (MountAll), writes
// (an active one only) and unmounts. Commit turns an active snapshot into a
// committed one under a new name; the key is gone afterwards. Remove deletes
// a snapshot that no other snapshot has as parent. A snapshot must be
// unmounted before it is committed or removed.
//
// Errors are classified with internal/errdefs: an unknown key is
// ErrNotFound, a key or name in use is ErrAlreadyExists, a parent that is
// not committed, a Commit of a snapshot that is not active and a Remove of
// a snapshot with children are ErrConflict, a malformed key or field path
// is ErrInvalidArgument.
//
// Methods are safe for concurrent use. Close releases the snapshotter but
// not the bbolt database it was given.
type Snapshotter interface {
	// Stat returns the snapshot's info.
	Stat(ctx context.Context, key string) (Info, error)
	// Update changes the snapshot's labels. With no fieldpaths, all labels
	// are replaced by info.Labels; fieldpath "labels" does the same, and
	// "labels.<name>" sets (or, when absent from info.Labels, deletes)
	// one label. It returns the updated info.
	Update(ctx context.Context, info Info, fieldpaths ...string) (Info, error)
	// Usage returns the disk held by the snapshot: for a committed one as
	// measured at commit, for an active one as it is now.
	Usage(ctx context.Context, key string) (Usage, error)
	// Mounts returns the mounts of an existing snapshot, as Prepare or
	// View returned them (for a committed one, read-only mounts of it).
	Mounts(ctx context.Context, key string) ([]Mount, error)
	// Prepare creates an active snapshot from parent ("" for an empty one).
	Prepare(ctx context.Context, key, parent string, opts ...Opt) ([]Mount, error)
	// View creates a read-only view of parent ("" for an empty one).
	View(ctx context.Context, key, parent string, opts ...Opt) ([]Mount, error)
	// Commit makes the active snapshot key a committed snapshot called
	// name, with labels from opts only; key no longer exists afterwards.
	Commit(ctx context.Context, name, key string, opts ...Opt) error
	// Remove deletes a snapshot without children, with its data.
	Remove(ctx context.Context, key string) error
	// Walk calls fn for every snapshot, in key order, until fn fails.
	Walk(ctx context.Context, fn func(context.Context, Info) error) error
	// Close releases the snapshotter.
	Close() error
}

// MaxKeyLen bounds the length of a key in bytes.
const MaxKeyLen = 4096

// ValidateKey returns an ErrInvalidArgument error unless key is usable as a
// snapshot key or name: non-empty, at most MaxKeyLen bytes of UTF-8 text
// without control characters.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("snapshot key is empty: %w", errdefs.ErrInvalidArgument)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("snapshot key %.32q... is longer than %d bytes: %w", key, MaxKeyLen, errdefs.ErrInvalidArgument)
	case !utf8.ValidString(key):
		return fmt.Errorf("snapshot key %q is not UTF-8: %w", key, errdefs.ErrInvalidArgument)
	case strings.IndexFunc(key, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0:
		return fmt.Errorf("snapshot key %q contains a control character: %w", key, errdefs.ErrInvalidArgument)
	}
	return nil
}
