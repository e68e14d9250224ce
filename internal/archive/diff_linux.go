package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"sort"

	"golang.org/x/sys/unix"
)

// WriteDiff writes a tar of the changes that turn lower into upper, two
// full trees: added and changed entries, ".wh.<name>" for a deletion and
// ".wh..wh..opq" for a directory none of whose old entries is left.
func WriteDiff(ctx context.Context, w io.Writer, lower, upper string) error {
	t := newTreeWriter(w)
	d := &differ{
		ctx:     ctx,
		opaque:  true,
		parents: true,
		emit: func(kind ChangeKind, dirfd int, name, rel string, st *unix.Stat_t) error {
			if kind == Delete {
				return t.whiteout(path.Join(path.Dir(rel), whiteoutPrefix+name))
			}
			_, err := t.entry(dirfd, name, rel, st)
			return err
		},
		opq: func(rel string) error { return t.whiteout(path.Join(rel, opaqueMarker)) },
	}
	err := d.run(lower, upper)
	if err == nil {
		err = t.tw.Close()
	}
	if err != nil {
		return fmt.Errorf("write diff of %s against %s: %w", upper, lower, err)
	}
	return nil
}

// Changes lists what differs between lower and upper, two full trees,
// sorted by path. A deleted directory is one change; an added directory is
// listed with everything in it.
func Changes(ctx context.Context, lower, upper string) ([]Change, error) {
	var out []Change
	d := &differ{
		ctx: ctx,
		emit: func(kind ChangeKind, _ int, _, rel string, _ *unix.Stat_t) error {
			out = append(out, Change{Kind: kind, Path: "/" + rel})
			return nil
		},
	}
	if err := d.run(lower, upper); err != nil {
		return nil, fmt.Errorf("changes of %s against %s: %w", upper, lower, err)
	}
	sortChanges(out)
	return out, nil
}

func sortChanges(c []Change) {
	sort.Slice(c, func(i, j int) bool { return c[i].Path < c[j].Path })
}

// differ walks two trees side by side in name order.
type differ struct {
	ctx context.Context
	// opaque: replace the whiteouts of a directory by opq when none of its
	// lower entries is left.
	opaque bool
	// emit gets Add and Modify with the upper entry, Delete with dirfd -1.
	emit func(kind ChangeKind, dirfd int, name, rel string, st *unix.Stat_t) error
	opq  func(rel string) error
	// parents: emit the unchanged directories above a change as well, so
	// that applying the diff restores their times after touching them.
	parents bool
	pending []*pendingDir
}

// pendingDir is an unchanged directory being walked, emitted once
// something below it is.
type pendingDir struct {
	dirfd     int
	name, rel string
	st        unix.Stat_t
	done      bool
}

func (d *differ) flush() error {
	for _, p := range d.pending {
		if !p.done {
			p.done = true
			if err := d.emit(Modify, p.dirfd, p.name, p.rel, &p.st); err != nil {
				return err
			}
		}
	}
	return nil
}

// out emits a change after the directories above it.
func (d *differ) out(kind ChangeKind, dirfd int, name, rel string, st *unix.Stat_t) error {
	if d.parents {
		if err := d.flush(); err != nil {
			return err
		}
	}
	return d.emit(kind, dirfd, name, rel, st)
}

func (d *differ) run(lower, upper string) error {
	lfd, err := unix.Open(lower, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: lower, Err: err}
	}
	defer unix.Close(lfd)
	ufd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: upper, Err: err}
	}
	defer unix.Close(ufd)
	return d.dir(lfd, ufd, "")
}

