package registry

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/testutil"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// faultSetup is a registry holding one blob and one image, a proxy in front
// of it and a client that talks to the proxy.
type faultSetup struct {
	p      *faultProxy
	c      *Client
	repo   reference.Named
	data   []byte
	desc   v1.Descriptor
	mdesc  v1.Descriptor
	tagRef reference.Named
}

func newFaultSetup(t *testing.T, mutate func(*Options)) *faultSetup {
	t.Helper()
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	p := newFaultProxy(t, reg)
	f := &faultSetup{p: p, c: newTestClient(t, reg, mutate), repo: mustRef(t, p.Host()+"/berth/fault")}
	f.data, f.desc = randomBlob(t, 1<<20)
	pushBlob(t, f.c, f.repo, f.data, f.desc)
	_, f.mdesc, _ = pushImage(t, f.c, f.repo, "v1", 100)
	f.tagRef = mustRef(t, p.Host()+"/berth/fault:v1")
	return f
}

func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

func isManifestGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/manifests/")
}

// serveCut forwards r but sends only n bytes of the body, then drops the
// connection.
func (p *faultProxy) serveCut(w http.ResponseWriter, r *http.Request, n int64) {
	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	copyHeader(w, resp)
	_, _ = io.CopyN(w, resp.Body, n)
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}

// readBlob opens f's blob at offset and reads it all.
func (f *faultSetup) readBlob(t *testing.T, ctx context.Context, offset int64) ([]byte, *BlobReader, error) {
	t.Helper()
	rc, err := f.c.OpenBlob(ctx, f.repo, f.desc, offset)
	if err != nil {
		return nil, nil, err
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	return got, rc.(*BlobReader), err
}

func TestOpenBlobResumesAfterCut(t *testing.T) {
	f := newFaultSetup(t, nil)
	var cuts atomic.Int32
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlobGet(r) && cuts.Add(1) <= 2 {
			f.p.serveCut(w, r, 300_000)
			return true
		}
		return false
	})
	got, br, err := f.readBlob(t, testCtx(t), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, f.data) || br.Restarted() {
		t.Fatalf("got %d bytes (equal %v), restarted %v", len(got), bytes.Equal(got, f.data), br.Restarted())
	}
	// Cut at 300000, then at 600000 (300000 more), then the rest.
	blobGets := f.p.requests("GET /v2/berth/fault/blobs/" + f.desc.Digest.String())
	want := []string{"", "bytes=300000-", "bytes=600000-"}
	if len(blobGets) != len(want) {
		t.Fatalf("blob requests %q, want ranges %q", blobGets, want)
	}
	for i := range want {
		if !strings.HasSuffix(blobGets[i], " "+want[i]) {
			t.Fatalf("blob requests %q, want ranges %q", blobGets, want)
		}
	}
}

func TestOpenBlobGivesUpAfterRetries(t *testing.T) {
	f := newFaultSetup(t, func(o *Options) { o.Retries = 2 })
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlobGet(r) {
			f.p.serveCut(w, r, 0)
			return true
		}
		return false
	})
	_, _, err := f.readBlob(t, testCtx(t), 0)
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), f.desc.Digest.String()) {
		t.Fatalf("got %v, want an unavailable error naming the blob", err)
	}
}

func TestOpenBlobIgnoredRange(t *testing.T) {
	f := newFaultSetup(t, nil)
	stripRange := func(w http.ResponseWriter, r *http.Request) bool {
		r.Header.Del("Range")
		return false
	}
	// At open: the stream restarts at 0 and says so.
	f.p.setFault(stripRange)
	got, br, err := f.readBlob(t, testCtx(t), 5000)
	if err != nil {
		t.Fatal(err)
	}
	if !br.Restarted() || br.Offset() != 0 || !bytes.Equal(got, f.data) {
		t.Fatalf("restarted %v offset %d, %d bytes (equal %v)", br.Restarted(), br.Offset(), len(got), bytes.Equal(got, f.data))
	}

	// After a cut: what was delivered is skipped, the caller sees no seam.
	var cut atomic.Bool
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isBlobGet(r) && cut.CompareAndSwap(false, true) {
			f.p.serveCut(w, r, 400_000)
			return true
		}
		return stripRange(w, r)
	})
	got, br, err = f.readBlob(t, testCtx(t), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if br.Restarted() || br.Offset() != 1000 || !bytes.Equal(got, f.data[1000:]) {
		t.Fatalf("restarted %v offset %d, %d bytes (equal %v)", br.Restarted(), br.Offset(), len(got), bytes.Equal(got, f.data[1000:]))
	}
}

