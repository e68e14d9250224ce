package cli

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// defaultDockerfile is the Dockerfile a build uses unless told otherwise.
const defaultDockerfile = "Dockerfile"

// contextDir is a build context read from a directory.
type contextDir struct {
	dir        string // absolute
	dockerfile string // slash path relative to dir, "" when added apart
	// extra, if set, is a Dockerfile from outside the context (stdin or a
	// -f path elsewhere), sent under the name extraName.
	extra     []byte
	extraName string
}

// localContext resolves a directory build context and its Dockerfile as
// docker does: -f is relative to the working directory, the default is
// dir/Dockerfile (or dir/dockerfile), and a Dockerfile outside dir (or
// "-", read from stdin) is sent in the context under a random name.
func localContext(dir, dockerfile string, stdin io.Reader) (*contextDir, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("unable to get absolute context directory of given context directory %q: %w", dir, err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("unable to evaluate symlinks in context path: %w", err)
	}
	if st, err := os.Stat(abs); err != nil {
		return nil, fmt.Errorf("unable to stat context directory %q: %w", abs, err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("context must be a directory: %s", abs)
	}
	c := &contextDir{dir: abs}
	switch dockerfile {
	case "-":
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read Dockerfile from stdin: %w", err)
		}
		return c.withExtra(b)
	case "":
		c.dockerfile = defaultDockerfile
		if _, err := os.Lstat(filepath.Join(abs, defaultDockerfile)); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Lstat(filepath.Join(abs, "dockerfile")); err == nil {
				c.dockerfile = "dockerfile"
			}
		}
		if _, err := os.Stat(filepath.Join(abs, c.dockerfile)); err != nil {
			return nil, errNoDockerfile(c.dockerfile)
		}
		return c, nil
	}
	df, err := filepath.Abs(dockerfile)
	if err != nil {
		return nil, fmt.Errorf("unable to get absolute path to Dockerfile: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(filepath.Dir(df)); err == nil {
		df = filepath.Join(resolved, filepath.Base(df))
	}
	if _, err := os.Stat(df); err != nil {
		return nil, errNoDockerfile(dockerfile)
	}
	rel, err := filepath.Rel(abs, df)
	if err != nil || !filepath.IsLocal(rel) {
		b, err := os.ReadFile(df)
		if err != nil {
			return nil, fmt.Errorf("read Dockerfile: %w", err)
		}
		return c.withExtra(b)
	}
	c.dockerfile = filepath.ToSlash(rel)
	return c, nil
}

// errNoDockerfile is docker's error for a Dockerfile that is not there.
func errNoDockerfile(name string) error {
	//lint:ignore ST1005 Docker's wording
	return fmt.Errorf("Cannot locate specified Dockerfile: %s", name)
}

// withExtra makes b the context's Dockerfile, sent under a random name
// at the context's top.
func (c *contextDir) withExtra(b []byte) (*contextDir, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, err
	}
	c.extra, c.extraName, c.dockerfile = b, ".dockerfile."+hex.EncodeToString(r[:]), ""
	return c, nil
}

// name is the Dockerfile's name in the context.
func (c *contextDir) name() string {
	if c.extraName != "" {
		return c.extraName
	}
	return c.dockerfile
}

