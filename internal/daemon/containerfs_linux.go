package daemon

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/container"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/log"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/snapshot"
	"github.com/berth-project/berth/internal/volume"
)

// maxSymlinks bounds the symlinks one path resolution follows (Docker's
// limit for paths in a container).
const maxSymlinks = 255

// ctrView is a container's file system as docker cp sees it: its root (the
// running container's mounted root, or a temporary mount of its layer) with
// its volumes and bind mounts attached at their destinations, in a mount
// namespace of the view's own. Nothing of it shows on the host, and all of
// it goes when the view is closed (or the daemon dies). Every path is
// resolved from the root with openat2(RESOLVE_IN_ROOT): a symlink or ".."
// cannot lead out of it.
type ctrView struct {
	root int // O_PATH fd of the container's "/" in the namespace
	ns   int // fd of the namespace, which keeps its mounts attached
	// cleanup releases what the host holds for the view (a temporary
	// mount of a stopped container's layer); nil for none.
	cleanup func()
}

// openView opens the view of c, whose root is mounted at its bundle when
// running. The caller holds e.op and closes the view.
func (d *Daemon) openView(ctx context.Context, c *container.Container, running bool) (_ *ctrView, err error) {
	v := &ctrView{root: -1, ns: -1}
	defer func() {
		if err != nil {
			v.Close()
		}
	}()
	rootPath := filepath.Join(d.bundleDir(c.ID), "rootfs")
	if running {
		if err := checkMounted(rootPath); err != nil {
			return nil, fmt.Errorf("container %s: %w", c.ID, err)
		}
	} else {
		mounts, err := d.snap.Mounts(ctx, c.SnapshotKey)
		if err != nil {
			return nil, fmt.Errorf("container %s: layer: %w", c.ID, err)
		}
		dir, err := os.MkdirTemp(d.cfg.ExecRoot, "containerfs-")
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", c.ID, err)
		}
		v.cleanup = func() {
			if err := snapshot.UnmountAll(dir); err != nil {
				log.G(ctx).Error("temporary mount of a container's layer left mounted", "dir", dir, "error", err)
				return
			}
			os.Remove(dir)
		}
		if err := snapshot.MountAll(mounts, dir); err != nil {
			return nil, fmt.Errorf("container %s: mount layer: %w", c.ID, err)
		}
		rootPath = dir
	}
	mounts := c.Mounts
	if running {
		// The container sees its own hosts, hostname and resolv.conf.
		mounts = append(slices.Clone(mounts), networkFileMounts(c)...)
	}
	if err := v.openAt(rootPath, mounts); err != nil {
		return nil, fmt.Errorf("container %s: file system view: %w", c.ID, err)
	}
	return v, nil
}

// networkFileMounts are the files berth binds over /etc in a running
// container, as bind mounts.
func networkFileMounts(c *container.Container) []container.Mount {
	var out []container.Mount
	for _, f := range []struct{ src, dst string }{
		{c.Network.HostsPath, "/etc/hosts"}, {c.Network.HostnamePath, "/etc/hostname"}, {c.Network.ResolvConfPath, "/etc/resolv.conf"},
	} {
		if f.src != "" {
			out = append(out, container.Mount{Type: volume.TypeBind, Source: f.src, Destination: f.dst, RW: !c.HostConfig.ReadonlyRootfs})
		}
	}
	return out
}

// openAt opens the view's namespace with the root at rootPath and the
// volume and bind mounts of mounts attached.
func (v *ctrView) openAt(rootPath string, mounts []container.Mount) error {
	binds := slices.DeleteFunc(slices.Clone(mounts), func(m container.Mount) bool {
		return m.Type != volume.TypeVolume && m.Type != volume.TypeBind
	})
	// Parents first, so that a mount inside another lands in it.
	slices.SortStableFunc(binds, func(a, b container.Mount) int {
		return strings.Count(path.Clean(a.Destination), "/") - strings.Count(path.Clean(b.Destination), "/")
	})
	return inPrivateMountNS(func() error {
		fd, err := unix.Open(rootPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: rootPath, Err: err}
		}
		v.root = fd
		for _, m := range binds {
			if err := v.attach(m); err != nil {
				return fmt.Errorf("mount %s at %s: %w", m.Source, m.Destination, err)
			}
		}
		ns, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open mount namespace: %w", err)
		}
		v.ns = ns
		return nil
	})
}

