package registry

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-project/berth/internal/errdefs"
	"github.com/berth-project/berth/internal/testutil"
	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestPushPull pushes and pulls through a plain registry, one with basic
// auth and one serving TLS with a generated CA.
func TestPushPull(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts testutil.RegistryOptions
	}{
		{"plain", testutil.RegistryOptions{}},
		{"auth", testutil.RegistryOptions{Auth: true}},
		{"tls", testutil.RegistryOptions{TLS: true}},
		{"tls+auth", testutil.RegistryOptions{Auth: true, TLS: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := testutil.StartRegistry(t, tc.opts)
			c := newTestClient(t, reg, nil)
			testPushPull(t, c, reg.Host)
		})
	}
}

func testPushPull(t *testing.T, c *Client, host string) {
	ctx := testCtx(t)
	repo := mustRef(t, host+"/berth/test")

	// A chunked upload: 300 KiB in 64 KiB chunks.
	data, desc := randomBlob(t, 300<<10)
	var calls []int64
	if err := c.PushBlob(ctx, repo, desc, bytes.NewReader(data), func(n int64) { calls = append(calls, n) }); err != nil {
		t.Fatalf("push blob: %v", err)
	}
	want := []int64{64 << 10, 128 << 10, 192 << 10, 256 << 10, 300 << 10}
	if len(calls) != len(want) {
		t.Fatalf("progress calls %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("progress calls %v, want %v", calls, want)
		}
	}
	// A second push finds the blob and sends nothing.
	calls = nil
	if err := c.PushBlob(ctx, repo, desc, bytes.NewReader(nil), func(n int64) { calls = append(calls, n) }); err != nil {
		t.Fatalf("push existing blob: %v", err)
	}
	if len(calls) != 1 || calls[0] != desc.Size {
		t.Errorf("progress of existing blob %v, want [%d]", calls, desc.Size)
	}
	if ok, err := c.BlobExists(ctx, repo, desc.Digest); err != nil || !ok {
		t.Fatalf("BlobExists = %v, %v; want true", ok, err)
	}
	if ok, err := c.BlobExists(ctx, repo, digest.FromString("absent")); err != nil || ok {
		t.Fatalf("BlobExists(absent) = %v, %v; want false", ok, err)
	}

	// Read it back whole and from an offset.
	for _, off := range []int64{0, 1, 12345, desc.Size - 1, desc.Size} {
		rc, err := c.OpenBlob(ctx, repo, desc, off)
		if err != nil {
			t.Fatalf("open blob at %d: %v", off, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read blob at %d: %v", off, err)
		}
		if !bytes.Equal(got, data[off:]) {
			t.Fatalf("blob at %d: got %d bytes, want %d (content differs)", off, len(got), len(data[off:]))
		}
		if br := rc.(*BlobReader); br.Restarted() || br.Offset() != off {
			t.Errorf("blob at %d: Restarted %v Offset %d", off, br.Restarted(), br.Offset())
		}
	}

	// A manifest by tag, resolved by tag and by digest.
	raw, mdesc, _ := pushImage(t, c, repo, "v1", 1000)
	if mdesc.Digest != digest.FromBytes(raw) {
		t.Fatalf("PushManifest returned %s, want %s", mdesc.Digest, digest.FromBytes(raw))
	}
	for _, s := range []string{host + "/berth/test:v1", host + "/berth/test@" + mdesc.Digest.String()} {
		d, got, err := c.Resolve(ctx, mustRef(t, s))
		if err != nil {
			t.Fatalf("resolve %s: %v", s, err)
		}
		if d.Digest != mdesc.Digest || d.Size != int64(len(raw)) || d.MediaType != v1.MediaTypeImageManifest || !bytes.Equal(got, raw) {
			t.Fatalf("resolve %s: got %+v", s, d)
		}
	}
	got, d, err := c.FetchManifest(ctx, repo, mdesc.Digest)
	if err != nil || !bytes.Equal(got, raw) || d.Digest != mdesc.Digest {
		t.Fatalf("fetch manifest: %+v %v", d, err)
	}

	// An index pushed by digest, then tagged.
	idx := v1.Index{Versioned: ocispec.Versioned{SchemaVersion: 2}, MediaType: v1.MediaTypeImageIndex,
		Manifests: []v1.Descriptor{{MediaType: v1.MediaTypeImageManifest, Digest: mdesc.Digest, Size: mdesc.Size,
			Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}}}
	rawIdx, _ := json.Marshal(idx)
	idxDigest := digest.FromBytes(rawIdx)
	byDigest, _ := reference.WithDigest(repo, idxDigest)
	if d, err := c.PushManifest(ctx, byDigest, v1.MediaTypeImageIndex, rawIdx); err != nil || d != idxDigest {
		t.Fatalf("push index by digest: %s %v", d, err)
	}
	d, _, err = c.Resolve(ctx, byDigest)
	if err != nil || d.MediaType != v1.MediaTypeImageIndex || d.Digest != idxDigest {
		t.Fatalf("resolve index: %+v %v", d, err)
	}
	// A Docker manifest list media type is accepted and reported as sent.
	idx.MediaType = MediaTypeDockerManifestList
	rawList, _ := json.Marshal(idx)
	tagged, _ := reference.WithTag(repo, "list")
	if _, err := c.PushManifest(ctx, tagged, MediaTypeDockerManifestList, rawList); err != nil {
		t.Fatalf("push docker list: %v", err)
	}
	if d, _, err := c.Resolve(ctx, tagged); err != nil || d.MediaType != MediaTypeDockerManifestList {
		t.Fatalf("resolve docker list: %+v %v", d, err)
	}
	// A digest reference whose digest is not the content's is refused.
	wrong, _ := reference.WithDigest(repo, digest.FromString("other"))
	if _, err := c.PushManifest(ctx, wrong, v1.MediaTypeImageIndex, rawIdx); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("push manifest under the wrong digest: %v", err)
	}

	// A manifest that does not exist.
	_, _, err = c.Resolve(ctx, mustRef(t, host+"/berth/test:nope"))
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "manifest for "+host+"/berth/test:nope not found") {
		t.Fatalf("resolve missing tag: %v", err)
	}
}