func TestOpenBlobStalledStream(t *testing.T) {
	f := newFaultSetup(t, func(o *Options) { o.Timeout = 300 * time.Millisecond })
	var stalled atomic.Bool
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !isBlobGet(r) || !stalled.CompareAndSwap(false, true) {
			return false
		}
		resp, err := f.p.forward(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		defer resp.Body.Close()
		copyHeader(w, resp)
		_, _ = io.CopyN(w, resp.Body, 200_000)
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done() // stall until the client gives up
		return true
	})
	start := time.Now()
	got, _, err := f.readBlob(t, testCtx(t), 0)
	if err != nil || !bytes.Equal(got, f.data) {
		t.Fatalf("read: %d bytes, %v", len(got), err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("stall recovery took %s", d)
	}
	if n := len(f.p.requests(" bytes=200000-")); n != 1 {
		t.Errorf("%d resumes from 200000, want 1", n)
	}
}

func TestOpenBlobTooLong(t *testing.T) {
	f := newFaultSetup(t, nil)
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !isBlobGet(r) {
			return false
		}
		resp, err := f.p.forward(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		defer resp.Body.Close()
		resp.Header.Del("Content-Length")
		copyHeader(w, resp)
		_, _ = io.Copy(w, resp.Body)
		_, _ = w.Write([]byte("extra"))
		return true
	})
	_, _, err := f.readBlob(t, testCtx(t), 0)
	if !errdefs.IsDataLoss(err) {
		t.Fatalf("got %v, want data loss", err)
	}
}

func TestRetryServerErrors(t *testing.T) {
	f := newFaultSetup(t, nil)
	var fails atomic.Int32
	fails.Store(2)
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isManifestGet(r) && fails.Add(-1) >= 0 {
			http.Error(w, "try later", http.StatusInternalServerError)
			return true
		}
		return false
	})
	d, _, err := f.c.Resolve(testCtx(t), f.tagRef)
	if err != nil || d.Digest != f.mdesc.Digest {
		t.Fatalf("resolve after two 500s: %+v %v", d, err)
	}
	if n := len(f.p.requests("GET /v2/berth/fault/manifests/v1")); n != 3 {
		t.Errorf("%d manifest requests, want 3", n)
	}

	// A server that keeps failing: Retries+1 tries, then unavailable.
	fails.Store(1000)
	_, _, err = f.c.Resolve(testCtx(t), f.tagRef)
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "500") || !strings.Contains(err.Error(), f.p.Host()) {
		t.Fatalf("got %v, want unavailable naming the registry", err)
	}
	if n := len(f.p.requests("GET /v2/berth/fault/manifests/v1")); n != 3+DefaultRetries+1 {
		t.Errorf("%d manifest requests in all, want %d", n, 3+DefaultRetries+1)
	}
}

func TestNotFound(t *testing.T) {
	f := newFaultSetup(t, nil)
	ctx := testCtx(t)
	missing := v1.Descriptor{Digest: digest.FromString("missing"), Size: 7}
	rc, err := f.c.OpenBlob(ctx, f.repo, missing, 0)
	if err == nil {
		rc.Close()
	}
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), missing.Digest.String()) {
		t.Fatalf("missing blob: %v", err)
	}
	_, _, err = f.c.FetchManifest(ctx, f.repo, digest.FromString("missing"))
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "berth/fault@"+digest.FromString("missing").String()+" not found") {
		t.Fatalf("missing manifest: %v", err)
	}
	_, _, err = f.c.Resolve(ctx, mustRef(t, f.p.Host()+"/berth/nothing:v1"))
	if !errdefs.IsNotFound(err) {
		t.Fatalf("missing repository: %v", err)
	}
}

