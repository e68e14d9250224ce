package build

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/metadata"
)

// TestCopy copies files, directories and globs from the context, with
// --chown (numeric and by name) and --chmod, and ADD unpacks a local
// gzip tar, with each snapshotter; each result is read back from the
// image.
func TestCopy(t *testing.T) {
	for _, kind := range []string{"overlay", "native"} {
		t.Run(kind, func(t *testing.T) { testCopy(t, kind) })
	}
}

func testCopy(t *testing.T, kind string) {
	e := newEnvOn(t, kind)
	dir := e.writeContext(map[string]string{
		"Dockerfile": `
FROM busybox
WORKDIR /work
COPY a.txt .
COPY a.txt /renamed
COPY a.txt /etc
COPY dir /copied/
COPY *.md /docs/
COPY --chown=berth a.txt /owned/by-name
COPY --chown=1234:5678 a.txt /owned/by-number
COPY --chmod=0600 a.txt /private
ADD archive.tar.gz /unpacked/
ADD a.txt /added
RUN cat /work/a.txt /copied/sub/deep.txt > /combined
`,
		"a.txt":            "alpha\n",
		"dir/b.txt":        "beta\n",
		"dir/sub/deep.txt": "deep\n",
		"dir/empty/":       "",
		"one.md":           "1\n",
		"two.md":           "2\n",
		"three.txt":        "not a doc\n",
	})
	if err := os.WriteFile(filepath.Join(dir, "archive.tar.gz"), gzipTar(t, map[string]string{"in/tar.txt": "from tar\n"}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "dir/b.txt"), 0o751); err != nil {
		t.Fatal(err)
	}
	id, _ := e.mustBuild(dir, Options{})
	files := map[string]string{
		"/work/a.txt":          "alpha\n",
		"/renamed":             "alpha\n",
		"/etc/a.txt":           "alpha\n",
		"/copied/b.txt":        "beta\n",
		"/copied/sub/deep.txt": "deep\n",
		"/docs/one.md":         "1\n",
		"/docs/two.md":         "2\n",
		"/owned/by-name":       "alpha\n",
		"/owned/by-number":     "alpha\n",
		"/private":             "alpha\n",
		"/unpacked/in/tar.txt": "from tar\n",
		"/added":               "alpha\n",
		"/combined":            "alpha\ndeep\n",
	}
	for p, want := range files {
		if got, ok := e.readFile(id, p); !ok || got != want {
			t.Errorf("%s = %q (present %t), want %q", p, got, ok, want)
		}
	}
	for _, absent := range []string{"/docs/three.txt", "/copied/dir", "/unpacked/archive.tar.gz"} {
		if _, ok := e.readFile(id, absent); ok {
			t.Errorf("%s should not exist", absent)
		}
	}
	if fi := e.lstat(id, "/copied/empty"); !fi.IsDir() {
		t.Errorf("/copied/empty is not a directory")
	}
	owner := func(p string) (uint32, uint32, os.FileMode) {
		fi := e.lstat(id, p)
		st := fi.Sys().(*syscall.Stat_t)
		return st.Uid, st.Gid, fi.Mode().Perm()
	}
	for _, tc := range []struct {
		path     string
		uid, gid uint32
		perm     os.FileMode
	}{
		{"/work/a.txt", 0, 0, 0o644},
		{"/copied/b.txt", 0, 0, 0o751},
		{"/owned/by-name", 1000, 1000, 0o644},
		{"/owned/by-number", 1234, 5678, 0o644},
		{"/owned", 1000, 1000, 0o755},
		{"/private", 0, 0, 0o600},
	} {
		uid, gid, perm := owner(tc.path)
		if uid != tc.uid || gid != tc.gid || perm != tc.perm {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", tc.path, uid, gid, perm, tc.uid, tc.gid, tc.perm)
		}
	}
	h := e.history(id)
	var copies int
	for _, c := range h {
		if strings.HasPrefix(c, "/bin/sh -c #(nop) COPY file:") && strings.HasSuffix(c, " in /renamed ") {
			copies++
		}
	}
	if copies != 1 || !slices.ContainsFunc(h, func(s string) bool { return strings.HasPrefix(s, "/bin/sh -c #(nop) COPY dir:") }) ||
		!slices.ContainsFunc(h, func(s string) bool { return strings.HasPrefix(s, "/bin/sh -c #(nop) COPY multi:") }) {
		t.Errorf("history:\n%s", strings.Join(h, "\n"))
	}
	// The destination is written as given, as dockerd's classic builder
	// does: relative and with its trailing slash.
	for _, suffix := range []string{" in . ", " in /copied/ ", " in /docs/ ", " in /unpacked/ "} {
		if !slices.ContainsFunc(h, func(s string) bool { return strings.HasSuffix(s, suffix) }) {
			t.Errorf("no history entry ends in %q:\n%s", suffix, strings.Join(h, "\n"))
		}
	}
}

