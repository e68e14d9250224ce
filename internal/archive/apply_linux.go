package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/log"
)

// Apply reads an uncompressed tar layer from r into root and returns the
// number of bytes of file content written. It reads r once, to its end
// (so a caller hashing the stream sees all of it). Hostile names are
// refused with errdefs.ErrInvalidArgument, a truncated or corrupt stream
// gives errdefs.ErrDataLoss. On error root holds a partial layer: the caller
// discards it.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (int64, error) {
	rootfd, err := openRoot(root)
	if err != nil {
		return 0, fmt.Errorf("apply layer: %w", err)
	}
	a := &applier{
		ctx:      ctx,
		opts:     opts,
		rootfd:   rootfd,
		cacheFD:  -1,
		seen:     map[string]struct{}{},
		dirIndex: map[string]int{},
		umask:    processUmask(),
	}
	defer a.close()
	if opts.Whiteouts == WhiteoutOverlay && len(opts.Lowers) > 0 {
		if a.lowers, err = openLayers(opts.Lowers); err != nil {
			return 0, fmt.Errorf("apply layer: %w", err)
		}
	}
	bufp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bufp)
	a.buf = *bufp

	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.written, fmt.Errorf("apply layer: %w", err)
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.written, fmt.Errorf("apply layer: read tar: %w", dataLoss(err))
		}
		if err := a.entry(tr, hdr); err != nil {
			return a.written, fmt.Errorf("apply layer: entry %q: %w", hdr.Name, err)
		}
	}
	if err := a.finish(); err != nil {
		return a.written, fmt.Errorf("apply layer: %w", err)
	}
	if _, err := io.CopyBuffer(io.Discard, r, a.buf); err != nil {
		return a.written, fmt.Errorf("apply layer: read tar: %w", dataLoss(err))
	}
	return a.written, nil
}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

type applier struct {
	ctx     context.Context
	opts    ApplyOptions
	rootfd  int
	buf     []byte
	written int64
	umask   uint32
	lowers  *layerStack

	// seen holds every path this layer created, for whiteouts and opaque
	// markers, which only hide what lower layers made.
	seen map[string]struct{}

	// dirs are the directories whose times are set once their contents are
	// done; dirIndex maps a path to its index in dirs.
	dirs     []dirTimes
	dirIndex map[string]int

	// The last directory resolved, as an O_PATH fd: consecutive entries
	// mostly share a parent. Dropped whenever a directory is removed.
	cacheRel string
	cacheFD  int
}

type dirTimes struct {
	rel string
	ts  [2]unix.Timespec
}

func (a *applier) close() {
	a.dropCache()
	if a.lowers != nil {
		a.lowers.close()
	}
	unix.Close(a.rootfd)
}

func (a *applier) entry(tr *tar.Reader, hdr *tar.Header) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return invalid("entry names the root but is not a directory")
		}
		return a.rootDir(hdr)
	}
	dir, base := splitRel(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return a.whiteout(dir, base)
	}
	pfd, err := a.dirFD(dir)
	if err != nil {
		return err
	}
	a.seen[rel] = struct{}{}
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00', tar.TypeGNUSparse, tar.TypeCont:
		return a.file(tr, pfd, base, rel, hdr)
	case tar.TypeDir:
		return a.dir(pfd, base, rel, hdr)
	case tar.TypeSymlink:
		if strings.IndexByte(hdr.Linkname, 0) >= 0 {
			return invalid("link name contains a NUL byte")
		}
		if err := a.create(pfd, base, rel, false, func() error {
			return unix.Symlinkat(hdr.Linkname, pfd, base)
		}); err != nil {
			return fmt.Errorf("create symlink: %w", err)
		}
		return a.setMeta(-1, pfd, base, hdr, false)
	case tar.TypeLink:
		return a.hardlink(pfd, base, rel, hdr)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode = unix.S_IFCHR
		case tar.TypeBlock:
			mode = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := a.create(pfd, base, rel, false, func() error {
			return unix.Mknodat(pfd, base, mode|perm(hdr), int(dev))
		}); err != nil {
			return fmt.Errorf("create device node: %w", err)
		}
		return a.setMeta(-1, pfd, base, hdr, true)
	}
	return invalid("unsupported entry type %q", string(hdr.Typeflag))
}

