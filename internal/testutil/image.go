package testutil

import (
	"archive/tar"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fixtureTime is the modification time of every file in the fixture
// layers, so that the same fixture always has the same digests.
var fixtureTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// TarEntry is one entry of a layer built by LayerTar. Type is a tar type
// flag (tar.TypeReg when zero); Mode defaults to 0644 for files and 0755
// for directories.
type TarEntry struct {
	Name     string
	Type     byte
	Mode     int64
	Data     string
	Linkname string
	UID, GID int
	Xattrs   map[string]string
}

// LayerTar returns an uncompressed tar holding entries, in order.
func LayerTar(entries []TarEntry) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: e.Name, Typeflag: e.Type, Mode: e.Mode, Linkname: e.Linkname,
			Uid: e.UID, Gid: e.GID, ModTime: fixtureTime, Format: tar.FormatPAX,
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.Data))
		}
		if len(e.Xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range e.Xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("layer tar: %s: %w", e.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Data)); err != nil {
				return nil, fmt.Errorf("layer tar: %s: %w", e.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("layer tar: %w", err)
	}
	return buf.Bytes(), nil
}

// DirTar returns an uncompressed tar of the tree at dir (regular files,
// directories and symlinks, with their modes and owners), in lexical order
// and with fixed times so that the same tree gives the same bytes.
func DirTar(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr.Name = filepath.ToSlash(rel)
		if d.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = fixtureTime, time.Time{}, time.Time{}
		hdr.Uname, hdr.Gname = "", ""
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := tw.Write(data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tar %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("tar %s: %w", dir, err)
	}
	return buf.Bytes(), nil
}

// BusyboxLayerTar returns an uncompressed tar of a BusyboxRootfs.
func BusyboxLayerTar() ([]byte, error) {
	dir, err := os.MkdirTemp("", "berth-busybox-layer-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := BusyboxRootfs(dir); err != nil {
		return nil, err
	}
	return DirTar(dir)
}

// ImageFromLayers builds an OCI image (OCI media types, gzip layers) from
// uncompressed layer tars, with a config for linux/amd64-or-host that runs
// cmd and has a PATH, the given labels and one history entry per layer.
func ImageFromLayers(layers [][]byte, cmd []string, labels map[string]string) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	var adds []mutate.Addendum
	for i, data := range layers {
		data := data
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{
			Created:   v1.Time{Time: fixtureTime},
			CreatedBy: fmt.Sprintf("berth-test layer %d", i),
		}})
	}
	img, err := mutate.Append(img, adds...)
	if err != nil {
		return nil, fmt.Errorf("append layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Created = v1.Time{Time: fixtureTime}
	cf.Config.Cmd = cmd
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Labels = labels
	return mutate.ConfigFile(img, cf)
}

// BusyboxImage is a one-layer busybox image whose command is sh.
func BusyboxImage() (v1.Image, error) {
	l, err := BusyboxLayerTar()
	if err != nil {
		return nil, err
	}
	return ImageFromLayers([][]byte{l}, []string{"sh"}, map[string]string{"org.berth.test": "busybox"})
}

// MultiLayerImage is a busybox image with two more layers that exercise
// what layer application must get right. Layer 1 adds /data with a file
// a.txt, a hard link hard -> a.txt, a symlink sym -> a.txt, dir/b.txt,
// gone.txt and opq/old.txt, and /etc/motd ("one"). Layer 2 deletes
// gone.txt (whiteout), makes opq opaque and adds opq/new.txt, and changes
// /etc/motd to "two". The result: /data/{a.txt,hard,sym,dir/b.txt,opq/new.txt}
// and /etc/motd "two".
func MultiLayerImage() (v1.Image, error) {
	base, err := BusyboxLayerTar()
	if err != nil {
		return nil, err
	}
	l1, err := LayerTar([]TarEntry{
		{Name: "data/", Type: tar.TypeDir},
		{Name: "data/a.txt", Data: "alpha\n"},
		{Name: "data/hard", Type: tar.TypeLink, Linkname: "data/a.txt"},
		{Name: "data/sym", Type: tar.TypeSymlink, Linkname: "a.txt"},
		{Name: "data/dir/", Type: tar.TypeDir, Mode: 0o750, UID: UserUID, GID: UserGID},
		{Name: "data/dir/b.txt", Data: "bravo\n", Mode: 0o600, UID: UserUID, GID: UserGID},
		{Name: "data/gone.txt", Data: "to be deleted\n"},
		{Name: "data/opq/", Type: tar.TypeDir},
		{Name: "data/opq/old.txt", Data: "old\n"},
		{Name: "etc/motd", Data: "one\n"},
	})
	if err != nil {
		return nil, err
	}
	l2, err := LayerTar([]TarEntry{
		{Name: "data/.wh.gone.txt"},
		{Name: "data/opq/", Type: tar.TypeDir},
		{Name: "data/opq/.wh..wh..opq"},
		{Name: "data/opq/new.txt", Data: "new\n"},
		{Name: "etc/motd", Data: "two\n"},
	})
	if err != nil {
		return nil, err
	}
	return ImageFromLayers([][]byte{base, l1, l2}, []string{"sh"}, map[string]string{"org.berth.test": "multi"})
}

// IndexOf wraps images in an OCI image index, each under its config's
// platform, so that tests can check platform selection.
func IndexOf(images ...v1.Image) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, img := range images {
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: types.OCIManifestSchema1,
				Platform:  &v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant},
			},
		})
	}
	return idx, nil
}

// WithPlatform returns img with its config's platform set to os/arch.
func WithPlatform(img v1.Image, os, arch string) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = os, arch
	return mutate.ConfigFile(img, cf)
}

// StaticBlob is a layer of arbitrary bytes with the given media type, for
// images that are deliberately broken.
func StaticBlob(data []byte, mt types.MediaType) v1.Layer { return static.NewLayer(data, mt) }

// PushOptions says how to reach a test registry: credentials, if any, and
// the CA that signed its certificate when it serves TLS.
type PushOptions struct {
	User, Password string
	CAPool         *x509.CertPool
}

// PushImage pushes img as ref ("127.0.0.1:PORT/repo:tag") to a registry on
// loopback. Plain HTTP is used unless opts.CAPool is set.
func PushImage(ref string, img v1.Image, opts PushOptions) error {
	r, err := parseTestRef(ref, opts)
	if err != nil {
		return err
	}
	if err := remote.Write(r, img, remoteOptions(opts)...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

// PushIndex pushes an image index and its images as ref.
func PushIndex(ref string, idx v1.ImageIndex, opts PushOptions) error {
	r, err := parseTestRef(ref, opts)
	if err != nil {
		return err
	}
	if err := remote.WriteIndex(r, idx, remoteOptions(opts)...); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	return nil
}

func parseTestRef(ref string, opts PushOptions) (name.Reference, error) {
	var nopts []name.Option
	if opts.CAPool == nil {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", ref, err)
	}
	return r, nil
}

func remoteOptions(opts PushOptions) []remote.Option {
	var ro []remote.Option
	if opts.User != "" {
		ro = append(ro, remote.WithAuth(&authn.Basic{Username: opts.User, Password: opts.Password}))
	}
	if opts.CAPool != nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: opts.CAPool}
		ro = append(ro, remote.WithTransport(tr))
	}
	return ro
}
