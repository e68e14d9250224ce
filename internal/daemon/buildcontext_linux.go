//go:build linux

package daemon

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// maxContextDirFDs bounds the directory descriptors a contextWriter keeps
// open; past it they are all closed and reopened as entries need them
// (a tar lists a directory's entries together, so this is rare).
const maxContextDirFDs = 128

// contextBufs are the buffers file contents are copied through.
var contextBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// contextWriter creates the entries of a build context under the new,
// empty directory it was made for, relative to open directory
// descriptors: every directory on an entry's path was made or opened by
// it, one component at a time with O_NOFOLLOW, so an entry whose path
// goes through a symlink (or a file) is refused and nothing is ever
// written outside the context, at a handful of system calls per file.
type contextWriter struct {
	ctxDir string
	rootFD int
	fds    map[string]int // open directories by clean relative path
	times  []dirTimes     // set once all entries are in
	// chownAll is set when a new entry's owner may differ from the
	// daemon's even if the header names the daemon's (a setgid
	// directory passes its group on); otherwise owners that are the
	// daemon's need no chown.
	chownAll bool
	uid, gid int
	// reused is set when the directory held an earlier context: entries
	// already there that match are kept (files are rewritten in place,
	// only where their content differs), and finish removes whatever
	// the new context does not name. On ext4 this spares the inode
	// allocations and frees of a fresh tree on every build.
	reused bool
	// seen holds every path the context names (explicit) or that its
	// entries' paths go through (implicit), for finish.
	seen map[string]entrySeen
}

// entrySeen says how a context names a directory entry.
type entrySeen uint8

const (
	seenImplicit entrySeen = iota + 1 // a directory on an entry's path
	seenExplicit                      // an entry of its own
)

// dirTimes are a directory entry's times.
type dirTimes struct {
	rel          string
	atime, mtime time.Time
}

// newContextWriter opens dir for extraction; reused says it may hold an
// earlier context.
func newContextWriter(dir string, reused bool) (*contextWriter, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	w := &contextWriter{ctxDir: dir, rootFD: fd, fds: map[string]int{}, uid: os.Geteuid(), gid: os.Getegid(), reused: reused, seen: map[string]entrySeen{}}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: dir, Err: err}
	}
	w.chownAll = st.Mode&unix.S_ISGID != 0
	return w, nil
}

// close closes every descriptor w holds.
func (w *contextWriter) close() {
	w.closeDirs()
	unix.Close(w.rootFD)
}

// closeDirs closes the descriptors of the directories below the context.
func (w *contextWriter) closeDirs() {
	for rel, fd := range w.fds {
		unix.Close(fd)
		delete(w.fds, rel)
	}
}

// entryErr is err of op on the entry at rel.
func entryErr(op, rel string, err error) error {
	return &fs.PathError{Op: op, Path: rel, Err: err}
}

// openDir returns the descriptor of the directory rel, opening (and if
// create is set, making with mode 0755) each component below the
// nearest one already open. The descriptor stays w's.
func (w *contextWriter) openDir(rel string, create bool) (int, error) {
	if rel == "." {
		return w.rootFD, nil
	}
	if fd, ok := w.fds[rel]; ok {
		return fd, nil
	}
	pfd, err := w.openDir(path.Dir(rel), create)
	if err != nil {
		return -1, err
	}
	base := path.Base(rel)
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	named := w.seen[rel] != 0
	if create && !named {
		w.seen[rel] = seenImplicit
	}
	fd, err := unix.Openat(pfd, base, flags, 0)
	if create && !named && w.reused && (errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)) {
		// Not a directory, and not this context's: an earlier
		// context left it.
		if err := w.remove(pfd, rel, base); err != nil {
			return -1, err
		}
		fd, err = unix.Openat(pfd, base, flags, 0)
	}
	if errors.Is(err, unix.ENOENT) && create {
		if err := unix.Mkdirat(pfd, base, 0o755); err != nil {
			return -1, entryErr("mkdir", rel, err)
		}
		fd, err = unix.Openat(pfd, base, flags, 0)
	}
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENOTDIR):
		return -1, fmt.Errorf("path %q goes through a symlink or a file: %w", rel, errdefs.ErrInvalidArgument)
	case err != nil:
		return -1, entryErr("open", rel, err)
	}
	w.fds[rel] = fd
	return fd, nil
}