// excludes reads the context's .dockerignore, adding exceptions so that
// the Dockerfile and .dockerignore are always sent (the daemon needs the
// first, and the second says what was left out), as docker does.
func (c *contextDir) excludes() ([]string, error) {
	f, err := os.Open(filepath.Join(c.dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	defer f.Close()
	ex, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	pm, err := patternmatcher.New(ex)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	for _, keep := range []string{".dockerignore", c.dockerfile} {
		if keep == "" {
			continue
		}
		if m, _ := pm.MatchesOrParentMatches(keep); m {
			ex = append(ex, "!"+keep)
		}
	}
	return ex, nil
}

// matcher returns the matcher of the context's exclusions.
func (c *contextDir) matcher() (*patternmatcher.PatternMatcher, error) {
	ex, err := c.excludes()
	if err != nil {
		return nil, err
	}
	pm, err := patternmatcher.New(ex)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	return pm, nil
}

// writeTar writes the context as a tar to w: the files pm leaves in,
// owned by root as docker sends them, symlinks as links, and the extra
// Dockerfile if any. Sockets, devices and fifos are skipped.
func (c *contextDir) writeTar(w io.Writer, pm *patternmatcher.PatternMatcher) error {
	tw := tar.NewWriter(w)
	infos := map[string]patternmatcher.MatchInfo{}
	err := filepath.WalkDir(c.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("error checking context: %w", err)
		}
		rel, err := filepath.Rel(c.dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		skip, info, err := pm.MatchesUsingParentResults(rel, infos[path.Dir(rel)])
		if err != nil {
			return fmt.Errorf(".dockerignore: %w", err)
		}
		if d.IsDir() {
			infos[rel] = info
		}
		if skip {
			if d.IsDir() && !mayReinclude(pm, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		return addFile(tw, p, rel, d)
	})
	if err != nil {
		return err
	}
	if c.extraName != "" {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: c.extraName, Mode: 0o600, Size: int64(len(c.extra))}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(c.extra); err != nil {
			return err
		}
	}
	return tw.Close()
}

// mayReinclude says whether an exception pattern ("!x") could bring back
// something under the excluded directory dir, so the walk must enter it.
func mayReinclude(pm *patternmatcher.PatternMatcher, dir string) bool {
	if !pm.Exclusions() {
		return false
	}
	for _, p := range pm.Patterns() {
		if p.Exclusion() && (strings.HasPrefix(p.String()+"/", dir+"/") || strings.ContainsAny(p.String(), "*?[\\")) {
			return true
		}
	}
	return false
}

// addFile writes the entry of p (named rel) to tw.
func addFile(tw *tar.Writer, p, rel string, d fs.DirEntry) error {
	fi, err := d.Info()
	if err != nil {
		return fmt.Errorf("error checking context: %w", err)
	}
	var target string
	switch {
	case fi.Mode().IsRegular(), fi.IsDir():
	case fi.Mode()&fs.ModeSymlink != 0:
		if target, err = os.Readlink(p); err != nil {
			return fmt.Errorf("error checking context: %w", err)
		}
	default:
		return nil // sockets, devices, fifos: not part of a build context
	}
	hdr, err := tar.FileInfoHeader(fi, target)
	if err != nil {
		return fmt.Errorf("archive %s: %w", rel, err)
	}
	hdr.Name = rel
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	hdr.Format = tar.FormatPAX
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("archive %s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("error checking context: %w", err)
	}
	defer f.Close()
	if _, err := io.CopyN(tw, f, hdr.Size); err != nil {
		return fmt.Errorf("archive %s: %w", rel, err)
	}
	return nil
}

// stdinContext reads a build context from stdin: a tar archive (plain or
// compressed), sent as it is, or else a Dockerfile alone, sent in a tar of
// its own.
func stdinContext(in io.Reader) (io.Reader, bool, error) {
	br := bufio.NewReaderSize(in, 1024)
	head, err := br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, false, fmt.Errorf("read build context from stdin: %w", err)
	}
	if isArchive(head) {
		return br, true, nil
	}
	b, err := io.ReadAll(br)
	if err != nil {
		return nil, false, fmt.Errorf("read Dockerfile from stdin: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: defaultDockerfile, Mode: 0o600, Size: int64(len(b)), Format: tar.FormatPAX}); err != nil {
		return nil, false, err
	}
	if _, err := tw.Write(b); err != nil {
		return nil, false, err
	}
	if err := tw.Close(); err != nil {
		return nil, false, err
	}
	return &buf, false, nil
}

// isArchive says whether head starts a tar archive or a compressed stream
// (gzip, bzip2, xz, zstd).
func isArchive(head []byte) bool {
	for _, magic := range [][]byte{{0x1f, 0x8b}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0x00}, {0x28, 0xb5, 0x2f, 0xfd}} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	if len(head) < 512 {
		return false
	}
	_, err := tar.NewReader(bytes.NewReader(head)).Next()
	return err == nil || errors.Is(err, io.ErrUnexpectedEOF)
}
