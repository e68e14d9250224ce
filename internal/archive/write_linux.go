package archive

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/errdefs"
)

// WriteTree writes the whole tree under root as a tar (export). The root
// directory itself is not an entry; sockets are left out.
func WriteTree(ctx context.Context, w io.Writer, root string) error {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write tree: %w", &os.PathError{Op: "open", Path: root, Err: err})
	}
	defer unix.Close(fd)
	t := newTreeWriter(w)
	err = walkTree(ctx, fd, "", func(dirfd int, name, rel string, st *unix.Stat_t) (bool, error) {
		_, err := t.entry(dirfd, name, rel, st)
		return true, err
	})
	if err == nil {
		err = t.tw.Close()
	}
	if err != nil {
		return fmt.Errorf("write tree %s: %w", root, err)
	}
	return nil
}

// WriteOverlayDiff writes the tar of an overlayfs upper directory: 0/0
// character devices become ".wh.<name>" and opaque directories get a
// ".wh..wh..opq" entry. An upper written with redirect_dir or metacopy
// cannot be diffed this way and gives errdefs.ErrNotImplemented.
func WriteOverlayDiff(ctx context.Context, w io.Writer, upper string) error {
	fd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write overlay diff: %w", &os.PathError{Op: "open", Path: upper, Err: err})
	}
	defer unix.Close(fd)
	t := newTreeWriter(w)
	err = walkTree(ctx, fd, "", func(dirfd int, name, rel string, st *unix.Stat_t) (bool, error) {
		if isWhiteoutDev(st) {
			return false, t.whiteout(path.Join(path.Dir(rel), whiteoutPrefix+name))
		}
		xa, err := t.entry(dirfd, name, rel, st)
		if err != nil {
			return false, err
		}
		if err := checkOverlayXattrs(rel, xa); err != nil {
			return false, err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR && isOpaque(xa) {
			return true, t.whiteout(rel + "/" + opaqueMarker)
		}
		return true, nil
	})
	if err == nil {
		err = t.tw.Close()
	}
	if err != nil {
		return fmt.Errorf("write overlay diff %s: %w", upper, err)
	}
	return nil
}

func isOpaque(xa map[string]string) bool {
	return xa["trusted.overlay.opaque"] == "y" || xa["user.overlay.opaque"] == "y"
}

func checkOverlayXattrs(rel string, xa map[string]string) error {
	for _, p := range []string{"trusted.overlay.", "user.overlay."} {
		for _, k := range []string{"redirect", "metacopy"} {
			if _, ok := xa[p+k]; ok {
				return fmt.Errorf("%q has %s%s (mount overlay with redirect_dir=off,metacopy=off): %w", rel, p, k, errdefs.ErrNotImplemented)
			}
		}
	}
	return nil
}

// treeWriter writes file system entries as reproducible PAX tar entries.
type treeWriter struct {
	tw    *tar.Writer
	links map[[2]uint64]string // inode -> first path written for it
	buf   []byte
}

func newTreeWriter(w io.Writer) *treeWriter {
	return &treeWriter{tw: tar.NewWriter(w), links: map[[2]uint64]string{}, buf: make([]byte, 128<<10)}
}

// entry writes name in dirfd, rel being its path in the tar, and returns
// its xattrs (all of them, overlay ones included).
func (t *treeWriter) entry(dirfd int, name, rel string, st *unix.Stat_t) (map[string]string, error) {
	fd := -1
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		var err error
		fd, err = unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("open %q: %w", rel, err)
		}
		defer unix.Close(fd)
		var fst unix.Stat_t
		if err := unix.Fstat(fd, &fst); err != nil {
			return nil, fmt.Errorf("stat %q: %w", rel, err)
		}
		st = &fst
	}
	xa, err := xattrs(fd, procPath(dirfd, name))
	if err != nil {
		return nil, fmt.Errorf("%q: %w", rel, err)
	}
	hdr := headerFromStat(rel, st, xa)
	if hdr == nil {
		return xa, nil // a socket
	}
	switch hdr.Typeflag {
	case tar.TypeSymlink:
		if hdr.Linkname, err = readlinkAt(dirfd, name); err != nil {
			return nil, fmt.Errorf("readlink %q: %w", rel, err)
		}
	case tar.TypeReg:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := t.links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
				return xa, t.writeHeader(hdr)
			}
			t.links[key] = rel
		}
	}
	if err := t.writeHeader(hdr); err != nil {
		return nil, err
	}
	if fd >= 0 {
		n, err := io.CopyBuffer(t.tw, io.LimitReader(fdReader(fd), hdr.Size), t.buf)
		if err != nil {
			return nil, fmt.Errorf("copy %q: %w", rel, err)
		}
		if n != hdr.Size {
			return nil, fmt.Errorf("copy %q: file shrank while being archived", rel)
		}
	}
	return xa, nil
}

// fdReader reads a raw fd (an os.File would close it from a finalizer).
type fdReader int

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (t *treeWriter) writeHeader(hdr *tar.Header) error {
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write header of %q: %w", hdr.Name, err)
	}
	return nil
}

// whiteout writes an empty whiteout or opaque marker entry.
func (t *treeWriter) whiteout(name string) error {
	return t.writeHeader(&tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		ModTime:  time.Unix(0, 0),
		Format:   tar.FormatPAX,
	})
}

// headerFromStat builds the reproducible header of a file: no user or
// group names, no atime or ctime. It returns nil for a socket.
func headerFromStat(name string, st *unix.Stat_t, xa map[string]string) *tar.Header {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: timespecTime(st.Mtim),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, name+"/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil
	}
	for k, v := range xa {
		if isOverlayXattr(k) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[xattrPrefix+k] = v
	}
	return hdr
}

func timespecTime(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }

func readlinkAt(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// walkTree calls fn for every entry below the directory dirfd (rel is its
// path, "" for the top) in byte order of names, a directory before its
// contents. fn says whether to descend into a directory. Symlinks are never
// followed: each directory is opened from its parent with O_NOFOLLOW.
func walkTree(ctx context.Context, dirfd int, rel string, fn func(dirfd int, name, rel string, st *unix.Stat_t) (bool, error)) error {
	names, err := readDirNames(dirfd)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", rel, err)
	}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := path.Join(rel, n)
		st, err := lstatAt(dirfd, n)
		if err == unix.ENOENT {
			continue // removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("stat %q: %w", p, err)
		}
		descend, err := fn(dirfd, n, p, &st)
		if err != nil {
			return err
		}
		if !descend || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		cfd, err := unix.Openat(dirfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %q: %w", p, err)
		}
		err = walkTree(ctx, cfd, p, fn)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}