// checkMounted fails unless dir is a mount point (a running container's
// root must be; mounting its layer a second time would share its upper
// directory).
func checkMounted(dir string) error {
	mounted, err := mountinfo.Mounted(dir)
	if err != nil {
		return fmt.Errorf("root file system: %w", err)
	}
	if !mounted {
		return fmt.Errorf("root file system %s is not mounted: %w", dir, errdefs.ErrConflict)
	}
	return nil
}

// inPrivateMountNS runs fn on an OS thread moved into a new mount
// namespace, a copy of the daemon's that receives the host's unmounts but
// sends nothing back. The thread is never reused: it exits with fn.
func inPrivateMountNS(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("new mount namespace: %w", err)
			return
		}
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
			errc <- fmt.Errorf("make mounts slaves: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// attach bind-mounts m's source at its destination in the view (creating
// a missing mount point as Docker does), read-only unless m is RW. It runs
// in the view's namespace.
func (v *ctrView) attach(m container.Mount) error {
	var st unix.Stat_t
	if err := unix.Stat(m.Source, &st); err != nil {
		return &os.PathError{Op: "stat", Path: m.Source, Err: err}
	}
	dest, err := v.resolve(path.Clean("/" + m.Destination))
	if err != nil {
		return err
	}
	if err := v.makeMountPoint(dest, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
		return err
	}
	target, err := v.open(dest, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	flags := unix.OPEN_TREE_CLONE | unix.O_CLOEXEC
	if !slices.Contains(m.Options, volume.OptNonRecursive) {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, m.Source, uint(flags))
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Propagation: unix.MS_PRIVATE}
	if !m.RW {
		attr.Attr_set = unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	if err := unix.MoveMount(tree, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// makeMountPoint creates the resolved path p (a directory, or an empty
// file when isDir is false) and its missing parents.
func (v *ctrView) makeMountPoint(p string, isDir bool) error {
	if p == "/" {
		return nil
	}
	dir := "/"
	comps := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, name := range comps {
		pfd, err := v.open(dir, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return err
		}
		last := i == len(comps)-1
		if last && !isDir {
			var fd int
			fd, err = unix.Openat(pfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
			if err == nil {
				unix.Close(fd)
			}
		} else {
			err = unix.Mkdirat(pfd, name, 0o755)
		}
		unix.Close(pfd)
		if err != nil && err != unix.EEXIST {
			return &os.PathError{Op: "create mount point", Path: path.Join(dir, name), Err: err}
		}
		dir = path.Join(dir, name)
	}
	return nil
}

// Close releases the view: its namespace and mounts go with the last fd.
func (v *ctrView) Close() {
	for _, fd := range []*int{&v.root, &v.ns} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	if v.cleanup != nil {
		v.cleanup()
		v.cleanup = nil
	}
}

// rootPath names the view's root for APIs that take a path.
func (v *ctrView) rootPath() string { return "/proc/self/fd/" + strconv.Itoa(v.root) }

// open opens the container path p with flags, resolved inside the root.
func (v *ctrView) open(p string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags) | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(v.root, "."+p, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: p, Err: err}
		}
		return fd, nil
	}
}

// lstat stats the container path p without following its last component.
func (v *ctrView) lstat(p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if p == "/" {
		return st, unix.Fstat(v.root, &st)
	}
	pfd, err := v.open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return st, err
	}
	defer unix.Close(pfd)
	if err := unix.Fstatat(pfd, path.Base(p), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	return st, nil
}

// readlink reads the symlink at the container path p.
func (v *ctrView) readlink(p string) (string, error) {
	pfd, err := v.open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", err
	}
	defer unix.Close(pfd)
	target, err := readlinkAt(pfd, path.Base(p))
	if err != nil {
		return "", &os.PathError{Op: "readlink", Path: p, Err: err}
	}
	return target, nil
}

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

// resolve returns the absolute container path p with every symlink in it
// evaluated inside the container (an absolute target restarts from its
// root, ".." stops there). Components that do not exist are kept as they
// are, as Docker's FollowSymlinkInScope does.
func (v *ctrView) resolve(p string) (string, error) {
	comps := strings.Split(p, "/")
	resolved := "/"
	links := 0
	for len(comps) > 0 {
		name := comps[0]
		comps = comps[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, name)
		st, err := v.lstat(next)
		switch {
		case errors.Is(err, unix.ENOENT):
			resolved = next
			continue
		case err != nil:
			return "", err
		case st.Mode&unix.S_IFMT != unix.S_IFLNK:
			resolved = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", &os.PathError{Op: "resolve", Path: p, Err: unix.ELOOP}
		}
		target, err := v.readlink(next)
		if err != nil {
			return "", err
		}
		if strings.HasPrefix(target, "/") {
			resolved = "/"
		}
		comps = append(strings.Split(target, "/"), comps...)
	}
	return resolved, nil
}

// stat lstats the cp request path p (its last component followed when p
// ends with "/" or "/.") and returns Docker's PathStat and the resolved
// container path to archive.
func (v *ctrView) stat(p string) (PathStat, string, error) {
	abs := containerPath(p)
	var loc string
	var err error
	if followsLast(p) || abs == "/" {
		loc, err = v.resolve(abs)
	} else {
		loc, err = v.resolve(path.Dir(abs))
		loc = path.Join(loc, path.Base(abs))
	}
	if err != nil {
		return PathStat{}, "", err
	}
	st, err := v.lstat(loc)
	if err != nil {
		return PathStat{}, "", err
	}
	ps := PathStat{Name: statName(p), Size: st.Size, Mode: fileMode(&st), Mtime: time.Unix(st.Mtim.Unix())}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFLNK:
		if ps.LinkTarget, err = v.resolve(loc); err != nil {
			return PathStat{}, "", err
		}
	case unix.S_IFDIR:
	default:
		if followsLast(p) {
			return PathStat{}, "", &os.PathError{Op: "stat", Path: p, Err: unix.ENOTDIR}
		}
	}
	return ps, loc, nil
}