func TestMountBlob(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	p := newFaultProxy(t, reg)
	c := newTestClient(t, reg, nil)
	ctx := testCtx(t)
	a, b := mustRef(t, p.Host()+"/berth/a"), mustRef(t, p.Host()+"/berth/b")
	data, desc := randomBlob(t, 1000)
	pushBlob(t, c, a, data, desc)

	if ok, err := c.BlobExists(ctx, b, desc.Digest); err != nil || ok {
		t.Fatalf("blob in b before mount: %v %v", ok, err)
	}
	ok, err := c.MountBlob(ctx, b, a, desc.Digest)
	if err != nil || !ok {
		t.Fatalf("mount: %v %v", ok, err)
	}
	if ok, err := c.BlobExists(ctx, b, desc.Digest); err != nil || !ok {
		t.Fatalf("blob in b after mount: %v %v", ok, err)
	}
	// An unknown blob is not mounted and the upload started is cancelled.
	ok, err = c.MountBlob(ctx, b, a, digest.FromString("unknown"))
	if err != nil || ok {
		t.Fatalf("mount unknown blob: %v %v", ok, err)
	}
	if n := len(p.requests("DELETE /v2/berth/b/blobs/uploads/")); n != 1 {
		t.Errorf("%d uploads cancelled after a refused mount, want 1", n)
	}
	// Another registry cannot be mounted from.
	ok, err = c.MountBlob(ctx, b, mustRef(t, "example.com/berth/a"), desc.Digest)
	if err != nil || ok {
		t.Fatalf("mount across registries: %v %v", ok, err)
	}
}

func TestPushBlobBadContent(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{})
	p := newFaultProxy(t, reg)
	c := newTestClient(t, reg, nil)
	ctx := testCtx(t)
	repo := mustRef(t, p.Host()+"/berth/bad")
	data, desc := randomBlob(t, 100<<10)
	for name, content := range map[string][]byte{
		"short":         data[:len(data)-1],
		"long":          append(append([]byte{}, data...), 'x'),
		"wrong content": append([]byte{data[0] ^ 1}, data[1:]...),
	} {
		err := c.PushBlob(ctx, repo, desc, bytes.NewReader(content), nil)
		if !errdefs.IsDataLoss(err) {
			t.Errorf("%s: got %v, want a data-loss error", name, err)
		}
	}
	if ok, err := c.BlobExists(ctx, repo, desc.Digest); err != nil || ok {
		t.Fatalf("bad blob stored: %v %v", ok, err)
	}
	// Every upload started was cancelled (distribution 2.8 answers the
	// DELETE but leaves the directory, so we count the requests).
	started, cancelled := p.requests("POST /v2/berth/bad/blobs/uploads/"), p.requests("DELETE /v2/berth/bad/blobs/uploads/")
	if len(started) != 3 || len(cancelled) != 3 {
		t.Errorf("%d uploads started, %d cancelled; want 3 and 3", len(started), len(cancelled))
	}
}

