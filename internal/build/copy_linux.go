package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/archive"
	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
	"github.com/berth-project/berth/internal/oci"
	"github.com/berth-project/berth/internal/snapshot"
)

// source is one COPY source: a context (or stage) path and what is there.
type source struct {
	name string // the path as cleaned, relative to the source root
	host string
	fi   fs.FileInfo
	// exclude matches the paths (relative to a directory source, or a
	// file source's name) that COPY --exclude leaves out.
	exclude *patternmatcher.PatternMatcher
	// remote is set for a file ADD downloaded: never unpacked.
	remote bool
}

// withExclude sets the --exclude patterns of every source.
func withExclude(srcs []source, pm *patternmatcher.PatternMatcher) {
	for i := range srcs {
		srcs[i].exclude = pm
	}
}

// excluded reports whether rel is left out by --exclude.
func (s source) excluded(rel string) (bool, error) {
	if s.exclude == nil {
		return false, nil
	}
	ok, err := s.exclude.MatchesOrParentMatches(rel)
	if err != nil {
		return false, fmt.Errorf("--exclude: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	return ok, nil
}

// copyStep carries out a COPY or ADD instruction.
func (bd *build) copyStep(ctx context.Context, st *stageState, a copyArgs) error {
	switch {
	case a.parents:
		return fmt.Errorf("%s --parents is not supported yet: %w", a.name, errdefs.ErrNotImplemented)
	case len(a.SourceContents) > 0 && (len(a.SourcePaths) > 0 || a.from != ""):
		return fmt.Errorf("%s of heredocs together with files is not supported yet: %w", a.name, errdefs.ErrNotImplemented)
	case len(a.SourcePaths) == 0 && len(a.SourceContents) == 0:
		return fmt.Errorf("%s requires at least two arguments: %w", a.name, errdefs.ErrInvalidArgument)
	}
	urls := 0
	for _, src := range a.SourcePaths {
		switch {
		case (isURLSource(src) || isGitSource(src)) && a.name == "COPY":
			return fmt.Errorf("source can't be a URL for COPY: %w", errdefs.ErrInvalidArgument)
		case isGitSource(src):
			return fmt.Errorf("ADD of a Git repository (%s) is not supported: %w", redactURL(src), errdefs.ErrNotImplemented)
		case isURLSource(src):
			urls++
		}
	}
	var want digest.Digest
	if a.checksum != "" {
		if urls == 0 || urls < len(a.SourcePaths) {
			return fmt.Errorf("checksum can't be specified for non-HTTP(S) sources: %w", errdefs.ErrInvalidArgument)
		}
		d, err := parseChecksum(a.checksum)
		if err != nil {
			return err
		}
		want = d
	}
	var mode *os.FileMode
	if a.chmod != "" {
		m, err := strconv.ParseUint(a.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("invalid chmod parameter: %s: %w", a.chmod, errdefs.ErrInvalidArgument)
		}
		fm := os.FileMode(m)
		mode = &fm
	}
	dest := a.DestPath
	destIsDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		base := st.conf.WorkingDir
		if base == "" {
			base = "/"
		}
		dest = path.Join(base, dest)
	}
	dest = path.Clean(dest)
	var exclude *patternmatcher.PatternMatcher
	if len(a.exclude) > 0 {
		pm, err := patternmatcher.New(a.exclude)
		if err != nil {
			return fmt.Errorf("--exclude: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		exclude = pm
	}
	opts := fmt.Sprintf("chown=%s chmod=%s add=%t exclude=%q", a.chown, a.chmod, a.add, a.exclude)
	if want != "" {
		opts += " checksum=" + want.String()
	}
	prefix := strings.Join(st.shell(), " ") + " #(nop) " + a.name + " "
	if a.chown != "" {
		// dockerd's classic builder writes the flag with no space
		// before the source digest ("COPY --chown=1:1file:...").
		prefix += "--chown=" + a.chown
	}

	if a.from != "" {
		from, err := bd.expand(a.from, st.env())
		if err != nil {
			return fmt.Errorf("--from=%s: %w: %w", a.from, err, errdefs.ErrInvalidArgument)
		}
		a.from = from
		fromID, err := bd.copyFrom(ctx, from)
		if err != nil {
			return err
		}
		// As Docker's classic builder, the step is keyed on the content
		// of what it copies, not on the source's image: a change
		// elsewhere in that stage leaves it cached.
		sum, err := bd.b.sourceSum(fromID, a.SourcePaths, a.exclude, func() (string, error) {
			var sum string
			err := bd.withImageRoot(ctx, fromID, func(src string) error {
				srcs, err := collect(src, a.SourcePaths)
				if err != nil {
					return err
				}
				withExclude(srcs, exclude)
				sum, err = hashSources(srcs)
				return err
			})
			return sum, err
		})
		if err != nil {
			return err
		}
		s := &step{createdBy: prefix + sum + " in " + a.DestPath + " ", cacheText: opts}
		s.layer = func(ctx context.Context, root string) error {
			return bd.withImageRoot(ctx, fromID, func(src string) error {
				srcs, err := collect(src, a.SourcePaths)
				if err != nil {
					return err
				}
				withExclude(srcs, exclude)
				return copyInto(ctx, root, srcs, dest, destIsDir, a, mode)
			})
		}
		return bd.commit(ctx, st, s)
	}
	root, paths := bd.opts.ContextDir, a.SourcePaths
	if len(a.SourceContents) > 0 {
		// Heredocs become files of a directory of their own.
		dir, err := os.MkdirTemp(bd.scratch, "heredoc-")
		if err != nil {
			return err
		}
		for _, c := range a.SourceContents {
			name := path.Base("/" + c.Path)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(c.Data), 0o644); err != nil {
				return err
			}
			paths = append(paths, name)
		}
		root = dir
	}
	srcs, done, err := bd.gather(ctx, root, paths, destIsDir, want)
	if err != nil {
		return err
	}
	defer done()
	withExclude(srcs, exclude)
	sum, err := hashSources(srcs)
	if err != nil {
		return err
	}
	s := &step{createdBy: prefix + sum + " in " + a.DestPath + " ", cacheText: opts}
	s.layer = func(ctx context.Context, root string) error {
		return copyInto(ctx, root, srcs, dest, destIsDir, a, mode)
	}
	return bd.commit(ctx, st, s)
}

// gather resolves the sources of a COPY or ADD from the context, in
// order: paths inside root, and (ADD) http(s) URLs downloaded into the
// build's scratch space, checked against want if it is set, as Docker's
// classic builder downloads them on every build. done removes the
// downloads; on error nothing is left.
func (bd *build) gather(ctx context.Context, root string, paths []string, destIsDir bool, want digest.Digest) (srcs []source, done func(), err error) {
	var dirs []string
	removeAll := func() {
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}
	defer func() {
		if err != nil {
			removeAll()
		}
	}()
	for _, p := range paths {
		if !isURLSource(p) {
			s, err := collect(root, []string{p})
			if err != nil {
				return nil, nil, err
			}
			srcs = append(srcs, s...)
			continue
		}
		rf, err := download(ctx, bd.scratch, p, want)
		if err != nil {
			return nil, nil, err
		}
		dirs = append(dirs, rf.dir)
		if !rf.named && destIsDir {
			return nil, nil, fmt.Errorf("cannot determine filename for source %s: %w", redactURL(p), errdefs.ErrInvalidArgument)
		}
		fi, err := os.Lstat(rf.host)
		if err != nil {
			return nil, nil, fmt.Errorf("download %s: %w", redactURL(p), err)
		}
		srcs = append(srcs, source{name: rf.name, host: rf.host, fi: fi, remote: true})
	}
	return srcs, removeAll, nil
}

// copyFrom resolves COPY --from: an earlier stage by name or index, or
// an image (pulled if absent).
func (bd *build) copyFrom(ctx context.Context, from string) (digest.Digest, error) {
	if st, ok := bd.stageNamed(from, true); ok {
		return st.imageID, nil
	}
	if n, err := strconv.Atoi(from); err == nil {
		return "", fmt.Errorf("invalid from flag value %d: refers to current or future build stage: %w", n, errdefs.ErrInvalidArgument)
	}
	return bd.baseImage(ctx, from)
}

// withImageRoot calls fn with a read-only mount of image id's tree (an
// empty directory for an image without layers, or none at all).
func (bd *build) withImageRoot(ctx context.Context, id digest.Digest, fn func(root string) error) error {
	key := ""
	if id != "" {
		img, err := bd.b.cfg.Images.Resolve(ctx, id.String())
		if err != nil {
			return err
		}
		if key, err = bd.b.cfg.Images.SnapshotKey(ctx, img); err != nil {
			return err
		}
	}
	if key == "" {
		empty, err := os.MkdirTemp(bd.scratch, "empty-")
		if err != nil {
			return err
		}
		defer os.Remove(empty)
		return fn(empty)
	}
	if err := bd.hold(metadata.ResourceSnapshot, key); err != nil {
		return err
	}
	mounts, err := bd.b.cfg.Snapshotter.Mounts(ctx, key)
	if err != nil {
		return err
	}
	return snapshot.WithTempMount(ctx, mounts, fn)
}

// collect resolves the source paths (globs allowed) inside root. A path
// out of root is refused; symlinks on the way are resolved inside root,
// and a source that is itself a symlink is taken as the link.
func collect(root string, paths []string) ([]source, error) {
	var out []source
	for _, p := range paths {
		clean := path.Clean(p)
		if clean == ".." || strings.HasPrefix(clean, "../") {
			return nil, fmt.Errorf("forbidden path outside the build context: %s (): %w", p, errdefs.ErrInvalidArgument)
		}
		rel := strings.TrimPrefix(path.Clean("/"+clean), "/")
		if strings.ContainsAny(rel, "*?[") {
			n := len(out)
			err := filepath.WalkDir(root, func(host string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				r, _ := filepath.Rel(root, host)
				if r == "." {
					return nil
				}
				if ok, merr := path.Match(rel, filepath.ToSlash(r)); merr != nil {
					return fmt.Errorf("bad pattern %s: %w: %w", p, merr, errdefs.ErrInvalidArgument)
				} else if ok {
					fi, err := d.Info()
					if err != nil {
						return err
					}
					out = append(out, source{name: filepath.ToSlash(r), host: host, fi: fi})
				}
				return nil
			})
			if err != nil {
				return nil, err
			}
			if len(out) == n {
				return nil, fmt.Errorf("no source files were specified: %w", errdefs.ErrInvalidArgument)
			}
			continue
		}
		host := root
		if rel != "" {
			dir, err := securejoin.SecureJoin(root, path.Dir(rel))
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", p, err)
			}
			host = filepath.Join(dir, path.Base(rel))
		}
		fi, err := os.Lstat(host)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("file not found in build context or excluded by .dockerignore: stat %s: file does not exist: %w", p, errdefs.ErrInvalidArgument)
		}
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", p, err)
		}
		out = append(out, source{name: rel, host: host, fi: fi})
	}
	return out, nil
}