// fileMode converts a stat mode to an os.FileMode, as os.Lstat does.
func fileMode(st *unix.Stat_t) os.FileMode {
	m := os.FileMode(st.Mode & 0o777)
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		m |= os.ModeDevice
	case unix.S_IFCHR:
		m |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		m |= os.ModeDir
	case unix.S_IFIFO:
		m |= os.ModeNamedPipe
	case unix.S_IFLNK:
		m |= os.ModeSymlink
	case unix.S_IFSOCK:
		m |= os.ModeSocket
	}
	if st.Mode&unix.S_ISUID != 0 {
		m |= os.ModeSetuid
	}
	if st.Mode&unix.S_ISGID != 0 {
		m |= os.ModeSetgid
	}
	if st.Mode&unix.S_ISVTX != 0 {
		m |= os.ModeSticky
	}
	return m
}

// statHeader is the tar header of a file with stat st, named name.
func statHeader(name string, st *unix.Stat_t) *tar.Header {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
	case unix.S_IFCHR:
		hdr.Typeflag = tar.TypeChar
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // a socket: tar has no type for it
	}
	if hdr.Typeflag == tar.TypeChar || hdr.Typeflag == tar.TypeBlock {
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	}
	return hdr
}

// archive writes the tar of the container path loc (resolved, not
// followed) with its top entry named name.
func (v *ctrView) archive(ctx context.Context, w io.Writer, loc, name string) error {
	tw := tar.NewWriter(w)
	st, err := v.lstat(loc)
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		err = v.archiveDir(ctx, tw, loc, name)
	} else {
		err = v.archiveFile(tw, loc, name)
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

// archiveFile writes the one entry of the non-directory loc.
func (v *ctrView) archiveFile(tw *tar.Writer, loc, name string) error {
	pfd, err := v.open(path.Dir(loc), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	base := path.Base(loc)
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: loc, Err: err}
	}
	var f *os.File
	if st.Mode&unix.S_IFMT == unix.S_IFREG {
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: loc, Err: err}
		}
		f = os.NewFile(uintptr(fd), loc)
		defer f.Close()
		if err := unix.Fstat(fd, &st); err != nil {
			return &os.PathError{Op: "stat", Path: loc, Err: err}
		}
	}
	hdr := statHeader(name, &st)
	if hdr == nil {
		return nil
	}
	if hdr.Typeflag == tar.TypeSymlink {
		if hdr.Linkname, err = readlinkAt(pfd, base); err != nil {
			return &os.PathError{Op: "readlink", Path: loc, Err: err}
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if f == nil {
		return nil
	}
	n, err := io.Copy(tw, io.LimitReader(f, hdr.Size))
	if err != nil {
		return fmt.Errorf("copy %s: %w", loc, err)
	}
	if n != hdr.Size {
		return fmt.Errorf("copy %s: file shrank while being archived", loc)
	}
	return nil
}

// archiveDir writes the directory loc as name/ and its tree below it, read
// by archive.WriteTree and renamed on the way.
func (v *ctrView) archiveDir(ctx context.Context, tw *tar.Writer, loc, name string) error {
	fd, err := v.open(loc, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "stat", Path: loc, Err: err}
	}
	if err := tw.WriteHeader(statHeader(name+"/", &st)); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(archive.WriteTree(ctx, pw, "/proc/self/fd/"+strconv.Itoa(fd)))
	}()
	err = renameEntries(tw, tar.NewReader(pr), name+"/")
	pr.CloseWithError(errors.New("archive stopped"))
	<-done
	return err
}

