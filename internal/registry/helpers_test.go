package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-project/berth/internal/testutil"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// testCtx returns a context that ends with the test or after a minute.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newTestClient returns a client for reg with its credentials saved in a
// fresh config dir, its CA trusted, and 64 KiB upload chunks.
func newTestClient(t *testing.T, reg *testutil.TestRegistry, mutate func(*Options)) *Client {
	t.Helper()
	opts := Options{
		ConfigDir: t.TempDir(),
		CertsDir:  t.TempDir(),
		RootCAs:   reg.CAPool,
		ChunkSize: 64 << 10,
		UserAgent: "berth-test",
	}
	if reg.User != "" {
		if err := SaveCredentials(opts.ConfigDir, reg.Host, reg.User, reg.Password); err != nil {
			t.Fatal(err)
		}
	}
	if mutate != nil {
		mutate(&opts)
	}
	return New(opts)
}

func mustRef(t *testing.T, s string) reference.Named {
	t.Helper()
	r, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// randomBlob returns n random bytes and their descriptor.
func randomBlob(t *testing.T, n int) ([]byte, v1.Descriptor) {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	return data, v1.Descriptor{MediaType: v1.MediaTypeImageLayer, Digest: digest.FromBytes(data), Size: int64(n)}
}

// pushBlob pushes data to repo and fails the test on error.
func pushBlob(t *testing.T, c *Client, repo reference.Named, data []byte, desc v1.Descriptor) {
	t.Helper()
	if err := c.PushBlob(testCtx(t), repo, desc, bytes.NewReader(data), nil); err != nil {
		t.Fatalf("push blob: %v", err)
	}
}

// pushImage pushes a config, a layer of layerSize random bytes and an OCI
// manifest tagged tag to repo, and returns the manifest, its descriptor and
// the layer.
func pushImage(t *testing.T, c *Client, repo reference.Named, tag string, layerSize int) ([]byte, v1.Descriptor, []byte) {
	t.Helper()
	layer, layerDesc := randomBlob(t, layerSize)
	pushBlob(t, c, repo, layer, layerDesc)
	config := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + layerDesc.Digest.String() + `"]}}`)
	configDesc := v1.Descriptor{MediaType: v1.MediaTypeImageConfig, Digest: digest.FromBytes(config), Size: int64(len(config))}
	pushBlob(t, c, repo, config, configDesc)
	m := v1.Manifest{
		Versioned: ocispec.Versioned{SchemaVersion: 2},
		MediaType: v1.MediaTypeImageManifest,
		Config:    configDesc,
		Layers:    []v1.Descriptor{layerDesc},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	tagged, err := reference.WithTag(repo, tag)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.PushManifest(testCtx(t), tagged, v1.MediaTypeImageManifest, raw)
	if err != nil {
		t.Fatalf("push manifest: %v", err)
	}
	return raw, v1.Descriptor{MediaType: v1.MediaTypeImageManifest, Digest: d, Size: int64(len(raw))}, layer
}

// faultProxy is a loopback HTTP server in front of a registry that forwards
// requests unless its fault function handles them.
type faultProxy struct {
	srv      *httptest.Server
	upstream string // "http://127.0.0.1:PORT"
	client   *http.Client

	mu    sync.Mutex
	fault func(w http.ResponseWriter, r *http.Request) bool
	log   []string // "METHOD PATH RANGE" of every request
}

func newFaultProxy(t *testing.T, reg *testutil.TestRegistry) *faultProxy {
	t.Helper()
	p := &faultProxy{
		upstream: reg.URL(""),
		client: &http.Client{
			Transport:     reg.HTTPClient().Transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// Host is the proxy's "127.0.0.1:PORT".
func (p *faultProxy) Host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

// setFault installs f; it returns true when it answered the request itself.
func (p *faultProxy) setFault(f func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	p.fault = f
	p.mu.Unlock()
}

// requests returns the log of requests matching substr.
func (p *faultProxy) requests(substr string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, l := range p.log {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

func (p *faultProxy) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.log = append(p.log, r.Method+" "+r.URL.Path+" "+r.Header.Get("Range"))
	f := p.fault
	p.mu.Unlock()
	if f != nil && f(w, r) {
		return
	}
	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	copyHeader(w, resp)
	_, _ = io.Copy(w, resp.Body)
}

// forward sends r to the registry, keeping the proxy's Host so that the
// registry's Location headers point back at the proxy.
func (p *faultProxy) forward(r *http.Request) (*http.Response, error) {
	out, err := http.NewRequestWithContext(r.Context(), r.Method, p.upstream+r.URL.RequestURI(), r.Body)
	if err != nil {
		return nil, err
	}
	out.Header = r.Header.Clone()
	out.Host = r.Host
	out.ContentLength = r.ContentLength
	return p.client.Do(out)
}

func copyHeader(w http.ResponseWriter, resp *http.Response) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
}