// walkSource calls fn for a source and, for a directory, everything under
// it (rel is "" for the source itself). Symlinks are not followed.
func walkSource(s source, fn func(rel, host string, fi fs.FileInfo) error) error {
	if !s.fi.IsDir() {
		if ex, err := s.excluded(path.Base("/" + s.name)); err != nil || ex {
			return err
		}
		return fn("", s.host, s.fi)
	}
	return filepath.WalkDir(s.host, func(host string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.host, host)
		if rel == "." {
			rel = ""
		}
		rel = filepath.ToSlash(rel)
		if rel != "" {
			if ex, err := s.excluded(rel); err != nil {
				return err
			} else if ex {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(rel, host, fi)
	})
}

// hashSources digests the sources' names, metadata and contents (not
// their times) as Docker's created_by shows it: "file:<hex>" for one
// file, "dir:<hex>" for one directory, "multi:<hex>" for several.
func hashSources(srcs []source) (string, error) {
	h := sha256.New()
	for _, s := range srcs {
		fmt.Fprintf(h, "source %q\n", s.name)
		err := walkSource(s, func(rel, host string, fi fs.FileInfo) error {
			var uid, gid uint32
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				uid, gid = st.Uid, st.Gid
			}
			link := ""
			if fi.Mode()&fs.ModeSymlink != 0 {
				l, err := os.Readlink(host)
				if err != nil {
					return err
				}
				link = l
			}
			sum := ""
			if fi.Mode().IsRegular() {
				f, err := os.Open(host)
				if err != nil {
					return err
				}
				fh := sha256.New()
				_, err = io.Copy(fh, f)
				f.Close()
				if err != nil {
					return fmt.Errorf("read %s: %w", host, err)
				}
				sum = hex.EncodeToString(fh.Sum(nil))
			}
			fmt.Fprintf(h, "%q %o %d %d %d %q %s\n", rel, fi.Mode(), uid, gid, fi.Size(), link, sum)
			return nil
		})
		if err != nil {
			return "", err
		}
	}
	kind := "multi"
	if len(srcs) == 1 {
		kind = "file"
		if srcs[0].fi.IsDir() {
			kind = "dir"
		}
	}
	return kind + ":" + hex.EncodeToString(h.Sum(nil)), nil
}