// renameEntries copies the entries of tr to tw with prefix before their
// names (and before the targets of hard links).
func renameEntries(tw *tar.Writer, tr *tar.Reader, prefix string) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		hdr.Name = prefix + hdr.Name
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = prefix + hdr.Linkname
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}

// extractionDir resolves the cp destination p (symlinks followed, the last
// one too) and checks that it is a directory.
func (v *ctrView) extractionDir(p string) (string, error) {
	dir, err := v.resolve(containerPath(p))
	if err != nil {
		return "", err
	}
	st, err := v.lstat(dir)
	if err != nil {
		return "", err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return "", fmt.Errorf("extraction point is not a directory: %w", errdefs.ErrInvalidArgument)
	}
	return dir, nil
}

// user returns the uid and gid of the container user spec ("" is root),
// names looked up in the container's /etc/passwd and /etc/group.
func (v *ctrView) user(spec string) (int, int, error) {
	if spec == "" {
		return 0, 0, nil
	}
	u, err := oci.ResolveUser(v.rootPath(), spec, nil)
	if err != nil {
		return 0, 0, err
	}
	return int(u.UID), int(u.GID), nil
}

// extract applies the tar r into the resolved directory dir of the view.
// Entry names are checked (nothing may climb out of dir, whiteouts are
// refused), then the entries are applied from the container's root with
// archive.Apply, so that symlinks already in the container resolve inside
// it as they do for its processes.
func (v *ctrView) extract(ctx context.Context, dir string, r io.Reader, opts extractOpts) error {
	pr, pw := io.Pipe()
	var checkErr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		checkErr = v.checkEntries(r, pw, dir, opts)
		pw.CloseWithError(checkErr)
	}()
	_, err := archive.Apply(ctx, v.rootPath(), pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete})
	pr.CloseWithError(errors.New("extraction stopped"))
	<-done
	var bad *badEntry
	if errors.As(checkErr, &bad) {
		return bad.err
	}
	return err
}