func (d *differ) dir(lfd, ufd int, rel string) error {
	lnames, err := readDirNames(lfd)
	if err != nil {
		return fmt.Errorf("read lower %q: %w", rel, err)
	}
	unames, err := readDirNames(ufd)
	if err != nil {
		return fmt.Errorf("read upper %q: %w", rel, err)
	}
	if d.opaque && len(lnames) > 0 && !anyCommon(lnames, unames) {
		if d.parents {
			if err := d.flush(); err != nil {
				return err
			}
		}
		if err := d.opq(rel); err != nil {
			return err
		}
		lnames = nil
	}
	i, j := 0, 0
	for i < len(lnames) || j < len(unames) {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		switch {
		case j == len(unames) || (i < len(lnames) && lnames[i] < unames[j]):
			if err := d.out(Delete, -1, lnames[i], path.Join(rel, lnames[i]), nil); err != nil {
				return err
			}
			i++
		case i == len(lnames) || unames[j] < lnames[i]:
			if err := d.added(ufd, unames[j], path.Join(rel, unames[j])); err != nil {
				return err
			}
			j++
		default:
			if err := d.both(lfd, ufd, unames[j], path.Join(rel, unames[j])); err != nil {
				return err
			}
			i++
			j++
		}
	}
	return nil
}

// added emits a new entry and, for a directory, all it holds.
func (d *differ) added(ufd int, name, rel string) error {
	st, err := lstatAt(ufd, name)
	if errors.Is(err, unix.ENOENT) {
		return nil // removed since the listing (a running container's diff)
	}
	if err != nil {
		return fmt.Errorf("stat upper %q: %w", rel, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
		return nil
	}
	if err := d.out(Add, ufd, name, rel, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	cfd, err := unix.Openat(ufd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open upper %q: %w", rel, err)
	}
	defer unix.Close(cfd)
	return walkTree(d.ctx, cfd, rel, func(dirfd int, name, rel string, st *unix.Stat_t) (bool, error) {
		if st.Mode&unix.S_IFMT == unix.S_IFSOCK {
			return false, nil
		}
		return true, d.out(Add, dirfd, name, rel, st)
	})
}

func (d *differ) both(lfd, ufd int, name, rel string) error {
	lst, err := lstatAt(lfd, name)
	if err != nil {
		return fmt.Errorf("stat lower %q: %w", rel, err)
	}
	ust, err := lstatAt(ufd, name)
	if errors.Is(err, unix.ENOENT) {
		// Removed since the listing (a running container's diff): it is
		// now deleted from the lower tree.
		return d.out(Delete, -1, name, rel, nil)
	}
	if err != nil {
		return fmt.Errorf("stat upper %q: %w", rel, err)
	}
	ltype, utype := lst.Mode&unix.S_IFMT, ust.Mode&unix.S_IFMT
	if utype == unix.S_IFDIR && ltype != unix.S_IFDIR {
		// A directory replaced a file: all of it is new.
		if err := d.out(Modify, ufd, name, rel, &ust); err != nil {
			return err
		}
		cfd, err := unix.Openat(ufd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open upper %q: %w", rel, err)
		}
		defer unix.Close(cfd)
		return walkTree(d.ctx, cfd, rel, func(dirfd int, name, rel string, st *unix.Stat_t) (bool, error) {
			return true, d.out(Add, dirfd, name, rel, st)
		})
	}
	changed, err := entryChanged(lfd, ufd, name, &lst, &ust)
	if err != nil {
		return fmt.Errorf("compare %q: %w", rel, err)
	}
	if changed && utype != unix.S_IFSOCK {
		if err := d.out(Modify, ufd, name, rel, &ust); err != nil {
			return err
		}
	}
	if utype != unix.S_IFDIR {
		return nil
	}
	if !changed {
		d.pending = append(d.pending, &pendingDir{dirfd: ufd, name: name, rel: rel, st: ust})
		defer func() { d.pending = d.pending[:len(d.pending)-1] }()
	}
	lcfd, err := unix.Openat(lfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open lower %q: %w", rel, err)
	}
	defer unix.Close(lcfd)
	ucfd, err := unix.Openat(ufd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open upper %q: %w", rel, err)
	}
	defer unix.Close(ucfd)
	return d.dir(lcfd, ucfd, rel)
}

// entryChanged compares the same name in two trees: type, owner, mode,
// mtime, size, device, link target and xattrs; regular files whose mtimes
// carry no nanoseconds (and so may tie by chance) also by content.
func entryChanged(lfd, ufd int, name string, l, u *unix.Stat_t) (bool, error) {
	if l.Dev == u.Dev && l.Ino == u.Ino {
		return false, nil
	}
	if l.Mode != u.Mode || l.Uid != u.Uid || l.Gid != u.Gid || l.Mtim != u.Mtim {
		return true, nil
	}
	switch u.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if l.Size != u.Size {
			return true, nil
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if l.Rdev != u.Rdev {
			return true, nil
		}
	case unix.S_IFLNK:
		lt, err := readlinkAt(lfd, name)
		if err != nil {
			return false, err
		}
		ut, err := readlinkAt(ufd, name)
		if err != nil {
			return false, err
		}
		if lt != ut {
			return true, nil
		}
	}
	lx, err := xattrs(-1, procPath(lfd, name))
	if err != nil {
		return false, err
	}
	ux, err := xattrs(-1, procPath(ufd, name))
	if err != nil {
		return false, err
	}
	if !maps.Equal(lx, ux) {
		return true, nil
	}
	if u.Mode&unix.S_IFMT == unix.S_IFREG && l.Mtim.Nsec == 0 && u.Size > 0 {
		same, err := sameContent(lfd, ufd, name)
		return !same, err
	}
	return false, nil
}

func sameContent(lfd, ufd int, name string) (bool, error) {
	open := func(dirfd int) (*os.File, error) {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), name), nil
	}
	lf, err := open(lfd)
	if err != nil {
		return false, err
	}
	defer lf.Close()
	uf, err := open(ufd)
	if err != nil {
		return false, err
	}
	defer uf.Close()
	lb, ub := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		ln, lerr := io.ReadFull(lf, lb)
		un, uerr := io.ReadFull(uf, ub)
		if ln != un || !bytes.Equal(lb[:ln], ub[:un]) {
			return false, nil
		}
		if lerr == io.EOF || lerr == io.ErrUnexpectedEOF {
			return uerr == lerr, nil
		}
		if lerr != nil {
			return false, lerr
		}
		if uerr != nil {
			return false, uerr
		}
	}
}