// parent returns the descriptor of rel's directory, made if missing, and
// rel's last component.
func (w *contextWriter) parent(rel string) (int, string, error) {
	if len(w.fds) >= maxContextDirFDs {
		w.closeDirs()
	}
	fd, err := w.openDir(path.Dir(rel), true)
	return fd, path.Base(rel), err
}

// create runs make, which creates rel's last component base in the
// directory pfd; if an earlier entry left something there, it is
// removed first, unless keepDir is set and it is a directory (then
// create returns exists).
func (w *contextWriter) create(pfd int, rel, base string, keepDir bool, make func() error) (exists bool, err error) {
	err = make()
	if !errors.Is(err, unix.EEXIST) {
		return false, err
	}
	if keepDir {
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return false, entryErr("stat", rel, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return true, nil
		}
	}
	if err := w.remove(pfd, rel, base); err != nil {
		return false, err
	}
	return false, make()
}

// remove removes what an earlier entry left at rel, whole trees too, and
// forgets the directories it held.
func (w *contextWriter) remove(pfd int, rel, base string) error {
	for r, fd := range w.fds {
		if r == rel || strings.HasPrefix(r, rel+"/") {
			unix.Close(fd)
			delete(w.fds, r)
		}
	}
	kept := w.times[:0]
	for _, t := range w.times {
		if t.rel != rel && !strings.HasPrefix(t.rel, rel+"/") {
			kept = append(kept, t)
		}
	}
	w.times = kept
	err := unix.Unlinkat(pfd, base, 0)
	if !errors.Is(err, unix.EISDIR) {
		if err != nil {
			return entryErr("remove", rel, err)
		}
		return nil
	}
	// A directory: rare enough to go through os.Root, which removes a
	// tree without following symlinks out of it.
	root, err := os.OpenRoot(w.ctxDir)
	if err != nil {
		return err
	}
	defer root.Close()
	return root.RemoveAll(rel)
}

// chown gives the entry at base in pfd (or fd, if not -1) the header's
// owner, unless it has it already: have is the entry's stat when it was
// there before, nil when it was just made (with the daemon's owner).
func (w *contextWriter) chown(fd, pfd int, rel, base string, hdr *tar.Header, have *unix.Stat_t) error {
	if have != nil {
		if int(have.Uid) == hdr.Uid && int(have.Gid) == hdr.Gid {
			return nil
		}
	} else if !w.chownAll && hdr.Uid == w.uid && hdr.Gid == w.gid {
		return nil
	}
	var err error
	if fd >= 0 {
		err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
	} else {
		err = unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return entryErr("chown", rel, err)
	}
	return nil
}

// utimes sets the times of base in pfd, leaving zero ones as they are.
func utimes(pfd int, rel, base string, atime, mtime time.Time) error {
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	for i, t := range []time.Time{atime, mtime} {
		if !t.IsZero() {
			ts[i] = unix.NsecToTimespec(t.UnixNano())
		}
	}
	if ts[0].Nsec == unix.UTIME_OMIT && ts[1].Nsec == unix.UTIME_OMIT {
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryErr("chtimes", rel, err)
	}
	return nil
}

// dir makes the directory rel (or takes the one there) with the entry's
// owner and mode; its times are set by finish.
func (w *contextWriter) dir(rel string, hdr *tar.Header) error {
	mode := entryMode(hdr)
	if mode&unix.S_ISGID != 0 {
		w.chownAll = true
	}
	var fd, pfd int
	var base string
	existed := rel == "."
	if existed {
		fd = w.rootFD
	} else {
		var err error
		if pfd, base, err = w.parent(rel); err != nil {
			return err
		}
		if existed, err = w.create(pfd, rel, base, true, func() error { return unix.Mkdirat(pfd, base, 0o700) }); err != nil {
			return entryErr("mkdir", rel, err)
		}
		if fd, err = w.openDir(rel, false); err != nil {
			return err
		}
		w.times = append(w.times, dirTimes{rel: rel, atime: hdr.AccessTime, mtime: hdr.ModTime})
	}
	w.seen[rel] = seenExplicit
	var have *unix.Stat_t
	if existed {
		have = new(unix.Stat_t)
		if err := unix.Fstat(fd, have); err != nil {
			return entryErr("stat", rel, err)
		}
	}
	if err := w.chown(fd, pfd, rel, base, hdr, have); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return entryErr("chmod", rel, err)
	}
	return nil
}