// badEntry marks an error of checkEntries about the archive itself, which
// wins over the error Apply then reports.
type badEntry struct{ err error }

func (b *badEntry) Error() string { return b.err.Error() }

// checkEntries copies the tar r to w with every name made relative to the
// container's root under dir, refusing what would leave dir.
func (v *ctrView) checkEntries(r io.Reader, w io.Writer, dir string, opts extractOpts) error {
	rel := strings.TrimPrefix(dir, "/")
	join := func(name string) string {
		if p := path.Join(rel, name); p != "" {
			return p
		}
		return "."
	}
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return &badEntry{fmt.Errorf("read archive: %w: %w", err, errdefs.ErrInvalidArgument)}
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		name, ok := entryPath(hdr.Name)
		if !ok {
			return &badEntry{fmt.Errorf("%q is outside of %q: %w", hdr.Name, dir, errdefs.ErrInvalidArgument)}
		}
		if strings.HasPrefix(path.Base(name), ".wh.") {
			return &badEntry{fmt.Errorf("%q: whiteout files cannot be copied into a container: %w", hdr.Name, errdefs.ErrInvalidArgument)}
		}
		out := &tar.Header{
			Typeflag: hdr.Typeflag, Name: join(name), Linkname: hdr.Linkname, Size: hdr.Size,
			Mode: hdr.Mode, Uid: hdr.Uid, Gid: hdr.Gid, ModTime: hdr.ModTime, AccessTime: hdr.AccessTime,
			Devmajor: hdr.Devmajor, Devminor: hdr.Devminor,
		}
		if hdr.Typeflag == tar.TypeLink {
			target, ok := entryPath(hdr.Linkname)
			if !ok {
				return &badEntry{fmt.Errorf("invalid hardlink %q -> %q: %w", hdr.Name, hdr.Linkname, errdefs.ErrInvalidArgument)}
			}
			out.Linkname = join(target)
		}
		for k, val := range hdr.PAXRecords {
			if strings.HasPrefix(k, "SCHILY.xattr.") {
				if out.PAXRecords == nil {
					out.PAXRecords = map[string]string{}
				}
				out.PAXRecords[k] = val
			}
		}
		if opts.owner != nil {
			out.Uid, out.Gid = opts.owner[0], opts.owner[1]
		}
		if opts.noOverwriteDirNonDir && name != "" {
			if err := v.checkOverwrite(path.Join(dir, name), dir, hdr.Typeflag == tar.TypeDir); err != nil {
				return &badEntry{err}
			}
		}
		if err := tw.WriteHeader(out); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
	return tw.Close()
}

// entryPath cleans a tar entry name into a path relative to the
// extraction directory ("" for the directory itself); ok is false when it
// climbs out of it.
func entryPath(name string) (string, bool) {
	if name == "" || strings.IndexByte(name, 0) >= 0 {
		return "", false
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", false
	}
	c = strings.TrimLeft(c, "/")
	if c == "." {
		c = ""
	}
	return c, true
}

// checkOverwrite refuses to replace the directory p with a non-directory
// or the reverse (docker cp's NoOverwriteDirNonDir).
func (v *ctrView) checkOverwrite(p, dir string, isDir bool) error {
	st, err := v.lstat(p)
	if err != nil {
		return nil // missing (or unreachable: Apply reports it)
	}
	exists := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case exists && !isDir:
		return fmt.Errorf("cannot overwrite directory %q with non-directory %q: %w", p, dir, errdefs.ErrConflict)
	case !exists && isDir:
		return fmt.Errorf("cannot overwrite non-directory %q with directory %q: %w", p, dir, errdefs.ErrConflict)
	}
	return nil
}