// create runs mk to make the entry base in pfd. If something is already
// there it is removed first, unless both are directories (keepDir), in which
// case create reports errKept.
func (a *applier) create(pfd int, base, rel string, keepDir bool, mk func() error) error {
	err := mk()
	if err != unix.EEXIST {
		return err
	}
	st, err := lstatAt(pfd, base)
	if err != nil {
		return err
	}
	if keepDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return errKept
	}
	a.invalidate(rel)
	if err := removeAt(pfd, base); err != nil {
		return fmt.Errorf("replace existing entry: %w", err)
	}
	return mk()
}

var errKept = errors.New("directory kept")

func (a *applier) file(tr *tar.Reader, pfd int, base, rel string, hdr *tar.Header) error {
	var fd int
	err := a.create(pfd, base, rel, false, func() error {
		var err error
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm(hdr))
		return err
	})
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	err = a.copyContent(fd, tr)
	if err == nil {
		err = a.setMeta(fd, pfd, base, hdr, a.needChmod(hdr))
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("close file: %w", cerr)
	}
	return err
}

func (a *applier) copyContent(fd int, r io.Reader) error {
	for {
		n, rerr := r.Read(a.buf)
		for off := 0; off < n; {
			m, err := unix.Write(fd, a.buf[off:n])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return fmt.Errorf("write file: %w", err)
			}
			off += m
		}
		a.written += int64(n)
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("read content: %w", dataLoss(rerr))
		}
	}
}

func (a *applier) dir(pfd int, base, rel string, hdr *tar.Header) error {
	err := a.create(pfd, base, rel, true, func() error {
		return unix.Mkdirat(pfd, base, perm(hdr))
	})
	kept := err == errKept
	if err != nil && !kept {
		return fmt.Errorf("create directory: %w", err)
	}
	if err := a.setMeta(-1, pfd, base, hdr, kept || a.needChmod(hdr)); err != nil {
		return err
	}
	a.deferTimes(rel, hdr)
	// The next entries are most likely inside this directory.
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	a.setCache(rel, fd)
	return nil
}

func (a *applier) rootDir(hdr *tar.Header) error {
	fd, err := openIn(a.rootfd, "", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("open root: %w", err)
	}
	defer unix.Close(fd)
	a.seen[""] = struct{}{}
	if err := a.setMeta(fd, -1, "", hdr, true); err != nil {
		return err
	}
	a.deferTimes("", hdr)
	return nil
}

func (a *applier) hardlink(pfd int, base, rel string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if target == "" {
		return invalid("hard link to the root")
	}
	tdir, tbase := splitRel(target)
	if _, err := lstatIn(a.rootfd, target); err == unix.ENOENT && a.lowers != nil {
		// Only in a lower layer: copy it up first. That may move the
		// directory cache, so pfd is looked up again.
		if err := a.copyUp(target); err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, notFound(err))
		}
		if pfd, err = a.dirFD(tdirOf(rel)); err != nil {
			return err
		}
	}
	tfd, err := openIn(a.rootfd, tdir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, notFound(err))
	}
	defer unix.Close(tfd)
	link := func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) }
	err = link()
	if err == unix.EEXIST {
		tst, terr := lstatAt(tfd, tbase)
		st, serr := lstatAt(pfd, base)
		if terr == nil && serr == nil && tst.Dev == st.Dev && tst.Ino == st.Ino {
			return nil // already the same file
		}
		err = a.create(pfd, base, rel, false, link)
	}
	if err != nil {
		return fmt.Errorf("hard link to %q: %w", hdr.Linkname, notFound(err))
	}
	return nil
}

