package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/go-units"
	"github.com/moby/moby/client"
)

// CpOptions are the options of cp.
type CpOptions struct {
	Source, Destination string
	Archive, FollowLink bool
	Quiet               bool
}

// splitCpArg splits CONTAINER:PATH; a path that starts with / or . is
// local even when it holds a colon.
func splitCpArg(arg string) (container, p string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	c, p, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return c, p
}

// Cp copies files between a container and the local filesystem, or to
// and from a tar stream on stdin/stdout when the local path is "-".
func (c *CLI) Cp(ctx context.Context, o CpOptions) error {
	srcC, srcPath := splitCpArg(o.Source)
	dstC, dstPath := splitCpArg(o.Destination)
	switch {
	case srcC == "" && dstC == "":
		return errors.New("must specify at least one container source")
	case srcC != "" && dstC != "":
		return errors.New("copying between containers is not supported")
	case srcPath == "" || dstPath == "":
		return errors.New("filepath can not be empty")
	}
	cl, err := c.Client()
	if err != nil {
		return err
	}
	if srcC != "" {
		return c.copyFrom(ctx, cl, srcC, srcPath, dstPath, o)
	}
	return c.copyTo(ctx, cl, srcPath, dstC, dstPath, o)
}

func (c *CLI) copyFrom(ctx context.Context, cl *client.Client, ctr, src, dst string, o CpOptions) error {
	if !path.IsAbs(src) {
		src = "/" + src
	}
	res, err := cl.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return c.daemonError(err)
	}
	defer res.Content.Close()
	if o.FollowLink && res.Stat.Mode&os.ModeSymlink != 0 {
		target := res.Stat.LinkTarget
		if !path.IsAbs(target) {
			target = path.Join(path.Dir(src), target)
		}
		res.Content.Close()
		if res, err = cl.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: target}); err != nil {
			return c.daemonError(err)
		}
		defer res.Content.Close()
	}
	if dst == "-" {
		_, err := io.Copy(c.Out, res.Content)
		return err
	}
	srcIsDir := res.Stat.Mode.IsDir()
	rootName := res.Stat.Name
	copyContents := srcIsDir && (strings.HasSuffix(src, "/.") || strings.HasSuffix(src, "/./"))
	var into, rename string
	st, err := os.Stat(dst)
	switch {
	case err == nil && st.IsDir():
		into = dst
		if copyContents {
			rename = "."
		}
	case err == nil:
		if srcIsDir {
			return fmt.Errorf("cannot copy a directory to a file: %s", dst)
		}
		into, rename = filepath.Dir(dst), filepath.Base(dst)
	case errors.Is(err, fs.ErrNotExist):
		if strings.HasSuffix(dst, "/") {
			return fmt.Errorf("destination directory %s does not exist", dst)
		}
		into, rename = filepath.Dir(dst), filepath.Base(dst)
		if st, err := os.Stat(into); err != nil || !st.IsDir() {
			return fmt.Errorf("destination directory %s does not exist", into)
		}
	default:
		return err
	}
	n, err := extractTar(res.Content, into, rootName, rename)
	if err != nil {
		return fmt.Errorf("copy %s:%s to %s: %w", ctr, src, dst, err)
	}
	if !o.Quiet {
		fmt.Fprintf(c.Err, "Successfully copied %s to %s\n", units.HumanSize(float64(n)), dst)
	}
	return nil
}