func anyCommon(a, b []string) bool {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			return true
		case a[i] < b[j]:
			i++
		default:
			j++
		}
	}
	return false
}

// OverlayChanges lists what a container changed, from its overlayfs upper
// directory and the lower directories (top first) of its image, sorted by
// path, as docker diff shows it.
func OverlayChanges(ctx context.Context, upper string, lowers []string) ([]Change, error) {
	stack, err := openLayers(lowers)
	if err != nil {
		return nil, fmt.Errorf("overlay changes: %w", err)
	}
	defer stack.close()
	ufd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("overlay changes: %w", &os.PathError{Op: "open", Path: upper, Err: err})
	}
	defer unix.Close(ufd)
	var out []Change
	seen := map[string]bool{}
	add := func(k ChangeKind, rel string) {
		if !seen[rel] {
			seen[rel] = true
			out = append(out, Change{Kind: k, Path: "/" + rel})
		}
	}
	err = walkTree(ctx, ufd, "", func(dirfd int, name, rel string, st *unix.Stat_t) (bool, error) {
		if isWhiteoutDev(st) {
			add(Delete, rel)
			return false, nil
		}
		f, inLower, err := stack.lookup(rel)
		if err != nil {
			return false, err
		}
		if !inLower {
			add(Add, rel)
			return true, nil
		}
		defer f.close()
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		opaque := isDir && dirIsOpaque(dirfd, name)
		lowerDir := f.st.Mode&unix.S_IFMT == unix.S_IFDIR
		if !isDir || !lowerDir || opaque || st.Mode != f.st.Mode || st.Uid != f.st.Uid || st.Gid != f.st.Gid || st.Mtim != f.st.Mtim {
			add(Modify, rel)
		}
		if opaque && lowerDir {
			// Lower entries the opaque directory no longer shows are gone.
			visible, err := stack.children(rel)
			if err != nil {
				return false, err
			}
			cfd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			if err != nil {
				return false, err
			}
			names, err := readDirNames(cfd)
			unix.Close(cfd)
			if err != nil {
				return false, err
			}
			for _, n := range names {
				delete(visible, n)
			}
			for n := range visible {
				add(Delete, path.Join(rel, n))
			}
		}
		return true, nil
	})
	if err != nil {
		return nil, fmt.Errorf("overlay changes of %s: %w", upper, err)
	}
	sortChanges(out)
	return out, nil
}