// TestCopyStaysInContext checks that COPY never reads outside the
// context: ../ paths are refused, a symlink in the context is copied as
// a link (its target is not read), and a directory symlink on the way
// resolves inside the context.
func TestCopyStaysInContext(t *testing.T) {
	e := newEnv(t)
	outside := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(outside, []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := e.writeContext(map[string]string{"inside/file": "inside\n"})
	for _, l := range []struct{ name, target string }{{"link", outside}, {"dirlink", "/"}, {"uplink", "../.."}} {
		if err := os.Symlink(l.target, filepath.Join(dir, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ df, want string }{
		{"FROM busybox\nCOPY ../secret /x\n", "forbidden path outside the build context: ../secret ()"},
		{"FROM busybox\nCOPY inside/../../secret /x\n", "forbidden path outside the build context"},
	} {
		writeFiles(t, dir, map[string]string{"Dockerfile": tc.df})
		_, out, err := e.build(dir, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: error %v, want %q\n%s", tc.df, err, tc.want, out)
		}
	}
	// dirlink/ and uplink/ resolve to the context's root, not the host's.
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nCOPY link /copied-link\nCOPY dirlink/inside/file /via-dirlink\nCOPY uplink/inside/file /via-uplink\n"})
	id, _ := e.mustBuild(dir, Options{})
	fi := e.lstat(id, "/copied-link")
	if fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("/copied-link is %v, want a symlink", fi.Mode())
	}
	e.inImage(id, func(root string) {
		if target, err := os.Readlink(filepath.Join(root, "copied-link")); err != nil || target != outside {
			t.Errorf("link target %q (%v), want %q", target, err, outside)
		}
	})
	for _, p := range []string{"/via-dirlink", "/via-uplink"} {
		if got, _ := e.readFile(id, p); got != "inside\n" {
			t.Errorf("%s = %q, want the context's file", p, got)
		}
	}
}

// TestMultiStage copies from an earlier stage (by name and index) and
// from an image, into a scratch stage, and builds a --target; the
// platform args are set.
func TestMultiStage(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{"Dockerfile": `
FROM busybox AS builder
RUN mkdir -p /out && echo built > /out/result && ln -s result /out/link
FROM --platform=$BUILDPLATFORM busybox AS other
ARG TARGETARCH
RUN echo other > /other && echo $TARGETARCH > /arch
FROM scratch
ARG SRC=builder
COPY --from=${SRC} /out /app/
COPY --from=0 /out/result /by-index
COPY --from=busybox /bin/busybox /bin/busybox
COPY --from=other /other /other
CMD ["/bin/busybox", "cat", "/app/result"]
`})
	id, _ := e.mustBuild(dir, Options{Tags: []string{"multi:latest"}})
	for p, want := range map[string]string{"/app/result": "built\n", "/by-index": "built\n", "/other": "other\n"} {
		if got, _ := e.readFile(id, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	if fi := e.lstat(id, "/app/link"); fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("/app/link is not a symlink")
	}
	if fi := e.lstat(id, "/bin/busybox"); fi.Size() == 0 {
		t.Errorf("/bin/busybox is empty")
	}
	if _, ok := e.readFile(id, "/bin/sh"); ok {
		t.Errorf("the scratch stage has busybox's /bin/sh")
	}
	oc, _ := e.config(id)
	if len(oc.RootFS.DiffIDs) != 4 {
		t.Errorf("%d layers, want 4 (one per COPY)", len(oc.RootFS.DiffIDs))
	}
	// --target stops at the named stage.
	tid, out := e.mustBuild(dir, Options{Target: "other"})
	if got, _ := e.readFile(tid, "/other"); got != "other\n" {
		t.Errorf("target image /other = %q", got)
	}
	if got, _ := e.readFile(tid, "/arch"); got != runtime.GOARCH+"\n" {
		t.Errorf("TARGETARCH = %q, want %s", got, runtime.GOARCH)
	}
	if strings.Contains(out, "FROM scratch") || !strings.Contains(out, "Step 5/5 : RUN echo other > /other") {
		t.Errorf("--target output:\n%s", out)
	}
}

// TestCopyHeredocAndExclude copies a heredoc (variables expanded,
// quotes kept) and a directory with --exclude patterns.
func TestCopyHeredocAndExclude(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{
		"Dockerfile": `
FROM busybox
ENV WHO=world
COPY <<EOF /greeting
hello "$WHO"
EOF
COPY --exclude=*.log --exclude=skip/ src /dst/
`,
		"src/keep.txt":     "keep\n",
		"src/drop.log":     "drop\n",
		"src/skip/f.txt":   "skipped\n",
		"src/sub/keep.txt": "kept too\n",
	})
	id, out := e.mustBuild(dir, Options{})
	if got, _ := e.readFile(id, "/greeting"); got != "hello \"world\"\n" {
		t.Errorf("/greeting = %q\n%s", got, out)
	}
	for p, want := range map[string]string{"/dst/keep.txt": "keep\n", "/dst/sub/keep.txt": "kept too\n"} {
		if got, _ := e.readFile(id, p); got != want {
			t.Errorf("%s = %q, want %q", p, got, want)
		}
	}
	for _, p := range []string{"/dst/drop.log", "/dst/skip/f.txt"} {
		if _, ok := e.readFile(id, p); ok {
			t.Errorf("%s was copied despite --exclude", p)
		}
	}
	// A change in an excluded file does not touch the cache.
	writeFiles(t, dir, map[string]string{"src/drop.log": "changed\n"})
	if _, out := e.mustBuild(dir, Options{}); !slices.Equal(cachedSteps(out), []int{2, 3, 4}) {
		t.Errorf("after changing an excluded file: cached %v\n%s", cachedSteps(out), out)
	}
}

// gzipTar returns a gzip-compressed tar of files.
func gzipTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCopyFromCacheKey checks that COPY --from is keyed on the content
// it copies, as in Docker's classic builder: a change in the source
// stage elsewhere leaves it cached, a change of the copied file
// rebuilds it. Prune forgets the recorded source digests.
func TestCopyFromCacheKey(t *testing.T) {
	e := newEnv(t)
	dir := e.writeContext(map[string]string{
		"Dockerfile": `
FROM busybox AS src
COPY kept.txt /out/kept
COPY marker.txt /marker.txt
FROM busybox
COPY --from=src /out/kept /kept
RUN cat /kept > /seen
`,
		"kept.txt":   "kept\n",
		"marker.txt": "1\n",
	})
	first, out := e.mustBuild(dir, Options{})
	if len(cachedSteps(out)) != 0 {
		t.Fatalf("first build cached %v", cachedSteps(out))
	}
	// The source stage changes, not in /out/kept: the copy stays cached.
	writeFiles(t, dir, map[string]string{"marker.txt": "2\n"})
	id, out := e.mustBuild(dir, Options{})
	if id != first || !slices.Equal(cachedSteps(out), []int{2, 5, 6}) {
		t.Errorf("after a change beside the copied file: %s (was %s), cached %v\n%s", shortID(id), shortID(first), cachedSteps(out), out)
	}
	// The copied file changes: the copy and what follows are built.
	writeFiles(t, dir, map[string]string{"kept.txt": "changed\n"})
	id, out = e.mustBuild(dir, Options{})
	if id == first || len(cachedSteps(out)) != 0 {
		t.Errorf("after a change of the copied file: cached %v\n%s", cachedSteps(out), out)
	}
	if got, _ := e.readFile(id, "/seen"); got != "changed\n" {
		t.Errorf("/seen = %q", got)
	}
	h := e.history(id)
	if !slices.ContainsFunc(h, func(s string) bool {
		return strings.HasPrefix(s, "/bin/sh -c #(nop) COPY file:") && strings.HasSuffix(s, " in /kept ")
	}) {
		t.Errorf("no COPY file:<digest> in /kept in the history:\n%s", strings.Join(h, "\n"))
	}
	countSums := func() int {
		n := 0
		err := e.db.View(func(tx *metadata.Tx) error {
			return tx.ForEachJSON(sourceKind, func(string, []byte) error { n++; return nil })
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := countSums(); n != 3 {
		t.Errorf("%d source digests recorded, want 3 (one per source stage image)", n)
	}
	if _, err := e.b.Prune(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n := countSums(); n != 0 {
		t.Errorf("%d source digests left after prune", n)
	}
}