// copyInto writes the sources into the tree at root under dest, as a tar
// stream applied by archive.Apply, which never writes outside root.
func copyInto(ctx context.Context, root string, srcs []source, dest string, destIsDir bool, a copyArgs, mode *os.FileMode) error {
	uid, gid := 0, 0
	if a.chown != "" {
		spec := a.chown
		if !strings.Contains(spec, ":") {
			spec += ":" + spec
		}
		u, err := oci.ResolveUser(root, spec, nil)
		if err != nil {
			return fmt.Errorf("--chown=%s: %w", a.chown, err)
		}
		uid, gid = int(u.UID), int(u.GID)
	}
	if len(srcs) > 1 && !destIsDir {
		//lint:ignore ST1005 Docker's wording
		return fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a /: %w", a.name, errdefs.ErrInvalidArgument)
	}
	into := destIsDir || len(srcs) > 1 || isDirIn(root, dest)
	type entry struct {
		name, host string
		fi         fs.FileInfo
	}
	var entries []entry
	var archives []source
	dirs := map[string]bool{}
	for _, s := range srcs {
		if a.add && !s.remote && s.fi.Mode().IsRegular() && isArchive(s.host) {
			archives = append(archives, s)
			continue
		}
		target := dest
		switch {
		case s.fi.IsDir():
			dirs[dest] = true
		case into:
			target = path.Join(dest, path.Base("/"+s.name))
			dirs[dest] = true
		default:
			dirs[path.Dir(dest)] = true
		}
		err := walkSource(s, func(rel, host string, fi fs.FileInfo) error {
			if strings.HasPrefix(fi.Name(), ".wh.") {
				return fmt.Errorf("%s of %s: file names starting with .wh. are not supported: %w", a.name, host, errdefs.ErrNotImplemented)
			}
			if rel == "" && fi.IsDir() {
				return nil // the directory's contents go into dest
			}
			entries = append(entries, entry{name: path.Join(target, rel), host: host, fi: fi})
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(archives) > 0 {
		dirs[dest] = true
	}
	for d := range dirs {
		if err := mkdirOwned(root, d, uid, gid); err != nil {
			return err
		}
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		for _, e := range entries {
			if err = writeEntry(tw, e.name, e.host, e.fi, uid, gid, mode); err != nil {
				break
			}
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	_, err := archive.Apply(ctx, root, pr, archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete})
	pr.CloseWithError(errors.New("apply ended"))
	if err != nil {
		return fmt.Errorf("%s into %s: %w", a.name, dest, err)
	}
	for _, s := range archives {
		if err := extractInto(ctx, root, dest, s.host); err != nil {
			return fmt.Errorf("ADD %s: %w", s.name, err)
		}
	}
	return nil
}

// writeEntry writes one file's header (and content) as name, owned by
// uid:gid, with mode's permissions if given.
func writeEntry(tw *tar.Writer, name, host string, fi fs.FileInfo, uid, gid int, mode *os.FileMode) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		l, err := os.Readlink(host)
		if err != nil {
			return err
		}
		link = l
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return fmt.Errorf("%s: %w", host, err)
	}
	hdr.Name = strings.TrimPrefix(name, "/")
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = uid, gid, "", ""
	hdr.AccessTime, hdr.ChangeTime = fi.ModTime(), fi.ModTime()
	hdr.Format = tar.FormatPAX
	if mode != nil && hdr.Typeflag != tar.TypeSymlink {
		hdr.Mode = (hdr.Mode &^ 0o7777) | int64(*mode)
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("read %s: %w", host, err)
	}
	return nil
}

// isDirIn reports whether p (absolute, inside the image) is a directory
// in the tree at root, resolving symlinks inside root.
func isDirIn(root, p string) bool {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(full)
	return err == nil && fi.IsDir()
}

// mkdirOwned creates directory p and its missing parents in the tree at
// root (symlinks resolved inside root), mode 0755, owned by uid:gid.
func mkdirOwned(root, p string, uid, gid int) error {
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return fmt.Errorf("destination %s: %w", p, err)
	}
	var missing []string
	for d := full; d != root && len(d) > len(root); d = filepath.Dir(d) {
		fi, err := os.Lstat(d)
		if err == nil {
			if !fi.IsDir() {
				return fmt.Errorf("destination %s: %s is not a directory: %w", p, strings.TrimPrefix(d, root), errdefs.ErrInvalidArgument)
			}
			break
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil {
			return fmt.Errorf("destination %s: %w", p, err)
		}
		if err := os.Lchown(missing[i], uid, gid); err != nil {
			return fmt.Errorf("destination %s: %w", p, err)
		}
	}
	return nil
}

// isArchive reports whether the file is a tar archive, plain or compressed.
func isArchive(host string) bool {
	f, err := os.Open(host)
	if err != nil {
		return false
	}
	defer f.Close()
	r, _, err := archive.Decompress(f)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// extractInto unpacks the archive host into directory dest of root.
func extractInto(ctx context.Context, root, dest, host string) error {
	dir, err := securejoin.SecureJoin(root, dest)
	if err != nil {
		return err
	}
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	defer f.Close()
	r, _, err := archive.Decompress(f)
	if err != nil {
		return err
	}
	defer r.Close()
	_, err = archive.Apply(ctx, dir, r, archive.ApplyOptions{Whiteouts: archive.WhiteoutDelete})
	return err
}