func TestLogin(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: true})
	c := newTestClient(t, reg, nil)
	ctx := testCtx(t)
	if _, err := c.Login(ctx, reg.Host, reg.User, reg.Password); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.Login(ctx, "http://"+reg.Host+"/", reg.User, reg.Password); err != nil {
		t.Fatalf("login with a URL: %v", err)
	}
	_, err := c.Login(ctx, reg.Host, reg.User, "wrong")
	if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), "wrong user name or password") || !strings.Contains(err.Error(), reg.Host) {
		t.Fatalf("login with a wrong password: %v", err)
	}
}

func TestCredentials(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{Auth: true})
	writer := newTestClient(t, reg, nil)
	repo := mustRef(t, reg.Host+"/berth/creds")
	_, _, _ = pushImage(t, writer, repo, "v1", 100)
	ref := mustRef(t, reg.Host+"/berth/creds:v1")

	t.Run("none", func(t *testing.T) {
		c := New(Options{ConfigDir: t.TempDir(), CertsDir: t.TempDir()})
		_, _, err := c.Resolve(testCtx(t), ref)
		want := "pull access denied for " + reg.Host + "/berth/creds, repository does not exist or may require authorization"
		if !errdefs.IsUnauthorized(err) || !strings.Contains(err.Error(), want) {
			t.Fatalf("got %v, want %q", err, want)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		dir := t.TempDir()
		if err := SaveCredentials(dir, reg.Host, reg.User, "wrong"); err != nil {
			t.Fatal(err)
		}
		_, _, err := New(Options{ConfigDir: dir}).Resolve(testCtx(t), ref)
		if !errdefs.IsUnauthorized(err) {
			t.Fatalf("got %v, want unauthorized", err)
		}
	})
	t.Run("config auths", func(t *testing.T) {
		dir := t.TempDir()
		if err := SaveCredentials(dir, reg.Host, reg.User, reg.Password); err != nil {
			t.Fatal(err)
		}
		if _, _, err := New(Options{ConfigDir: dir}).Resolve(testCtx(t), ref); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("DOCKER_CONFIG", func(t *testing.T) {
		dir := t.TempDir()
		if err := SaveCredentials(dir, reg.Host, reg.User, reg.Password); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", dir)
		if _, _, err := New(Options{}).Resolve(testCtx(t), ref); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("context", func(t *testing.T) {
		c := New(Options{ConfigDir: t.TempDir()})
		ctx := WithAuth(testCtx(t), AuthConfig{Username: reg.User, Password: reg.Password})
		if _, _, err := c.Resolve(ctx, ref); err != nil {
			t.Fatal(err)
		}
	})
	for _, cfg := range []string{`{"credsStore":"berthtest"}`, `{"credHelpers":{"` + reg.Host + `":"berthtest"}}`} {
		t.Run("helper "+cfg, func(t *testing.T) {
			bin := t.TempDir()
			log := filepath.Join(bin, "asked")
			// The helper answers only for our registry, as real ones do.
			script := "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\necho \"$server\" >> " + log + "\n" +
				"if [ \"$server\" = \"" + reg.Host + "\" ]; then\n" +
				"  echo '{\"ServerURL\":\"'$server'\",\"Username\":\"" + reg.User + "\",\"Secret\":\"" + reg.Password + "\"}'\n" +
				"else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n"
			if err := os.WriteFile(filepath.Join(bin, "docker-credential-berthtest"), []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, _, err := New(Options{ConfigDir: dir}).Resolve(testCtx(t), ref); err != nil {
				t.Fatal(err)
			}
			asked, _ := os.ReadFile(log)
			if strings.TrimSpace(string(asked)) != reg.Host {
				t.Errorf("helper was asked for %q, want %q", asked, reg.Host)
			}
		})
	}
	t.Run("helper missing", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"berth-no-such-helper"}`), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := New(Options{ConfigDir: dir}).Resolve(testCtx(t), ref)
		if err == nil || !strings.Contains(err.Error(), "docker-credential-berth-no-such-helper") {
			t.Fatalf("got %v, want an error naming the helper", err)
		}
	})
}

func TestSaveRemoveCredentials(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docker")
	path := filepath.Join(dir, "config.json")
	if err := SaveCredentials(dir, "127.0.0.1:5000", "u", "p:w"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config.json: %v %v", fi, err)
	}
	// Other fields and other registries' entries survive.
	orig := `{"auths":{"other.example:1":{"auth":"eDp5"}},"psFormat":"table {{.ID}}","credHelpers":{"gcr.io":"gcloud"}}`
	if err := os.WriteFile(path, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, server := range []string{"127.0.0.1:5000", "", "https://index.docker.io/v1/"} {
		if err := SaveCredentials(dir, server, "u", "p:w"); err != nil {
			t.Fatal(err)
		}
	}
	var cf map[string]any
	data, _ := os.ReadFile(path)
	if err := json.Unmarshal(data, &cf); err != nil {
		t.Fatal(err)
	}
	auths := cf["auths"].(map[string]any)
	if cf["psFormat"] != "table {{.ID}}" || cf["credHelpers"] == nil || auths["other.example:1"] == nil {
		t.Fatalf("fields lost: %s", data)
	}
	if len(auths) != 3 || auths["127.0.0.1:5000"] == nil || auths[dockerHubAuthKey] == nil {
		t.Fatalf("auths: %s", data)
	}
	c := New(Options{ConfigDir: dir})
	a, err := c.credentials(testCtx(t), dockerHubAuthKey)
	if err != nil || a.Username != "u" || a.Password != "p:w" {
		t.Fatalf("read back: %+v %v", a, err)
	}
	if err := RemoveCredentials(dir, "docker.io"); err != nil {
		t.Fatal(err)
	}
	if err := RemoveCredentials(dir, "never.saved"); err != nil {
		t.Fatal(err)
	}
	a, err = c.credentials(testCtx(t), dockerHubAuthKey)
	if err != nil || a.Username != "" {
		t.Fatalf("after remove: %+v %v", a, err)
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".config.json.tmp-*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
	// A config that is not JSON is refused, not overwritten.
	if err := os.WriteFile(path, []byte("{bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := SaveCredentials(dir, "h", "u", "p"); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("save into a broken config: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "{bad" {
		t.Fatalf("broken config overwritten: %q", data)
	}
}

func TestTLSVerification(t *testing.T) {
	reg := testutil.StartRegistry(t, testutil.RegistryOptions{TLS: true})
	trusted := newTestClient(t, reg, nil)
	repo := mustRef(t, reg.Host+"/berth/tls")
	_, _, _ = pushImage(t, trusted, repo, "v1", 100)
	ref := mustRef(t, reg.Host+"/berth/tls:v1")

	// Without the CA: a clear TLS error, no fallback to HTTP hiding it.
	_, _, err := New(Options{ConfigDir: t.TempDir(), CertsDir: t.TempDir()}).Resolve(testCtx(t), ref)
	if err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") ||
		!strings.Contains(err.Error(), filepath.Join(reg.Host, "ca.crt")) || strings.Contains(err.Error(), "http://") {
		t.Fatalf("got %v, want an unknown-authority error", err)
	}
	// The CA in certs.d/<host>/ca.crt.
	certs := t.TempDir()
	if err := os.MkdirAll(filepath.Join(certs, reg.Host), 0o755); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(reg.CAFile)
	if err := os.WriteFile(filepath.Join(certs, reg.Host, "ca.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := New(Options{ConfigDir: t.TempDir(), CertsDir: certs}).Resolve(testCtx(t), ref); err != nil {
		t.Fatalf("with certs.d CA: %v", err)
	}
	// Listed as insecure: TLS without verification.
	if _, _, err := New(Options{ConfigDir: t.TempDir(), CertsDir: t.TempDir(), Insecure: []string{"127.0.0.0/8"}}).Resolve(testCtx(t), ref); err != nil {
		t.Fatalf("insecure: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	c := New(Options{ConfigDir: t.TempDir()})
	ctx := testCtx(t)
	repo := mustRef(t, "127.0.0.1:1/berth/x")
	if _, err := c.OpenBlob(ctx, repo, v1.Descriptor{Digest: "sha256:nothex", Size: 1}, 0); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad digest: %v", err)
	}
	if _, err := c.OpenBlob(ctx, repo, v1.Descriptor{Digest: digest.FromString("x"), Size: 1}, 2); !errdefs.IsInvalidArgument(err) {
		t.Errorf("offset past the end: %v", err)
	}
	if _, _, err := c.FetchManifest(ctx, repo, "md5:abc"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("bad manifest digest: %v", err)
	}
	if err := c.PushBlob(ctx, repo, v1.Descriptor{Digest: digest.FromString("x"), Size: -1}, nil, nil); !errdefs.IsInvalidArgument(err) {
		t.Errorf("negative size: %v", err)
	}
	// Nothing listens on port 1: unavailable, naming the registry.
	_, _, err := c.Resolve(ctx, mustRef(t, "127.0.0.1:1/berth/x:v1"))
	var e *Error
	if !errdefs.IsUnavailable(err) || !errors.As(err, &e) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("closed port: %v", err)
	}
}