// file writes the regular file rel with the entry's content, owner,
// mode and times. A file an earlier context left there is rewritten in
// place, only where its content differs.
func (w *contextWriter) file(rel string, hdr *tar.Header, r io.Reader) error {
	pfd, base, err := w.parent(rel)
	if err != nil {
		return err
	}
	w.seen[rel] = seenExplicit
	fd, have, err := w.openFile(pfd, rel, base)
	if err != nil {
		return err
	}
	if have != nil {
		err = syncContent(fd, rel, hdr.Size, have.Size, r)
	} else {
		err = writeContent(fd, rel, hdr.Size, r)
	}
	if err == nil {
		err = w.chown(fd, pfd, rel, base, hdr, have)
	}
	if err == nil && (have == nil || have.Mode&0o7777 != entryMode(hdr)) {
		if cerr := unix.Fchmod(fd, entryMode(hdr)); cerr != nil {
			err = entryErr("chmod", rel, cerr)
		}
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = entryErr("close", rel, cerr)
	}
	if err != nil {
		return err
	}
	return utimes(pfd, rel, base, hdr.AccessTime, hdr.ModTime)
}

// openFile returns a descriptor to write the regular file base in pfd
// through: a new, empty file, or the one there already with its stat,
// if it is a regular file no other name links to (in a reused context,
// or when the context names it twice). Anything else there is removed
// first.
func (w *contextWriter) openFile(pfd int, rel, base string) (int, *unix.Stat_t, error) {
	create := func() (int, error) {
		return unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	}
	fd, err := create()
	if !errors.Is(err, unix.EEXIST) {
		if err != nil {
			return -1, nil, entryErr("create", rel, err)
		}
		return fd, nil, nil
	}
	// O_NONBLOCK: whatever is there, opening it must not wait.
	fd, err = unix.Openat(pfd, base, unix.O_RDWR|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == nil {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, nil, entryErr("stat", rel, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink == 1 {
			return fd, &st, nil
		}
		unix.Close(fd)
	}
	if err := w.remove(pfd, rel, base); err != nil {
		return -1, nil, err
	}
	if fd, err = create(); err != nil {
		return -1, nil, entryErr("create", rel, err)
	}
	return fd, nil, nil
}

// writeContent copies size bytes of r to the new file fd. A failed write
// is the daemon's error (a full disk), a failed read the client's.
func writeContent(fd int, rel string, size int64, r io.Reader) error {
	bp := contextBufs.Get().(*[]byte)
	defer contextBufs.Put(bp)
	buf := *bp
	for off := int64(0); off < size; {
		n := int(min(size-off, int64(len(buf))))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return fmt.Errorf("read: %w", contextReadError(err))
		}
		if err := writeAt(fd, rel, buf[:n], off); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// syncContent makes the file fd, now have bytes long, hold the size
// bytes of r, writing only the blocks that differ.
func syncContent(fd int, rel string, size, have int64, r io.Reader) error {
	bp, op := contextBufs.Get().(*[]byte), contextBufs.Get().(*[]byte)
	defer contextBufs.Put(bp)
	defer contextBufs.Put(op)
	buf, old := *bp, *op
	for off := int64(0); off < size; {
		n := int(min(size-off, int64(len(buf))))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return fmt.Errorf("read: %w", contextReadError(err))
		}
		if off+int64(n) > have || !readAtEqual(fd, old[:n], buf[:n], off) {
			if err := writeAt(fd, rel, buf[:n], off); err != nil {
				return err
			}
		}
		off += int64(n)
	}
	if have != size {
		if err := unix.Ftruncate(fd, size); err != nil {
			return fmt.Errorf("write: %w", entryErr("truncate", rel, err))
		}
	}
	return nil
}

// readAtEqual reports whether fd holds want at off, reading it into old
// (as long as want).
func readAtEqual(fd int, old, want []byte, off int64) bool {
	for got := 0; got < len(old); {
		m, err := unix.Pread(fd, old[got:], off+int64(got))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || m == 0 {
			return false
		}
		got += m
	}
	return bytes.Equal(old, want)
}

// writeAt writes all of b to fd at off.
func writeAt(fd int, rel string, b []byte, off int64) error {
	for len(b) > 0 {
		m, err := unix.Pwrite(fd, b, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err == nil && m == 0 {
			err = io.ErrShortWrite
		}
		if err != nil {
			return fmt.Errorf("write: %w", entryErr("write", rel, err))
		}
		b, off = b[m:], off+int64(m)
	}
	return nil
}

// symlink makes the symlink rel with the entry's target and owner.
func (w *contextWriter) symlink(rel string, hdr *tar.Header) error {
	pfd, base, err := w.parent(rel)
	if err != nil {
		return err
	}
	w.seen[rel] = seenExplicit
	if _, err := w.create(pfd, rel, base, false, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
		return entryErr("symlink", rel, err)
	}
	return w.chown(-1, pfd, rel, base, hdr, nil)
}

// link makes rel a hard link of target, an earlier entry; a target whose
// path goes through a symlink is refused.
func (w *contextWriter) link(rel, target string) error {
	if target == rel || strings.HasPrefix(target, rel+"/") {
		return fmt.Errorf("hard link to %q: %w", target, unix.ENOENT) // what it would replace first
	}
	if w.seen[target] != seenExplicit {
		// Only to an entry of this context, not to one an earlier
		// context left behind.
		return fmt.Errorf("hard link to %q, which is not an earlier entry of the context: %w", target, errdefs.ErrInvalidArgument)
	}
	pfd, base, err := w.parent(rel)
	if err != nil {
		return err
	}
	w.seen[rel] = seenExplicit
	tfd, err := w.openDir(path.Dir(target), false)
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", target, err)
	}
	tbase := path.Base(target)
	if _, err := w.create(pfd, rel, base, false, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) }); err != nil {
		return entryErr("link", rel, err)
	}
	return nil // the target's metadata is the link's
}

