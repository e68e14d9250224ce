package build

import (
	"bytes"
	"context"
	_ "crypto/sha256" // the digests --checksum may name
	_ "crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/berth-project/berth/internal/errdefs"
)

// unnamedRemote is the name of a download neither its URL nor its
// response names, as in Docker's classic builder: it lands at the
// destination path itself, which must then not end with "/".
const unnamedRemote = "__unnamed__"

// remoteClient fetches ADD's URLs. It uses the daemon's proxy settings
// (HTTP_PROXY, HTTPS_PROXY, NO_PROXY), follows redirects and, as Docker,
// sets no overall deadline: the build's context ends a download.
var remoteClient = &http.Client{Transport: remoteTransport()}

// remoteTransport is http.DefaultTransport's settings, the proxy taken
// from the daemon's environment.
func remoteTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = http.ProxyFromEnvironment
	return t
}

// remoteFile is an ADD source downloaded from a URL into a directory of
// its own in the build's scratch space.
type remoteFile struct {
	// dir holds the file alone; remove it once the step is done.
	dir string
	// name is the file's name in the image: the URL path's last element,
	// else the response's Content-Disposition filename, else
	// unnamedRemote.
	name string
	// named is false when name is unnamedRemote.
	named bool
	// host is the file's path on the host: mode 0600, mtime the
	// response's Last-Modified (the Unix epoch without one).
	host string
}

// isURLSource reports whether an ADD source is an http(s) URL.
func isURLSource(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// isGitSource reports whether an ADD source names a Git repository, as
// BuildKit reads it: git@ and git:// or ssh:// addresses, and http(s)
// URLs whose path ends in .git (a #ref may follow).
func isGitSource(src string) bool {
	switch {
	case strings.HasPrefix(src, "git@"), strings.HasPrefix(src, "git://"), strings.HasPrefix(src, "ssh://"):
		return true
	case isURLSource(src):
		u, err := url.Parse(src)
		return err == nil && strings.HasSuffix(u.Path, ".git")
	}
	return false
}

// redactURL is src with a URL's password masked, for messages.
func redactURL(src string) string {
	if u, err := url.Parse(src); err == nil && u.User != nil {
		return u.Redacted()
	}
	return src
}

// parseChecksum parses ADD --checksum's value: a digest such as
// "sha256:<64 hex digits>" (sha384 and sha512 too).
func parseChecksum(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("invalid checksum %q (want sha256:<hex>, sha384:<hex> or sha512:<hex>): %w: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return d, nil
}

// download fetches rawURL into a new directory under dir and, if want is
// set, checks the content against it. Only a 200 answer is taken. On any
// failure nothing of the download is left.
func download(ctx context.Context, dir, rawURL string, want digest.Digest) (rf remoteFile, err error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return remoteFile{}, fmt.Errorf("invalid URL %s: %w: %w", rawURL, err, errdefs.ErrInvalidArgument)
	}
	shown := u.Redacted() // no password in messages
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return remoteFile{}, fmt.Errorf("invalid URL %s: %w: %w", shown, err, errdefs.ErrInvalidArgument)
	}
	resp, err := remoteClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return remoteFile{}, fmt.Errorf("download %s: %w", shown, ctx.Err())
		}
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL
		}
		return remoteFile{}, fmt.Errorf("download %s: %w: %w", shown, err, errdefs.ErrUnavailable)
	}
	defer resp.Body.Close()
	// As Docker's classic builder: any status below 400 is the file
	// (redirects are followed already).
	if resp.StatusCode >= http.StatusBadRequest {
		return remoteFile{}, statusError(shown, resp)
	}

	rf.name = downloadName(u.Path, resp.Header)
	rf.named = rf.name != ""
	if !rf.named {
		rf.name = unnamedRemote
	}
	if rf.dir, err = os.MkdirTemp(dir, "remote-"); err != nil {
		return remoteFile{}, fmt.Errorf("download %s: %w", shown, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(rf.dir)
		}
	}()
	rf.host = filepath.Join(rf.dir, rf.name)
	f, err := os.OpenFile(rf.host, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return rf, fmt.Errorf("download %s: %w", shown, err)
	}
	var h hash.Hash
	w := io.Writer(f)
	if want != "" {
		h = want.Algorithm().Hash()
		w = io.MultiWriter(f, h)
	}
	_, err = io.Copy(w, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if ctx.Err() != nil {
			return rf, fmt.Errorf("download %s: %w", shown, ctx.Err())
		}
		return rf, fmt.Errorf("download %s: %w: %w", shown, err, errdefs.ErrUnavailable)
	}
	if want != "" {
		if got := digest.NewDigest(want.Algorithm(), h); got != want {
			return rf, fmt.Errorf("checksum of %s does not match: expected %s, got %s: %w", shown, want, got, errdefs.ErrInvalidArgument)
		}
	}
	// Docker's classic builder: 0600, whatever the umask; mtime from
	// Last-Modified, else the epoch.
	if err = os.Chmod(rf.host, 0o600); err != nil {
		return rf, fmt.Errorf("download %s: %w", shown, err)
	}
	mtime := time.Unix(0, 0)
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, perr := http.ParseTime(lm); perr == nil {
			mtime = t
		}
	}
	if err = os.Chtimes(rf.host, mtime, mtime); err != nil {
		return rf, fmt.Errorf("download %s: %w", shown, err)
	}
	return rf, nil
}

// statusError is the error of a download answered with resp's status
// other than 200, with the start of the answer's body, classified by the
// status.
func statusError(shown string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := fmt.Sprintf("failed to GET %s with status %s", shown, resp.Status)
	if b := bytes.TrimSpace(body); len(b) > 0 && !bytes.ContainsFunc(b, func(r rune) bool { return r < ' ' && r != '\n' && r != '\t' }) {
		msg += ": " + string(b)
	}
	class := errdefs.ErrInvalidArgument
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		class = errdefs.ErrNotFound
	case resp.StatusCode == http.StatusUnauthorized:
		class = errdefs.ErrUnauthorized
	case resp.StatusCode == http.StatusForbidden:
		class = errdefs.ErrPermission
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		class = errdefs.ErrUnavailable
	}
	return fmt.Errorf("%s: %w", msg, class)
}

// downloadName is the file name a download gets, as Docker's classic
// builder picks it: the URL path's last element unless the path ends
// with "/", else the Content-Disposition filename's last element, else
// "". Names that are no file name ("." and "..") do not count.
func downloadName(urlPath string, h http.Header) string {
	valid := func(p string) string {
		if p == "" || strings.HasSuffix(p, "/") {
			return ""
		}
		switch b := path.Base(p); b {
		case ".", "..", "/":
			return ""
		default:
			return b
		}
	}
	if n := valid(urlPath); n != "" {
		return n
	}
	if cd := h.Get("Content-Disposition"); cd != "" {
		if _, params, err := mime.ParseMediaType(cd); err == nil {
			return valid(params["filename"])
		}
	}
	return ""
}
