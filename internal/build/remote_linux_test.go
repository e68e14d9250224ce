package build

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
)

// fileServer is a loopback HTTP server (127.0.0.1 only) serving files
// for ADD, counting the requests of each path.
type fileServer struct {
	srv *httptest.Server
	mu  sync.Mutex
	// files maps a path to its content; headers, extra response headers.
	files   map[string]string
	headers map[string]http.Header
	hits    map[string]*atomic.Int64
}

// newFileServer starts a fileServer on 127.0.0.1, closed when t ends.
func newFileServer(t *testing.T) *fileServer {
	t.Helper()
	fs := &fileServer{files: map[string]string{}, headers: map[string]http.Header{}, hits: map[string]*atomic.Int64{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs.srv = httptest.NewUnstartedServer(http.HandlerFunc(fs.serve))
	fs.srv.Listener.Close()
	fs.srv.Listener = ln
	fs.srv.Start()
	t.Cleanup(fs.srv.Close)
	return fs
}

// set serves data at p with the extra headers h (key, value pairs).
func (fs *fileServer) set(p, data string, h ...string) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.files[p] = data
	hdr := http.Header{}
	for i := 0; i+1 < len(h); i += 2 {
		hdr.Set(h[i], h[i+1])
	}
	fs.headers[p] = hdr
	if fs.hits[p] == nil {
		fs.hits[p] = &atomic.Int64{}
	}
}

// count is how many requests p had.
func (fs *fileServer) count(p string) int64 {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if c := fs.hits[p]; c != nil {
		return c.Load()
	}
	return 0
}

func (fs *fileServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.mu.Lock()
	data, ok := fs.files[r.URL.Path]
	hdr := fs.headers[r.URL.Path]
	if c := fs.hits[r.URL.Path]; c != nil {
		c.Add(1)
	}
	fs.mu.Unlock()
	switch {
	case r.URL.Path == "/truncated":
		// Promises more than it sends: the client sees an unexpected EOF.
		w.Header().Set("Content-Length", "1000")
		w.Write([]byte("only a part"))
		return
	case !ok:
		http.Error(w, "no such file", http.StatusNotFound)
		return
	}
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.Write([]byte(data))
}

// url is the server's URL of p.
func (fs *fileServer) url(p string) string { return fs.srv.URL + p }

// sha256Of is the sha256 digest of s.
func sha256Of(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestAddURL downloads ADD's http sources from a loopback server: a
// file into a directory (mode 0600, mtime from Last-Modified), a tar
// (copied, not unpacked), one named by Content-Disposition, with
// --chown/--chmod and a right --checksum. A rebuild downloads again and
// is cached while the content is the same; new content rebuilds from
// its step on.
func TestAddURL(t *testing.T) {
	e := newEnv(t)
	fs := newFileServer(t)
	lastMod := time.Date(2021, 2, 3, 4, 5, 6, 0, time.UTC)
	tarball := string(gzipTar(t, map[string]string{"in/tar.txt": "from tar\n"}))
	fs.set("/files/hello.txt", "hello\n", "Last-Modified", lastMod.Format(http.TimeFormat))
	fs.set("/files/archive.tar.gz", tarball)
	fs.set("/dl/", "disposed\n", "Content-Disposition", `attachment; filename="named.txt"`)
	fs.set("/changing", "v1\n")
	dir := e.writeContext(map[string]string{"Dockerfile": fmt.Sprintf(`
FROM busybox
ADD %[1]s/files/hello.txt /downloads/
ADD --checksum=%[2]s %[1]s/files/hello.txt /checked
ADD %[1]s/files/archive.tar.gz /tars/
ADD --chown=1234:5678 --chmod=0640 %[1]s/files/hello.txt /owned
ADD %[1]s/dl/ /disposition/
ADD %[1]s/changing /changing
RUN cat /downloads/hello.txt /changing > /seen
`, fs.srv.URL, sha256Of("hello\n"))})
	id, out := e.mustBuild(dir, Options{})
	for p, want := range map[string]string{
		"/downloads/hello.txt":   "hello\n",
		"/checked":               "hello\n",
		"/tars/archive.tar.gz":   tarball,
		"/owned":                 "hello\n",
		"/disposition/named.txt": "disposed\n",
		"/changing":              "v1\n",
		"/seen":                  "hello\nv1\n",
	} {
		if got, ok := e.readFile(id, p); !ok || got != want {
			t.Errorf("%s = %q (present %t), want %q\n%s", p, got, ok, want, out)
		}
	}
	if _, ok := e.readFile(id, "/tars/in/tar.txt"); ok {
		t.Errorf("ADD of a URL unpacked the tar")
	}
	for _, tc := range []struct {
		path     string
		uid, gid uint32
		perm     os.FileMode
		mtime    time.Time
	}{
		{"/downloads/hello.txt", 0, 0, 0o600, lastMod},
		{"/checked", 0, 0, 0o600, lastMod},
		{"/tars/archive.tar.gz", 0, 0, 0o600, time.Unix(0, 0)},
		{"/owned", 1234, 5678, 0o640, lastMod},
		{"/disposition/named.txt", 0, 0, 0o600, time.Unix(0, 0)},
	} {
		fi := e.lstat(id, tc.path)
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != tc.uid || st.Gid != tc.gid || fi.Mode() != tc.perm || !fi.ModTime().Equal(tc.mtime) {
			t.Errorf("%s: %d:%d %v %v, want %d:%d %v %v", tc.path, st.Uid, st.Gid, fi.Mode(), fi.ModTime().UTC(), tc.uid, tc.gid, tc.perm, tc.mtime)
		}
	}
	h := e.history(id)
	if !slices.ContainsFunc(h, func(s string) bool {
		return strings.HasPrefix(s, "/bin/sh -c #(nop) ADD file:") && strings.HasSuffix(s, " in /downloads/ ")
	}) {
		t.Errorf("no ADD file:<digest> in /downloads in the history:\n%s", strings.Join(h, "\n"))
	}

	// A rebuild downloads again (as Docker's classic builder) and,
	// the content unchanged, takes every step from the cache.
	before := fs.count("/files/hello.txt")
	again, out := e.mustBuild(dir, Options{})
	if again != id || !slices.Equal(cachedSteps(out), []int{2, 3, 4, 5, 6, 7, 8}) {
		t.Errorf("rebuild: %s (was %s), cached %v\n%s", shortID(again), shortID(id), cachedSteps(out), out)
	}
	if got := fs.count("/files/hello.txt") - before; got != 3 {
		t.Errorf("the rebuild fetched hello.txt %d times, want 3", got)
	}
	// A new Last-Modified alone changes nothing (the key is the content).
	fs.set("/files/hello.txt", "hello\n", "Last-Modified", lastMod.Add(time.Hour).Format(http.TimeFormat))
	if again, out := e.mustBuild(dir, Options{}); again != id {
		t.Errorf("a new Last-Modified rebuilt: cached %v\n%s", cachedSteps(out), out)
	}
	// New content rebuilds its step and what follows only.
	fs.set("/changing", "v2\n")
	edited, out := e.mustBuild(dir, Options{})
	if !slices.Equal(cachedSteps(out), []int{2, 3, 4, 5, 6}) {
		t.Errorf("after a change of /changing: cached %v\n%s", cachedSteps(out), out)
	}
	if got, _ := e.readFile(edited, "/seen"); got != "hello\nv2\n" {
		t.Errorf("/seen = %q after the change", got)
	}
}

// TestAddURLErrors checks the failures of ADD from URLs: a 404, a
// checksum that does not match (naming both digests), a truncated
// answer, --checksum on a context file or malformed, a URL without a
// file name into a directory, Git sources and COPY of a URL. Nothing
// is left behind (env's cleanup checks the scratch space).
func TestAddURLErrors(t *testing.T) {
	e := newEnv(t)
	fs := newFileServer(t)
	fs.set("/file.txt", "content\n")
	fs.set("/", "index\n")
	dir := e.writeContext(map[string]string{"local.txt": "local\n"})
	wrong := sha256Of("something else")
	for _, tc := range []struct {
		line  string
		want  []string
		class func(error) bool
	}{
		{"ADD " + fs.url("/missing.txt") + " /x",
			[]string{"failed to GET " + fs.url("/missing.txt") + " with status 404 Not Found: no such file"}, errdefs.IsNotFound},
		{"ADD --checksum=" + wrong + " " + fs.url("/file.txt") + " /x",
			[]string{"checksum of " + fs.url("/file.txt") + " does not match", "expected " + wrong, "got " + sha256Of("content\n")}, errdefs.IsInvalidArgument},
		{"ADD " + fs.url("/truncated") + " /x",
			[]string{"download " + fs.url("/truncated") + ": unexpected EOF"}, errdefs.IsUnavailable},
		{"ADD --checksum=" + sha256Of("local\n") + " local.txt /x",
			[]string{"checksum can't be specified for non-HTTP(S) sources"}, errdefs.IsInvalidArgument},
		{"ADD --checksum=sha256:1234 " + fs.url("/file.txt") + " /x",
			[]string{`invalid checksum "sha256:1234"`}, errdefs.IsInvalidArgument},
		{"ADD --checksum=md5:d41d8cd98f00b204e9800998ecf8427e " + fs.url("/file.txt") + " /x",
			[]string{`invalid checksum "md5:`}, errdefs.IsInvalidArgument},
		{"ADD " + fs.srv.URL + " /dir/",
			[]string{"cannot determine filename for source " + fs.srv.URL}, errdefs.IsInvalidArgument},
		{"ADD git@github.com:moby/buildkit.git /src",
			[]string{"ADD of a Git repository (git@github.com:moby/buildkit.git) is not supported"}, errdefs.IsNotImplemented},
		{"ADD https://github.com/moby/buildkit.git#v0.34.2 /src",
			[]string{"ADD of a Git repository"}, errdefs.IsNotImplemented},
		{"ADD --keep-git-dir=true " + fs.url("/file.txt") + " /src",
			[]string{"ADD --keep-git-dir is not supported"}, errdefs.IsNotImplemented},
		{"COPY " + fs.url("/file.txt") + " /x",
			[]string{"source can't be a URL for COPY"}, errdefs.IsInvalidArgument},
	} {
		writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\n" + tc.line + "\n"})
		_, out, err := e.build(dir, Options{})
		if err == nil {
			t.Errorf("%s: built\n%s", tc.line, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.line, err, w)
			}
		}
		if !tc.class(err) {
			t.Errorf("%s: error %v is not of the expected class", tc.line, err)
		}
	}
}

// TestDownload checks download itself: sha256, sha384 and sha512
// checksums verify, and a failed download (a wrong checksum, a
// truncated answer, a 404, a cancelled context) leaves nothing in the
// directory.
func TestDownload(t *testing.T) {
	fs := newFileServer(t)
	fs.set("/file.txt", "content\n")
	dir := t.TempDir()
	s384, s512 := sha512.Sum384([]byte("content\n")), sha512.Sum512([]byte("content\n"))
	for _, want := range []string{
		sha256Of("content\n"),
		"sha384:" + hex.EncodeToString(s384[:]),
		"sha512:" + hex.EncodeToString(s512[:]),
	} {
		d, err := parseChecksum(want)
		if err != nil {
			t.Fatal(err)
		}
		rf, err := download(context.Background(), dir, fs.url("/file.txt"), d)
		if err != nil {
			t.Fatalf("%s: %v", want, err)
		}
		data, err := os.ReadFile(rf.host)
		if err != nil || string(data) != "content\n" || rf.name != "file.txt" || filepath.Dir(rf.host) != rf.dir {
			t.Errorf("%s: %q (%v) in %+v", want, data, err, rf)
		}
		os.RemoveAll(rf.dir)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		path string
		want digest.Digest
	}{
		{context.Background(), "/file.txt", digest.Digest(sha256Of("other"))},
		{context.Background(), "/truncated", ""},
		{context.Background(), "/missing", ""},
		{cancelled, "/file.txt", ""},
	} {
		if _, err := download(tc.ctx, dir, fs.url(tc.path), tc.want); err == nil {
			t.Errorf("%s: downloaded", tc.path)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("%s: left %v", tc.path, entries)
		}
	}
}

// TestDownloadName checks how a download is named: the URL path's last
// element, else Content-Disposition's filename, never "." or "..".
func TestDownloadName(t *testing.T) {
	cd := func(v string) http.Header { return http.Header{"Content-Disposition": {v}} }
	for _, tc := range []struct {
		path string
		h    http.Header
		want string
	}{
		{"/a/b.tar.gz", nil, "b.tar.gz"},
		{"/a/b/", cd(`attachment; filename="c.txt"`), "c.txt"},
		{"", cd(`attachment; filename="../../etc/passwd"`), "passwd"},
		{"/", cd(`attachment; filename="dir/"`), ""},
		{"/x/..", nil, ""},
		{"", nil, ""},
	} {
		if got := downloadName(tc.path, tc.h); got != tc.want {
			t.Errorf("downloadName(%q, %v) = %q, want %q", tc.path, tc.h, got, tc.want)
		}
	}
}

// TestDownloadStatus checks which answers are a file, as in Docker's
// classic builder: any status below 400 (a 204 is an empty file, a
// redirect is followed), none from 400 up.
func TestDownloadStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/moved":
			http.Redirect(w, r, "/target.txt", http.StatusFound)
		case "/target.txt":
			fmt.Fprint(w, "moved here\n")
		default:
			http.Error(w, "bad", http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	for path, want := range map[string]string{"/empty": "", "/moved": "moved here\n"} {
		rf, err := download(context.Background(), dir, srv.URL+path, "")
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if data, err := os.ReadFile(rf.host); err != nil || string(data) != want {
			t.Errorf("%s: %q %v, want %q", path, data, err, want)
		}
		os.RemoveAll(rf.dir)
	}
	if _, err := download(context.Background(), dir, srv.URL+"/bad", ""); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("a 400 answer: %v", err)
	}
}