// notFound turns a missing link target into an input error.
func notFound(err error) error {
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return invalid("target does not exist")
	}
	return err
}

func (a *applier) whiteout(dir, base string) error {
	if base == opaqueMarker {
		return a.opaque(dir)
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		return nil // other aufs metadata (.wh..wh.plnk, ...): nothing to do
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return invalid("whiteout names no file in its directory")
	}
	rel := path.Join(dir, name)
	if _, ok := a.seen[rel]; ok {
		return nil // a whiteout only hides what lower layers made
	}
	if a.opts.Whiteouts == WhiteoutOverlay {
		pfd, err := a.dirFD(dir)
		if err != nil {
			return err
		}
		if err := a.create(pfd, name, rel, false, func() error {
			return unix.Mknodat(pfd, name, unix.S_IFCHR, 0)
		}); err != nil {
			return fmt.Errorf("create whiteout: %w", err)
		}
		if !a.opts.NoSameOwner {
			if err := unix.Fchownat(pfd, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown whiteout: %w", err)
			}
		}
		return nil
	}
	pfd, err := a.existingDir(dir)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil // nothing there to hide
	}
	if err != nil {
		return fmt.Errorf("resolve %q: %w", dir, err)
	}
	a.invalidate(rel)
	if err := removeAt(pfd, name); err != nil {
		return fmt.Errorf("remove %q: %w", rel, err)
	}
	return nil
}