// finish removes, in a reused directory, what the context does not name
// and gives the directories it only implies the owner and mode a new one
// would have, then sets the directories' times, once nothing more is
// written into them.
func (w *contextWriter) finish() error {
	if w.reused {
		root, err := os.OpenRoot(w.ctxDir)
		if err != nil {
			return err
		}
		err = w.removeUnnamed(root, ".")
		root.Close()
		if err != nil {
			return err
		}
		if err := w.resetImplied(); err != nil {
			return err
		}
	}
	for _, t := range w.times {
		pfd, base, err := w.parent(t.rel)
		if err != nil {
			return err
		}
		if err := utimes(pfd, t.rel, base, t.atime, t.mtime); err != nil {
			return err
		}
	}
	return nil
}

// removeUnnamed removes the entries below the directory rel that the
// context does not name and goes down into those it names.
func (w *contextWriter) removeUnnamed(root *os.Root, rel string) error {
	d, err := root.Open(rel)
	if err != nil {
		return err
	}
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("read %s: %w", rel, err)
	}
	for _, e := range entries {
		child := path.Join(rel, e.Name())
		switch {
		case w.seen[child] == 0:
			if err := root.RemoveAll(child); err != nil {
				return err
			}
		case e.IsDir():
			if err := w.removeUnnamed(root, child); err != nil {
				return err
			}
		}
	}
	return nil
}

// resetImplied gives the directories the context implies but does not
// name (the context directory too) the daemon's owner and the mode a new
// one would have, in case an earlier context named them with others.
func (w *contextWriter) resetImplied() error {
	for rel, how := range w.seen {
		if how != seenImplicit {
			continue
		}
		if err := w.resetDir(rel, 0o755); err != nil {
			return err
		}
	}
	if w.seen["."] != seenExplicit {
		return w.resetDir(".", 0o700)
	}
	return nil
}

// resetDir gives the directory rel the daemon's owner and mode, if it is
// still there.
func (w *contextWriter) resetDir(rel string, mode uint32) error {
	var st unix.Stat_t
	pfd, base := w.rootFD, "."
	if rel != "." {
		var err error
		if pfd, err = w.openDir(path.Dir(rel), false); err != nil {
			return err
		}
		base = path.Base(rel)
	}
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) || (err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR) {
		return nil // replaced by a later entry
	}
	if err != nil {
		return entryErr("stat", rel, err)
	}
	if !w.chownAll && (int(st.Uid) != w.uid || int(st.Gid) != w.gid) {
		if err := unix.Fchownat(pfd, base, w.uid, w.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryErr("chown", rel, err)
		}
	}
	if st.Mode&0o7777 != mode {
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return entryErr("chmod", rel, err)
		}
	}
	return nil
}