// extractTar writes a tar stream under dir through an os.Root, so that no
// entry can land outside dir; entries under root are renamed to rename
// ("." drops the root). It returns the bytes of file content written.
func extractTar(r io.Reader, dir, root, rename string) (int64, error) {
	rt, err := os.OpenRoot(dir)
	if err != nil {
		return 0, err
	}
	defer rt.Close()
	tr := tar.NewReader(r)
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "/"))
		if rename != "" && root != "" {
			if name == root {
				name = rename
			} else if rest, ok := strings.CutPrefix(name, root+"/"); ok {
				name = path.Join(rename, rest)
			}
		}
		if name == "." && h.Typeflag == tar.TypeDir {
			continue
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return total, fmt.Errorf("archive entry %q leaves the destination", h.Name)
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := rt.MkdirAll(name, 0o755); err != nil {
				return total, err
			}
			if err := rt.Chmod(name, mode); err != nil {
				return total, err
			}
		case tar.TypeReg:
			rt.Remove(name)
			f, err := rt.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_EXCL, mode)
			if err != nil {
				return total, err
			}
			n, err := io.Copy(f, tr)
			total += n
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return total, err
			}
			rt.Chmod(name, mode)
		case tar.TypeSymlink:
			rt.Remove(name)
			if err := rt.Symlink(h.Linkname, name); err != nil {
				return total, err
			}
		case tar.TypeLink:
			target := path.Clean(strings.TrimPrefix(h.Linkname, "/"))
			if rename != "" && root != "" {
				if rest, ok := strings.CutPrefix(target, root+"/"); ok {
					target = path.Join(rename, rest)
				} else if target == root {
					target = rename
				}
			}
			rt.Remove(name)
			if err := rt.Link(target, name); err != nil {
				return total, err
			}
		default:
			// devices, fifos: not made on the host by a client
			continue
		}
		rt.Chtimes(name, h.AccessTime, h.ModTime)
	}
}

func (c *CLI) copyTo(ctx context.Context, cl *client.Client, src, ctr, dst string, o CpOptions) error {
	if !path.IsAbs(dst) {
		dst = "/" + dst
	}
	if src == "-" {
		_, err := cl.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: dst, Content: c.In, CopyUIDGID: o.Archive})
		return c.daemonError(err)
	}
	stat := os.Lstat
	if o.FollowLink {
		stat = os.Stat
	}
	st, err := stat(src)
	if err != nil {
		return err
	}
	rootName := filepath.Base(src)
	into := dst
	dstStat, err := cl.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dst})
	switch {
	case err == nil && dstStat.Stat.Mode.IsDir():
		if st.IsDir() && (strings.HasSuffix(src, "/.") || strings.HasSuffix(src, "/./")) {
			rootName = "."
		}
	case err == nil:
		if st.IsDir() {
			return fmt.Errorf("cannot copy a directory to a file: %s", dst)
		}
		into, rootName = path.Dir(dst), path.Base(dst)
	case cerrdefs.IsNotFound(err):
		if strings.HasSuffix(dst, "/") {
			return fmt.Errorf("destination directory %s does not exist", dst)
		}
		into, rootName = path.Dir(dst), path.Base(dst)
	default:
		return c.daemonError(err)
	}
	pr, pw := io.Pipe()
	var size int64
	go func() {
		n, err := writeTar(pw, src, rootName, o.FollowLink)
		size = n
		pw.CloseWithError(err)
	}()
	_, err = cl.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: into, Content: pr, CopyUIDGID: o.Archive})
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return c.daemonError(err)
	}
	if !o.Quiet {
		fmt.Fprintf(c.Err, "Successfully copied %s to %s:%s\n", units.HumanSize(float64(size)), ctr, dst)
	}
	return nil
}

// writeTar archives src with its root entry named rootName ("." to put
// a directory's contents at the top) and returns the content bytes.
func writeTar(w io.Writer, src, rootName string, follow bool) (int64, error) {
	tw := tar.NewWriter(w)
	var total int64
	first := true
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var fi fs.FileInfo
		if first && follow {
			fi, err = os.Stat(p)
		} else {
			fi, err = os.Lstat(p)
		}
		first = false
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		name := path.Join(rootName, filepath.ToSlash(rel))
		if name == "." {
			return nil
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		h.Name = name
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(tw, f)
			f.Close()
			total += n
			return err
		}
		return nil
	})
	if err != nil {
		return total, err
	}
	return total, tw.Close()
}