func (a *applier) opaque(dir string) error {
	if a.opts.Whiteouts == WhiteoutOverlay {
		if _, err := a.dirFD(dir); err != nil {
			return err
		}
		fd, err := openIn(a.rootfd, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
		if err != nil {
			return fmt.Errorf("open directory: %w", err)
		}
		defer unix.Close(fd)
		name := "trusted.overlay.opaque"
		if a.opts.NoSameOwner {
			name = "user.overlay.opaque"
		}
		if err := unix.Fsetxattr(fd, name, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark directory opaque: %w", err)
		}
		return nil
	}
	fd, err := openIn(a.rootfd, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	if a.cacheFD >= 0 && a.cacheRel != dir && isUnder(a.cacheRel, dir) {
		a.dropCache()
	}
	if err := a.clearOpaque(fd, dir); err != nil {
		return fmt.Errorf("empty opaque directory: %w", err)
	}
	return nil
}

// clearOpaque removes from the directory fd (at rel) everything this layer
// did not create, descending into the directories it did.
func (a *applier) clearOpaque(fd int, rel string) error {
	names, err := readDirNames(fd)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := path.Join(rel, n)
		if _, ok := a.seen[p]; !ok {
			if err := removeAt(fd, n); err != nil {
				return err
			}
			continue
		}
		st, err := lstatAt(fd, n)
		if err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = a.clearOpaque(cfd, p)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// setMeta sets owner, mode, xattrs and (except for directories) times. It
// works on fd if fd >= 0, else on base in pfd without following symlinks.
func (a *applier) setMeta(fd, pfd int, base string, hdr *tar.Header, chmod bool) error {
	if !a.opts.NoSameOwner {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
		} else {
			err = unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	// After chown, which clears setuid and setgid bits.
	if chmod && hdr.Typeflag != tar.TypeSymlink {
		mode := uint32(hdr.Mode) & 0o7777
		var err error
		if fd >= 0 {
			err = unix.Fchmod(fd, mode)
		} else {
			err = unix.Fchmodat(pfd, base, mode, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, xattrPrefix)
		if !ok || isOverlayXattr(name) {
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, name, []byte(v), 0)
		} else {
			err = unix.Lsetxattr(procPath(pfd, base), name, []byte(v), 0)
		}
		if err != nil {
			if err == unix.ENOTSUP || (err == unix.EPERM && a.opts.NoSameOwner) {
				log.G(a.ctx).Debug("apply layer: xattr not set", "entry", hdr.Name, "xattr", name, "error", err)
				continue
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	if hdr.Typeflag == tar.TypeDir {
		return nil
	}
	ts := times(hdr)
	var err error
	if fd >= 0 {
		err = unix.UtimesNanoAt(fd, "", ts[:], unix.AT_EMPTY_PATH)
	} else {
		err = unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (a *applier) deferTimes(rel string, hdr *tar.Header) {
	d := dirTimes{rel: rel, ts: times(hdr)}
	if i, ok := a.dirIndex[rel]; ok {
		a.dirs[i] = d
		return
	}
	a.dirIndex[rel] = len(a.dirs)
	a.dirs = append(a.dirs, d)
}

// finish sets the directory times, now that nothing more is written below.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		var err error
		if d.rel == "" {
			err = unix.UtimesNanoAt(a.rootfd, "", d.ts[:], unix.AT_EMPTY_PATH)
		} else {
			dir, base := splitRel(d.rel)
			var pfd int
			var st unix.Stat_t
			if pfd, err = a.existingDir(dir); err == nil {
				// A later entry may have put something else there.
				if st, err = lstatAt(pfd, base); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
					err = unix.UtimesNanoAt(pfd, base, d.ts[:], unix.AT_SYMLINK_NOFOLLOW)
				}
			}
		}
		if err != nil && err != unix.ENOENT && err != unix.ENOTDIR {
			return fmt.Errorf("set times of %q: %w", d.rel, err)
		}
	}
	return nil
}

// dirFD returns an O_PATH fd of the directory rel, creating it and its
// missing parents. The fd belongs to the cache: do not close it.
func (a *applier) dirFD(rel string) (int, error) {
	fd, err := a.existingDir(rel)
	if err == unix.ENOENT {
		fd, err = a.mkdirAll(rel)
	}
	if err != nil {
		return -1, fmt.Errorf("parent directory %q: %w", rel, dirErr(err))
	}
	return fd, nil
}

func dirErr(err error) error {
	switch err {
	case unix.ENOTDIR:
		return invalid("not a directory")
	case unix.ELOOP:
		return invalid("too many levels of symbolic links")
	case unix.EXDEV:
		return invalid("path escapes root")
	}
	return err
}

// existingDir is dirFD without creating anything.
func (a *applier) existingDir(rel string) (int, error) {
	if rel == "" {
		return a.rootfd, nil
	}
	if a.cacheFD >= 0 && a.cacheRel == rel {
		return a.cacheFD, nil
	}
	fd, err := openIn(a.rootfd, rel, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, err
	}
	a.setCache(rel, fd)
	return fd, nil
}

// mkdirAll creates the missing directories of rel, one component at a
// time, each resolved inside the root.
func (a *applier) mkdirAll(rel string) (int, error) {
	parent := a.rootfd
	closeParent := func() {
		if parent != a.rootfd {
			unix.Close(parent)
		}
	}
	defer closeParent()
	comps := strings.Split(rel, "/")
	for i, c := range comps {
		prefix := strings.Join(comps[:i+1], "/")
		fd, err := openIn(a.rootfd, prefix, unix.O_PATH|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			if err = a.implicitDir(parent, c, prefix); err != nil {
				return -1, err
			}
			fd, err = unix.Openat(parent, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		if err != nil {
			return -1, err
		}
		closeParent()
		parent = fd
	}
	a.setCache(rel, parent)
	parent = a.rootfd // now owned by the cache
	return a.cacheFD, nil
}

// implicitDir creates a directory the layer implies but does not list:
// with its lower metadata in overlay mode, else root-owned 0755.
func (a *applier) implicitDir(pfd int, name, rel string) error {
	hdr := &tar.Header{Typeflag: tar.TypeDir, Name: rel, Mode: 0o755}
	if a.lowers != nil {
		if f, ok, err := a.lowers.lookup(rel); err == nil && ok {
			f.close()
			if f.st.Mode&unix.S_IFMT == unix.S_IFDIR {
				hdr.Mode = int64(f.st.Mode & 0o7777)
				hdr.Uid, hdr.Gid = int(f.st.Uid), int(f.st.Gid)
				hdr.ModTime = timespecTime(f.st.Mtim)
				hdr.AccessTime = timespecTime(f.st.Atim)
				a.deferTimes(rel, hdr)
			}
		}
	}
	if err := unix.Mkdirat(pfd, name, perm(hdr)); err != nil {
		if err == unix.EEXIST {
			return invalid("%q exists and is not a directory", rel)
		}
		return err
	}
	a.seen[rel] = struct{}{}
	return a.setMeta(-1, pfd, name, hdr, a.needChmod(hdr))
}

// copyUp copies target from the lower layers into the root, as overlayfs
// would, so that a hard link to it can be made.
func (a *applier) copyUp(target string) error {
	f, ok, err := a.lowers.lookup(target)
	if err != nil {
		return err
	}
	if !ok {
		return unix.ENOENT
	}
	defer f.close()
	if f.st.Mode&unix.S_IFMT != unix.S_IFREG {
		return invalid("hard link target in a lower layer is not a regular file")
	}
	dir, base := splitRel(target)
	pfd, err := a.dirFD(dir)
	if err != nil {
		return err
	}
	src, err := unix.Openat(f.dirfd, f.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("copy up %q: %w", target, err)
	}
	srcF := os.NewFile(uintptr(src), target)
	defer srcF.Close()
	dst, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("copy up %q: %w", target, err)
	}
	dstF := os.NewFile(uintptr(dst), target)
	defer dstF.Close()
	if _, err := io.Copy(dstF, srcF); err != nil {
		return fmt.Errorf("copy up %q: %w", target, err)
	}
	xa, err := xattrs(src, "")
	if err != nil {
		return fmt.Errorf("copy up %q: %w", target, err)
	}
	hdr := headerFromStat(target, &f.st, xa)
	return a.setMeta(dst, -1, "", hdr, true)
}

func (a *applier) needChmod(hdr *tar.Header) bool {
	m := uint32(hdr.Mode) & 0o7777
	return m&^0o777 != 0 || m&a.umask != 0
}

func (a *applier) setCache(rel string, fd int) {
	a.dropCache()
	a.cacheRel, a.cacheFD = rel, fd
}

func (a *applier) dropCache() {
	if a.cacheFD >= 0 {
		unix.Close(a.cacheFD)
		a.cacheFD = -1
	}
}

// invalidate forgets the cached directory if it is rel or below it.
func (a *applier) invalidate(rel string) {
	if a.cacheFD >= 0 && isUnder(a.cacheRel, rel) {
		a.dropCache()
	}
}

// isUnder reports whether p is dir or inside it ("" is the root).
func isUnder(p, dir string) bool {
	return dir == "" || p == dir || strings.HasPrefix(p, dir+"/")
}

// lstatIn stats rel inside the root without following its last component.
func lstatIn(rootfd int, rel string) (unix.Stat_t, error) {
	dir, base := splitRel(rel)
	fd, err := openIn(rootfd, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return unix.Stat_t{}, err
	}
	defer unix.Close(fd)
	return lstatAt(fd, base)
}

func tdirOf(rel string) string { d, _ := splitRel(rel); return d }

func splitRel(rel string) (dir, base string) {
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

func perm(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

func times(hdr *tar.Header) [2]unix.Timespec {
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	return [2]unix.Timespec{
		{Sec: at.Unix(), Nsec: int64(at.Nanosecond())},
		{Sec: hdr.ModTime.Unix(), Nsec: int64(hdr.ModTime.Nanosecond())},
	}
}

var umaskOnce = sync.OnceValue(func() uint32 {
	// Reading the umask through umask(2) would change it for a moment for
	// every thread; /proc tells it without that.
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					return uint32(m)
				}
			}
		}
	}
	return 0o777 // unknown: always chmod
})

func processUmask() uint32 { return umaskOnce() }