func TestCorruptManifest(t *testing.T) {
	f := newFaultSetup(t, nil)
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if !isManifestGet(r) {
			return false
		}
		resp, err := f.p.forward(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return true
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		body = bytes.Replace(body, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1)
		copyHeader(w, resp)
		_, _ = w.Write(body)
		return true
	})
	_, _, err := f.c.FetchManifest(testCtx(t), f.repo, f.mdesc.Digest)
	if !errdefs.IsDataLoss(err) || !strings.Contains(err.Error(), f.mdesc.Digest.String()) {
		t.Fatalf("by digest: got %v, want data loss", err)
	}
	// By tag, the registry's Docker-Content-Digest gives it away.
	_, _, err = f.c.Resolve(testCtx(t), f.tagRef)
	if !errdefs.IsDataLoss(err) {
		t.Fatalf("by tag: got %v, want data loss", err)
	}
}

func TestHungServer(t *testing.T) {
	f := newFaultSetup(t, func(o *Options) { o.Retries = 1; o.Timeout = 400 * time.Millisecond })
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if isManifestGet(r) || isBlobGet(r) {
			select {
			case <-r.Context().Done():
			case <-stop:
			}
			return true
		}
		return false
	})

	// The caller's deadline ends the wait even with a long Timeout.
	slow := New(Options{ConfigDir: t.TempDir(), Timeout: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := slow.Resolve(ctx, f.tagRef)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("resolve returned %s after a 300ms deadline", d)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), f.p.Host()) {
		t.Fatalf("got %v, want a deadline error naming the registry", err)
	}

	// Without a deadline, the response-header timeout ends it.
	start = time.Now()
	_, err = f.c.OpenBlob(context.Background(), f.repo, f.desc, 0)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("open returned after %s with a 400ms timeout", d)
	}
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("got %v, want an unavailable timeout", err)
	}
}

// errCut ends a forwarded request body part-way.
var errCut = errors.New("cut")

// cutReader yields n bytes of r, then fails.
type cutReader struct {
	r io.Reader
	n int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errCut
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// cutPatch handles the nth PATCH (1-based) of an upload by reading part of
// its body and dropping the client's connection. With forward, the part
// read is sent on to the registry before the request to it breaks too.
func (p *faultProxy) cutPatch(nth int32, forward bool) (func(w http.ResponseWriter, r *http.Request) bool, *atomic.Int32) {
	var patches atomic.Int32
	return func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPatch || patches.Add(1) != nth {
			return false
		}
		const part = 20_000
		if forward {
			r.Body = io.NopCloser(&cutReader{r: r.Body, n: part})
			if resp, err := p.forward(r); err == nil {
				resp.Body.Close()
			}
		} else {
			_, _ = io.CopyN(io.Discard, r.Body, part)
		}
		panic(http.ErrAbortHandler)
	}, &patches
}

// pushAndCheck pushes a 300 KiB blob in 64 KiB chunks to repo and checks
// that the registry serves it back intact.
func (f *faultSetup) pushAndCheck(t *testing.T, repo reference.Named, r func([]byte) io.Reader) {
	t.Helper()
	data, desc := randomBlob(t, 300<<10)
	ctx := testCtx(t)
	var last int64
	if err := f.c.PushBlob(ctx, repo, desc, r(data), func(n int64) { last = n }); err != nil {
		t.Fatalf("push with a cut chunk: %v", err)
	}
	if last != desc.Size {
		t.Errorf("last progress %d, want %d", last, desc.Size)
	}
	f.p.setFault(nil)
	rc, err := f.c.OpenBlob(ctx, repo, desc, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob read back: %d bytes (equal %v), %v", len(got), bytes.Equal(got, data), err)
	}
}

