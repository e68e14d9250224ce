// Package archive reads and writes the tar layers of berth's image store.
//
// Apply unpacks an uncompressed layer into a root directory in one
// streaming pass. It is built for hostile input: every path is resolved
// from a directory fd of the root with openat2(RESOLVE_IN_ROOT), the last
// component of every name is created or changed with an *at call that does
// not follow symlinks, and nothing a layer says can create, change or remove
// a file outside the root. Whiteouts are either carried out (WhiteoutDelete,
// for a full tree) or written as overlayfs whiteouts (WhiteoutOverlay, for
// an overlay upper directory).
//
// WriteTree, WriteDiff and WriteOverlayDiff produce reproducible PAX tars:
// the same tree gives the same bytes. Changes and OverlayChanges list what
// differs between a container's file system and its image, as docker diff.
package archive

import (
	"path"
	"strings"
)

// WhiteoutFormat says how Apply carries out the whiteouts of a layer.
type WhiteoutFormat int

const (
	// WhiteoutDelete is for a target that is a full tree (the native
	// snapshotter): ".wh.x" removes x and ".wh..wh..opq" empties its
	// directory of everything this same layer did not create.
	WhiteoutDelete WhiteoutFormat = iota
	// WhiteoutOverlay is for a target that is an overlayfs upper directory:
	// ".wh.x" becomes a 0/0 character device x and ".wh..wh..opq" sets the
	// xattr trusted.overlay.opaque=y on its directory.
	WhiteoutOverlay
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Whiteouts selects how whiteouts are carried out.
	Whiteouts WhiteoutFormat
	// Lowers are the read-only lower directories of an overlay (top first).
	// In WhiteoutOverlay mode a hard link whose target lives only in a lower
	// layer is satisfied by copying the target up first, and directories the
	// layer implies but does not list get their lower metadata.
	Lowers []string
	// NoSameOwner skips every chown (rootless). In WhiteoutOverlay mode the
	// opaque marker is then user.overlay.opaque, for userxattr mounts.
	NoSameOwner bool
}

// ChangeKind is the kind of a Change, numbered like Docker's.
type ChangeKind int

// The change kinds.
const (
	Modify ChangeKind = iota
	Add
	Delete
)

// String returns "C", "A" or "D", as docker diff prints them.
func (k ChangeKind) String() string {
	switch k {
	case Modify:
		return "C"
	case Add:
		return "A"
	case Delete:
		return "D"
	}
	return "?"
}

// Change is one path that differs between two file systems. Path is
// absolute ("/etc/passwd").
type Change struct {
	Kind ChangeKind
	Path string
}

const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	opaqueMarker   = ".wh..wh..opq"
	xattrPrefix    = "SCHILY.xattr."
)

// cleanName turns a tar entry name into a clean path relative to the root
// ("" for the root itself). Absolute names are confined to the root; names
// that climb out of it are refused.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", invalid("name contains a NUL byte")
	}
	if name == "" {
		return "", invalid("empty name")
	}
	c := path.Clean(name) // an absolute name cannot climb above "/"
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", invalid("path escapes root")
	}
	c = strings.TrimLeft(c, "/")
	if c == "." {
		c = ""
	}
	return c, nil
}