// TestPushBlobResumesChunk cuts the second PATCH before the registry gets
// any of it: the client asks the registry where the upload stands and sends
// the chunk again into the same upload.
func TestPushBlobResumesChunk(t *testing.T) {
	f := newFaultSetup(t, nil)
	repo := mustRef(t, f.p.Host()+"/berth/resume")
	fault, patches := f.p.cutPatch(2, false)
	f.p.setFault(fault)
	// A plain reader, which cannot seek: the upload must resume, not restart.
	f.pushAndCheck(t, repo, func(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b)) })
	if n := len(f.p.requests("POST /v2/berth/resume/blobs/uploads/")); n != 1 {
		t.Errorf("%d uploads started, want 1", n)
	}
	if n := len(f.p.requests("GET /v2/berth/resume/blobs/uploads/")); n != 1 {
		t.Errorf("%d upload status requests, want 1", n)
	}
	// 5 chunks, one of them sent twice.
	if n := patches.Load(); n != 6 {
		t.Errorf("%d PATCH requests, want 6", n)
	}
}

// TestPushBlobRestartsLostUpload cuts the second PATCH after part of it
// reached the registry, which distribution 2.8 answers by dropping the
// upload: a seekable source is sent again in a new upload.
func TestPushBlobRestartsLostUpload(t *testing.T) {
	f := newFaultSetup(t, nil)
	repo := mustRef(t, f.p.Host()+"/berth/restart")
	fault, _ := f.p.cutPatch(2, true)
	f.p.setFault(fault)
	f.pushAndCheck(t, repo, func(b []byte) io.Reader { return bytes.NewReader(b) })
	started := f.p.requests("POST /v2/berth/restart/blobs/uploads/")
	status := f.p.requests("GET /v2/berth/restart/blobs/uploads/")
	cancelled := f.p.requests("DELETE /v2/berth/restart/blobs/uploads/")
	if len(started) != 2 || len(status) != 1 || len(cancelled) != 1 {
		t.Errorf("%d uploads started, %d status requests, %d cancelled; want 2, 1, 1", len(started), len(status), len(cancelled))
	}

	// A source that cannot seek cannot be sent again: a clear error, and
	// the upload is cancelled.
	fault, _ = f.p.cutPatch(2, true)
	f.p.setFault(fault)
	data, desc := randomBlob(t, 300<<10)
	err := f.c.PushBlob(testCtx(t), repo, desc, io.MultiReader(bytes.NewReader(data)), nil)
	if err == nil || !strings.Contains(err.Error(), "lost the upload") || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("got %v, want an error saying the registry lost the upload", err)
	}
	if n := len(f.p.requests("DELETE /v2/berth/restart/blobs/uploads/")); n != 2 {
		t.Errorf("%d uploads cancelled in all, want 2", n)
	}
}

// TestPushBlobGivesUp cuts every PATCH: Retries resumes, then an
// unavailable error.
func TestPushBlobGivesUp(t *testing.T) {
	f := newFaultSetup(t, func(o *Options) { o.Retries = 2 })
	repo := mustRef(t, f.p.Host()+"/berth/giveup")
	f.p.setFault(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPatch {
			panic(http.ErrAbortHandler)
		}
		return false
	})
	data, desc := randomBlob(t, 100<<10)
	err := f.c.PushBlob(testCtx(t), repo, desc, bytes.NewReader(data), nil)
	if !errdefs.IsUnavailable(err) || !strings.Contains(err.Error(), desc.Digest.String()) {
		t.Fatalf("got %v, want unavailable naming the blob", err)
	}
	if n := len(f.p.requests("PATCH /v2/berth/giveup/")); n != 3 {
		t.Errorf("%d PATCH requests, want 3 (one and two retries)", n)
	}
}
